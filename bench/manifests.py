"""The objects a benchmark applies, written as a user would write them (docs/api.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.inventory import device_address

API_VERSION = "dpio.io/v1alpha1"
NAMESPACE = "bench"
#: The generated datacenter's root VM folder (`dpio-vcsim generate` without --folders puts
#: every VM there): the consumers' scope covers every benchmark VM.
EVERY_VM = "/DC1/vm"
Body = dict[str, Any]


def policy(
    name: str,
    *,
    addresses: Sequence[str],
    host_names: Sequence[str] = (),
    name_pattern: str | None = None,
    consumers: Sequence[str] = (),
) -> Body:
    hosts: Body = {}
    if host_names:
        hosts["names"] = list(host_names)
    if name_pattern:
        hosts["namePattern"] = name_pattern
    spec: Body = {"hosts": hosts, "devices": [{"address": a} for a in addresses]}
    if consumers:
        # The benchmark's VMs are powered off and conflict-free: the default power and
        # conflict policies (WaitForPowerOff, Block) are all their assignments use.
        spec["consumers"] = [{"namespaces": list(consumers), "vms": {"folders": [EVERY_VM]}}]
    return {"apiVersion": API_VERSION, "kind": "HostPassthroughPolicy",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def fleet_policy(name: str, devices: int, consumers: Sequence[str] = ()) -> Body:
    """One policy for every generated host, enabling its first ``devices`` GPUs."""
    return policy(
        name,
        addresses=[device_address(i) for i in range(devices)],
        name_pattern=r"\.bench\.local$",
        consumers=consumers,
    )


def per_device_policies(hosts: Sequence[str], devices_per_host: int, count: int) -> list[Body]:
    """``count`` small policies, each enabling one device on one host (host-major order)."""
    bodies = []
    for i in range(count):
        host = hosts[i // devices_per_host]
        address = device_address(i % devices_per_host)
        bodies.append(policy(f"p-{i:05d}", addresses=[address], host_names=[host]))
    return bodies


def assignment(name: str, vm: str, address: str, policy_name: str) -> Body:
    """One static PCI device for a powered-off VM (nothing to power-cycle)."""
    return {
        "apiVersion": API_VERSION, "kind": "VMDeviceAssignment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"policyRef": {"name": policy_name}, "vm": {"name": vm},
                 "devices": [{"name": "gpu0", "pci": {"address": address}}]},
    }  # fmt: skip
