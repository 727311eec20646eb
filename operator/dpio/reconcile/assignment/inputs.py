"""What a VMDeviceAssignment reconcile reads from the operator's caches rather than from vCenter:
other assignments' claims, the referenced policy and the namespace labels (used by observe.py).

A converged VM may cost at most 3 vCenter calls (docs/design.md, "vCenter access"), so
everything here is read from the watch caches the controllers keep (no API server or vCenter
call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.conditions import (
    CLAIMED_BY_ASSIGNMENT,
    DEVICES_UNAVAILABLE,
    FORBIDDEN,
    IN_USE_BY_VM,
    QUOTA_EXCEEDED,
    VM_NOT_FOUND,
    VM_OUT_OF_SCOPE,
)
from dpio.api.policy import HostPassthroughPolicy
from dpio.planner.conditions import find, is_true
from dpio.planner.observed import parse_pci_id
from dpio.planner.vm.observed import AssignmentClaim, PolicyView, QuotaUse, VMObservation
from dpio.planner.vm.tenancy import consumer_problem

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Reasons of an assignment that waits for something another object holds (a device, a VM,
#: the quota), or for a VM to appear in its scope.
WAITING_REASONS = frozenset(
    {CLAIMED_BY_ASSIGNMENT, IN_USE_BY_VM, VM_NOT_FOUND, VM_OUT_OF_SCOPE, QUOTA_EXCEEDED}
)
#: The namespace labels of a namespace; None while the operator has not read them.
Labels = Mapping[str, str] | None

Body = Mapping[str, Any]


class ObjectKey(NamedTuple):
    """A VMDeviceAssignment's identity in the caches (equal to a plain (namespace, name))."""

    namespace: str
    name: str


def parse_assignment(body: Body) -> VMDeviceAssignment | None:
    try:
        return VMDeviceAssignment.model_validate(body)
    except ValidationError:
        return None


def parse_policy(body: Body | None) -> HostPassthroughPolicy | None:
    if body is None or body.get("metadata", {}).get("deletionTimestamp"):
        return None  # a policy being deleted offers nothing new
    try:
        return HostPassthroughPolicy.model_validate(body)
    except ValidationError:
        return None


def policy_view(policy: HostPassthroughPolicy, host: str | None) -> PolicyView:
    """The policy's spec and its status rows for `host` (none before the VM's host is known);
    whether that status is the policy's report on `host` for its current spec."""
    found = next((h for h in policy.status.hosts if h.name == host), None)
    current = policy.status.observed_generation == (policy.metadata.generation or 0)
    return PolicyView(
        name=policy.metadata.name,
        spec=policy.spec,
        host_devices=tuple(found.devices) if found is not None else (),
        host_reported=found is not None and current,
    )


def before_vcenter(
    policy: HostPassthroughPolicy | None,
    assignment: VMDeviceAssignment,
    namespace: str,
    labels: Labels,
) -> tuple[VMObservation, bool]:
    """The observation before vCenter is asked, and whether it may be asked at all: not without
    the policy, nor for a namespace the policy does not serve (the VM then stays unknown)."""
    view = policy_view(policy, None) if policy is not None else None
    observed = VMObservation(
        vm=None,
        policy=view,
        namespace_labels=labels or {},
        namespace_labels_known=labels is not None,
    )
    name = assignment.spec.policy_ref.name
    allowed = policy is not None and consumer_problem(observed, name, namespace) is None
    return observed, allowed


def completed(
    seen: VMObservation,
    policy: HostPassthroughPolicy,
    labels: Callable[[str], Labels],
    others: Iterable[Body],
    me: ObjectKey,
) -> tuple[VMObservation, bool]:
    """What the adapter observed, completed from the caches (claims, the policy's rows for the
    VM's host, namespace labels, the quota use of the policy's other assignments); and whether
    a rival's claim is still unknown."""
    host = seen.vm.host if seen.vm is not None else ""
    others = list(others)
    found, unknown = claims(others, me, host)
    mine = labels(me.namespace)
    observed = replace(
        seen,
        claims=found,
        policy=policy_view(policy, host),
        namespace_labels=mine or {},
        namespace_labels_known=mine is not None,
        quota_uses=quota_uses(others, me, policy.metadata.name, labels),
    )
    return observed, unknown


