"""The two kinds' manifests as a user writes them (docs/api.md): one builder per kind, shared by
tests/e2e, tests/faults, tests/integration and bench/ so that a field renamed in the API is
renamed in one place. Each writes only what it is given (the API server defaults the rest);
``spec`` keyword arguments add fields, or replace the ones built, as they are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

API_VERSION = "dpio.io/v1alpha1"
#: The root VM folder of the simulator's datacenter DC1 (the default inventory, the e2e modules'
#: own, `dpio-vcsim generate`): a consumer scoped to it may use every VM of the datacenter.
EVERY_VM = "/DC1/vm"

Body = dict[str, Any]


def policy(
    name: str,
    *,
    hosts: Sequence[str] | Mapping[str, Any],
    devices: Sequence[Mapping[str, Any]],
    secret: str | None = None,
    consumers: Sequence[Mapping[str, Any]] = (),
    **spec: Any,
) -> Body:
    """A HostPassthroughPolicy of `devices` (device selectors) on `hosts` (host names, or a
    whole host selector), on the vCenter of Secret `secret` (the operator's default one when
    None), used by `consumers` (entries as `consumer` builds them; none when empty)."""
    body: Body = {}
    if secret is not None:
        body["vcenter"] = {"secretRef": {"name": secret}}
    body["hosts"] = dict(hosts) if isinstance(hosts, Mapping) else {"names": list(hosts)}
    body["devices"] = [dict(d) for d in devices]
    if consumers:
        body["consumers"] = [dict(c) for c in consumers]
    return {
        "apiVersion": API_VERSION,
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": name},
        "spec": {**body, **spec},
    }


def consumer(
    namespaces: Sequence[str],
    *,
    folders: Sequence[str] = (EVERY_VM,),
    power_policies: Sequence[str] | None = None,
    conflict_policies: Sequence[str] | None = None,
    **entry: Any,
) -> Body:
    """One consumer entry of a policy: `namespaces` may use the VMs in `folders`, with the power
    and conflict policies given (the API's defaults, WaitForPowerOff and Block, when None);
    `entry` adds fields (maxDevices, a `vms` of another kind)."""
    body: Body = {"namespaces": list(namespaces), "vms": {"folders": list(folders)}}
    if power_policies is not None:
        body["powerPolicies"] = list(power_policies)
    if conflict_policies is not None:
        body["conflictPolicies"] = list(conflict_policies)
    return {**body, **entry}


def assignment(
    name: str,
    namespace: str,
    policy: str,
    vm: str,
    devices: Sequence[Mapping[str, Any]],
    **spec: Any,
) -> Body:
    """A VMDeviceAssignment of `devices` (entries as `pci_device` builds them, or dynamic ones)
    to the VM called `vm` under the policy called `policy`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "policyRef": {"name": policy},
            "vm": {"name": vm},
            "devices": [dict(d) for d in devices],
            **spec,
        },
    }


def pci_device(address: str, name: str = "gpu0") -> Body:
    """A device entry of an assignment: the host PCI device at `address`, called `name`."""
    return {"name": name, "pci": {"address": address}}
