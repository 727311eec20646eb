"""What a VMDeviceAssignment reconcile reads from the operator's caches rather than from vCenter:
other assignments' claims, the referenced policy and the namespace labels (used by observe.py).

A converged VM may cost at most 3 vCenter calls (docs/design.md, "vCenter access"), so
everything here is read from the watch caches the controllers keep (no API server or vCenter
call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.conditions import (
    CLAIMED_BY_ASSIGNMENT,
    IN_USE_BY_VM,
    QUOTA_EXCEEDED,
    VM_NOT_FOUND,
    VM_OUT_OF_SCOPE,
)
from dpio.api.policy import HostPassthroughPolicy
from dpio.planner.vm.observed import AssignmentClaim, PolicyView, QuotaUse, VMObservation
from dpio.planner.vm.tenancy import consumer_problem
from dpio.reconcile.assignment.others import (
    AssignmentIndex,
    ObjectKey,
    Other,
    ParsedPolicies,
    derive,
)

#: Reasons of an assignment that waits for something another object holds (a device, a VM,
#: the quota), or for a VM to appear in its scope.
WAITING_REASONS = frozenset(
    {CLAIMED_BY_ASSIGNMENT, IN_USE_BY_VM, VM_NOT_FOUND, VM_OUT_OF_SCOPE, QUOTA_EXCEEDED}
)
#: The namespace labels of a namespace; None while the operator has not read them.
Labels = Mapping[str, str] | None

Body = Mapping[str, Any]


def parse_assignment(body: Body) -> VMDeviceAssignment | None:
    try:
        return VMDeviceAssignment.model_validate(body)
    except ValidationError:
        return None


def parse_policy(
    body: Body | None, memo: ParsedPolicies | None = None
) -> HostPassthroughPolicy | None:
    """The policy, or None while it is being deleted or if invalid; `memo` keeps it parsed
    per resourceVersion (others.py)."""
    if body is None or body.get("metadata", {}).get("deletionTimestamp"):
        return None  # a policy being deleted offers nothing new
    if memo is not None:
        parsed: HostPassthroughPolicy | None = memo.parse(body)
        return parsed
    return _validated_policy(body)


def _validated_policy(body: Body) -> HostPassthroughPolicy | None:
    try:
        return HostPassthroughPolicy.model_validate(body)
    except ValidationError:
        return None


def policy_memo() -> ParsedPolicies:
    """A memo for `parse_policy`."""
    return ParsedPolicies(_validated_policy)


def policy_view(
    policy: HostPassthroughPolicy, host: str | None, memo: ParsedPolicies | None = None
) -> PolicyView:
    """The policy's spec and its status rows for `host` (none before the VM's host is known);
    whether that status is the policy's report on `host` for its current spec. `memo`: the
    one `policy` came from (parse_policy), which parses the host's rows on demand."""
    if host is None:
        found = None
    elif memo is not None:
        found = memo.host_status(policy, host)
    else:
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
    others: AssignmentIndex,
    me: ObjectKey,
    *,
    policies: ParsedPolicies | None = None,
) -> tuple[VMObservation, bool]:
    """What the adapter observed, completed from the caches (claims, the policy's rows for the
    VM's host, namespace labels, the quota use of the policy's other assignments); and whether
    a rival's claim is still unknown. `others` is the assignments' index (others.py): only the
    claims that may weigh on the VM's host and the policy's own assignments are read.
    `policies`: the memo `policy` came from (its host rows parsed on demand)."""
    host = seen.vm.host if seen.vm is not None else ""
    found, unknown = claims_of(others.near(host), me, host)
    mine = labels(me.namespace)
    observed = replace(
        seen,
        claims=found,
        policy=policy_view(policy, host, policies),
        namespace_labels=mine or {},
        namespace_labels_known=mine is not None,
        quota_uses=(
            quota_uses_of(others.of_policy(policy.metadata.name), me, policy.metadata.name, labels)
            if any(c.max_devices is not None for c in policy.spec.consumers)
            else ()  # nothing to count against: no QuotaUse per other assignment
        ),
    )
    return observed, unknown


def quota_uses(
    others: Iterable[Body], me: ObjectKey, policy: str, labels: Callable[[str], Labels]
) -> tuple[QuotaUse, ...]:
    """`quota_uses_of` the bodies, each summarized (a walk of all: for tests and tools)."""
    return quota_uses_of(map(derive, others), me, policy, labels)


def quota_uses_of(
    others: Iterable[Other], me: ObjectKey, policy: str, labels: Callable[[str], Labels]
) -> tuple[QuotaUse, ...]:
    """The other assignments of `policy` that count against a consumer entry's maxDevices:
    all but those being deleted (their devices go) and those refused (they hold nothing)."""
    return tuple(
        QuotaUse(o.key.namespace, o.key.name, o.created, o.devices, labels(o.key.namespace))
        for o in others
        if o.key != me and not o.deleting and o.policy == policy and not o.forbidden
    )


def claims(
    others: Iterable[Body], me: ObjectKey, my_host: str
) -> tuple[tuple[AssignmentClaim, ...], bool]:
    """`claims_of` the bodies, each summarized (a walk of all: for tests and tools)."""
    return claims_of(map(derive, others), me, my_host)


def claims_of(
    others: Iterable[Other], me: ObjectKey, my_host: str
) -> tuple[tuple[AssignmentClaim, ...], bool]:
    """Static devices other assignments ask for, and whether any claim's host is still unknown.

    An assignment reconciled at least once has its VM's host in status. One never reconciled may
    be the older claimant of our device: it counts as claiming on our host until it has looked
    (so the oldest wins every time, whatever order the workers run in); the caller looks again
    soon. Forbidden and over-quota assignments and those being deleted claim nothing (a
    deleting one still holds its devices through the VM, which vCenter reports as InUseByVM).

    A claim on another host than `my_host` is left out: the planner only weighs claims on the
    VM's own host (vm.claims, vm.rules), and leaving them out keeps a reconcile from building one
    claim per assignment of the whole fleet. With no host of ours yet (`my_host` ""), all are kept.
    """
    found: list[AssignmentClaim] = []
    unknown = False
    for other in others:
        claim = other.claim
        if claim is None or other.key == me or other.deleting:
            continue
        host = claim.host
        if host is not None and my_host and host != my_host:
            continue
        if host is None:
            if claim.looked:
                continue  # it has looked and found no VM (or none yet): nothing to hold
            unknown = True
            host = my_host
        found.append(
            AssignmentClaim(
                namespace=other.key.namespace,
                name=other.key.name,
                creation_timestamp=other.created,
                host=host,
                device_ids=claim.device_ids,
                vm_name=claim.vm_name,
                vm_instance_uuid=claim.vm_instance_uuid,
                dynamic=claim.dynamic,
            )
        )
    return tuple(found), unknown