def quota_uses(
    others: Iterable[Body], me: ObjectKey, policy: str, labels: Callable[[str], Labels]
) -> tuple[QuotaUse, ...]:
    """The other assignments of `policy` that count against a consumer entry's maxDevices:
    all but those being deleted (their devices go) and those refused (they hold nothing)."""
    found = []
    for body in others:
        meta = body.get("metadata", {})
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if key == me or meta.get("deletionTimestamp"):
            continue
        spec = body.get("spec") or {}
        if (spec.get("policyRef") or {}).get("name") != policy:
            continue
        conditions = (body.get("status") or {}).get("conditions") or ()
        if any(c.get("type") == FORBIDDEN and c.get("status") == "True" for c in conditions):
            continue
        stamp = meta.get("creationTimestamp")
        created = datetime.fromisoformat(stamp) if isinstance(stamp, str) else EPOCH
        devices = len(spec.get("devices") or ())
        found.append(QuotaUse(key[0], key[1], created, devices, labels(key[0])))
    return tuple(found)


def claims(
    others: Iterable[Body], me: ObjectKey, my_host: str
) -> tuple[tuple[AssignmentClaim, ...], bool]:
    """Static devices other assignments ask for, and whether any claim's host is still unknown.

    An assignment reconciled at least once has its VM's host in status. One never reconciled may
    be the older claimant of our device: it counts as claiming on our host until it has looked
    (so the oldest wins every time, whatever order the workers run in); the caller looks again
    soon. Forbidden and over-quota assignments and those being deleted claim nothing (a
    deleting one still holds its devices through the VM, which vCenter reports as InUseByVM).
    """
    found: list[AssignmentClaim] = []
    unknown = False
    for body in others:
        meta = body.get("metadata", {})
        if (meta.get("namespace", ""), meta.get("name", "")) == me or meta.get("deletionTimestamp"):
            continue
        other = parse_assignment(body)
        if other is None or _holds_nothing(other):
            continue
        addresses = tuple(d.pci.address for d in other.spec.devices if d.pci is not None)
        dynamic = _dynamic(other)
        if not addresses and not dynamic:
            continue
        host = other.status.vm.host if other.status.vm is not None else None
        if host is None:
            if other.status.observed_generation is not None:
                continue  # it has looked and found no VM (or none yet): nothing to hold
            unknown = True
            host = my_host
        found.append(
            AssignmentClaim(
                namespace=other.metadata.namespace or "",
                name=other.metadata.name,
                creation_timestamp=other.metadata.creation_timestamp or EPOCH,
                host=host,
                device_ids=addresses,
                vm_name=other.spec.vm.name or "",
                vm_instance_uuid=other.spec.vm.instance_uuid or "",
                dynamic=dynamic,
            )
        )
    return tuple(found), unknown


def _holds_nothing(assignment: VMDeviceAssignment) -> bool:
    """Refused (Forbidden) or over its quota: it adds no device, so it claims none. What it
    already has attached, vCenter reports as the VM's (InUseByVM)."""
    conditions = assignment.status.conditions
    over = find(conditions, DEVICES_UNAVAILABLE)
    return is_true(conditions, FORBIDDEN) or (
        over is not None and over.status == "True" and over.reason == QUOTA_EXCEEDED
    )


def _dynamic(assignment: VMDeviceAssignment) -> tuple[tuple[int, int, str], ...]:
    """Its Dynamic DirectPath devices as (vendorId, deviceId, label); bad hex is left out (that
    assignment reports its own InvalidSpec)."""
    found = []
    for device in assignment.spec.devices:
        dyn = device.dynamic
        if dyn is None:
            continue
        vendor, device_id = parse_pci_id(dyn.vendor_id), parse_pci_id(dyn.device_id)
        if vendor is not None and device_id is not None:
            found.append((vendor, device_id, dyn.label or ""))
    return tuple(found)
