"""Step 1 of a VMDeviceAssignment reconcile: what vCenter and the caches say, in one value.

The namespace's right to use the policy is checked from the caches before vCenter is asked
anything: a namespace that is not a consumer learns nothing about the VM. A converged VM costs
at most 3 vCenter calls (docs/design.md, "vCenter access"); the rest comes from the caches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.policy import HostPassthroughPolicy
from dpio.planner.vm.observed import VMName, VMObservation
from dpio.planner.vm.plan import pinned
from dpio.reconcile.assignment import inputs
from dpio.reconcile.assignment.others import AssignmentIndex, ObjectKey, ParsedPolicies
from dpio.reconcile.finalizers import FINALIZER
from dpio.reconcile.ports import VCenterVMsPort, VMsPort

Body = Mapping[str, Any]
#: How many of the next queued assignments' VMs an observation names to the adapter, which
#: may read them in the same call (vsphere/vm/read_ahead.py): a batched read's worth.
READ_AHEAD = 31


@dataclass(frozen=True)
class Sources:
    """Where observations come from: the vCenter port and the watch caches."""

    vcenter: VCenterVMsPort
    #: The cached HostPassthroughPolicy body of that name, or None.
    policy: Callable[[str], Body | None]
    #: Every assignment of the watch cache, indexed by host and policy (others.py).
    assignments: AssignmentIndex
    #: The labels of a namespace (for consumers.namespaceSelector); None if not read yet.
    namespace_labels: Callable[[str], Mapping[str, str] | None]
    #: The policies, parsed once per resourceVersion (others.py).
    policies: ParsedPolicies = field(default_factory=inputs.policy_memo)
    #: The cached assignments queued next, at most that many, in the order they will run.
    upcoming: Callable[[int], Sequence[Body]] = lambda _limit: ()


@dataclass(frozen=True)
class Observation:
    """The planner's input, and the port the calls go through (None: vCenter was not asked,
    so there is nothing to call)."""

    namespace: str
    observed: VMObservation
    vms: VMsPort | None = None
    #: A rival's claim is still unknown (it has not reconciled yet): look again soon.
    unknown_claims: bool = False


async def observe(sources: Sources, assignment: VMDeviceAssignment) -> Observation:
    """The VM named in the spec, completed from the caches. Raises PortError."""
    meta, spec = assignment.metadata, assignment.spec
    namespace = meta.namespace or ""
    policy = inputs.parse_policy(sources.policy(spec.policy_ref.name), sources.policies)
    labels = sources.namespace_labels(namespace)
    observed, allowed = inputs.before_vcenter(policy, assignment, namespace, labels)
    if policy is None or not allowed:
        # Labels not read yet: the selector failed closed; look again once they are.
        return Observation(namespace, observed, unknown_claims=labels is None)
    vms = await sources.vcenter.vms_for(policy.spec.vcenter)
    seen = await vms.observe_vm(
        name=spec.vm.name or "",
        instance_uuid=spec.vm.instance_uuid or "",
        ahead=vms_named(sources.upcoming(READ_AHEAD)),
    )
    observed, unknown = _completed(sources, assignment, policy, seen)
    return Observation(namespace, observed, vms, unknown)


async def observe_pinned(
    sources: Sources, assignment: VMDeviceAssignment, policy: HostPassthroughPolicy
) -> Observation:
    """For a deletion: only the pinned VM, as the name may belong to another VM by now.
    Raises PortError."""
    spec = assignment.spec
    pin, _ = pinned(assignment.status)
    vms = await sources.vcenter.vms_for(policy.spec.vcenter)
    seen = await vms.observe_vm(
        name="" if pin else spec.vm.name or "",
        instance_uuid=pin or spec.vm.instance_uuid or "",
        ahead=vms_named(sources.upcoming(READ_AHEAD)),
    )
    observed, unknown = _completed(sources, assignment, policy, seen)
    return Observation(assignment.metadata.namespace or "", observed, vms, unknown)


def vms_named(bodies: Iterable[Body]) -> tuple[VMName, ...]:
    """(name, instance UUID) of the VM each assignment body names, as its spec says (unparsed:
    a body that does not say is skipped; only a hint, the reconcile itself validates). Bodies
    without our finalizer are skipped too: their next run adds it and reads nothing."""
    found = []
    for body in bodies:
        if FINALIZER not in ((body.get("metadata") or {}).get("finalizers") or ()):
            continue
        vm = (body.get("spec") or {}).get("vm") or {}
        name, uuid = vm.get("name"), vm.get("instanceUUID")
        if isinstance(name, str) and name and not uuid:
            found.append((name, ""))
        elif isinstance(uuid, str) and uuid and not name:
            found.append(("", uuid))
    return tuple(found)


def _completed(
    sources: Sources,
    assignment: VMDeviceAssignment,
    policy: HostPassthroughPolicy,
    seen: VMObservation,
) -> tuple[VMObservation, bool]:
    meta = assignment.metadata
    me = ObjectKey(meta.namespace or "", meta.name)
    return inputs.completed(
        seen,
        policy,
        sources.namespace_labels,
        sources.assignments,
        me,
        policies=sources.policies,
    )
