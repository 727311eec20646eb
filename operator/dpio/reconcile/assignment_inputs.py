"""What a VMDeviceAssignment reconcile takes from the operator's caches rather than from vCenter:
other assignments' claims, the referenced policy, and power tracking kept in status.

DESIGN.md §7 allows at most 3 vCenter calls per converged VM, so everything here is read from the
watch caches the controllers keep (no API server or vCenter call).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dpio.api.assignment import PowerStatus, VMDeviceAssignment, VMDeviceAssignmentStatus
from dpio.api.conditions import CLAIMED_BY_ASSIGNMENT, FORBIDDEN, IN_USE_BY_VM, VM_NOT_FOUND
from dpio.api.policy import HostPassthroughPolicy
from dpio.planner.conditions import is_true
from dpio.planner.observed import parse_pci_id
from dpio.planner.vm_observed import AssignmentClaim, PolicyView, VMObservation
from dpio.planner.vm_plan import VMPlan, plan_assignment
from dpio.planner.vm_power import PowerTracking
from dpio.planner.vm_rules import forbidden

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Reasons of an assignment that waits for something another object holds (a device, a VM).
WAITING_REASONS = frozenset({CLAIMED_BY_ASSIGNMENT, IN_USE_BY_VM, VM_NOT_FOUND})

Body = Mapping[str, Any]


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
    """The policy's spec and its status rows for `host` (none before the VM's host is known)."""
    rows = next((h.devices for h in policy.status.hosts if h.name == host), [])
    return PolicyView(name=policy.metadata.name, spec=policy.spec, host_devices=tuple(rows))


def before_vcenter(
    policy: HostPassthroughPolicy | None,
    assignment: VMDeviceAssignment,
    namespace: str,
    labels: Mapping[str, str],
) -> tuple[VMObservation, bool]:
    """The observation before vCenter is asked, and whether it may be asked at all: not without
    the policy, nor for a namespace the policy does not serve (the VM then stays unknown)."""
    view = policy_view(policy, None) if policy is not None else None
    observed = VMObservation(vm=None, policy=view, namespace_labels=labels)
    name = assignment.spec.policy_ref.name
    allowed = policy is not None and forbidden(observed, name, namespace) is None
    return observed, allowed


def completed(
    seen: VMObservation,
    policy: HostPassthroughPolicy,
    labels: Mapping[str, str],
    others: Iterable[Body],
    me: tuple[str, str],
) -> tuple[VMObservation, bool]:
    """What the adapter observed, completed from the caches (claims, the policy's rows for the
    VM's host, namespace labels); and whether a rival's claim is still unknown."""
    host = seen.vm.host if seen.vm is not None else ""
    found, unknown = claims(others, me, host)
    observed = replace(
        seen, claims=found, policy=policy_view(policy, host), namespace_labels=labels
    )
    return observed, unknown


def plan(
    assignment: VMDeviceAssignment, namespace: str, observed: VMObservation, now: datetime
) -> VMPlan:
    """`plan_assignment` with the assignment's identity, spec and what its status keeps."""
    meta = assignment.metadata
    return plan_assignment(
        namespace=namespace,
        name=meta.name,
        creation_timestamp=meta.creation_timestamp or EPOCH,
        spec=assignment.spec,
        observed=observed,
        now=now,
        previous=assignment.status,
        tracking=tracking(assignment.status),
    )


def claims(
    others: Iterable[Body], me: tuple[str, str], my_host: str
) -> tuple[tuple[AssignmentClaim, ...], bool]:
    """Static devices other assignments ask for, and whether any claim's host is still unknown.

    An assignment reconciled at least once has its VM's host in status. One never reconciled may
    be the older claimant of our device: it counts as claiming on our host until it has looked
    (so the oldest wins every time, whatever order the workers run in); the caller looks again
    soon. Forbidden assignments and those being deleted claim nothing (a deleting one still holds
    its devices through the VM, which vCenter reports as InUseByVM).
    """
    found: list[AssignmentClaim] = []
    unknown = False
    for body in others:
        meta = body.get("metadata", {})
        if (meta.get("namespace", ""), meta.get("name", "")) == me or meta.get("deletionTimestamp"):
            continue
        other = parse_assignment(body)
        if other is None or is_true(other.status.conditions, FORBIDDEN):
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


def tracking(status: VMDeviceAssignmentStatus) -> PowerTracking:
    power = status.power
    if power is None:
        return PowerTracking()
    return PowerTracking(
        powered_off_by_operator=power.powered_off_by_operator,
        shutdown_requested_at=power.shutdown_requested_at,
    )


def power_status(tracking: PowerTracking) -> PowerStatus | None:
    if tracking == PowerTracking():
        return None  # nothing promised: keep status small
    return PowerStatus(
        powered_off_by_operator=tracking.powered_off_by_operator,
        shutdown_requested_at=tracking.shutdown_requested_at,
    )
