"""VMDeviceAssignment: one object through observe -> plan -> write intent -> apply -> report.

Level-triggered and idempotent, like the policy reconciler. Each step is a function with a
typed result, called in this order from `_reconcile` (and `_delete`), and no step calls back
into an earlier one:

1. observe (observe.py): the VM and the caches -> `Observation` (≤ 3 vCenter calls; none for a
   namespace that may not use the policy);
2. plan (dpio.planner.vm, pure): -> `VMPlan`, the calls and the outcome;
3. write intent (intent.py): the status saying what the calls are about to do, with the
   object's resourceVersion as precondition: a run working from a stale read fails the write
   (409) and changes nothing in vCenter;
4. apply (apply.py): the calls in the plan's order -> `Applied`;
5. report (report.py): a refused call into Ready, Events for admins -> the queue's `Result`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dpio.api.assignment import VMDeviceAssignment, VMDeviceAssignmentStatus
from dpio.api.conditions import AWAITING_RECONCILE, CLEANUP_SUSPENDED, RECONCILING
from dpio.planner.conditions import find, is_true, status_changed
from dpio.planner.suspension import (
    Held,
    Suspension,
    cleanup_waiting_status,
    cleanup_waits,
    suspension_of,
)
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.observed import ObservedPciDevice
from dpio.planner.vm.plan import plan_for, plan_unobserved
from dpio.planner.vm.power import tracking_in
from dpio.planner.vm.result import VMPlan
from dpio.planner.vm.status import cleanup_status, intended_status
from dpio.planner.vm.suspend import held_plan
from dpio.reconcile import finalizers
from dpio.reconcile.assignment import inputs
from dpio.reconcile.assignment.apply import apply
from dpio.reconcile.assignment.intent import Intent, write_intent
from dpio.reconcile.assignment.observe import Sources, observe, observe_pinned
from dpio.reconcile.assignment.others import AssignmentIndex, ParsedPolicies
from dpio.reconcile.assignment.report import Reporter, soonest
from dpio.reconcile.assignment.tenant_messages import tenant_problem
from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio.reconcile.finalizers import Stage
from dpio.reconcile.first_status import write_first_status
from dpio.reconcile.ports import ObjectsPort, PortError, VCenterVMsPort
from dpio.reconcile.queue import Result

Body = Mapping[str, Any]
_log = logging.getLogger(__name__)
#: A Secret or login a human must fix is looked at again this often: no Secret watch, as the
#: operator reads only the Secrets it is pointed at (docs/design.md#credentials-and-permissions).
STALLED_SECONDS = 30.0


@dataclass(frozen=True)
class AssignmentReconciler:
    vcenter: VCenterVMsPort
    objects: ObjectsPort
    #: The cached HostPassthroughPolicy body of that name, or None.
    policy: Callable[[str], Body | None]
    #: Every assignment of the watch cache, indexed by host and policy (kept by the cache).
    assignments: AssignmentIndex
    #: The labels of a namespace (for consumers.namespaceSelector); None if not read yet.
    namespace_labels: Callable[[str], Mapping[str, str] | None]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: Operator-wide dry-run (--dry-run): plan and report, never write to vCenter.
    dry_run: bool = False
    #: The policies, parsed once per resourceVersion.
    policies: ParsedPolicies = field(default_factory=inputs.policy_memo)
    #: The cached assignments queued next (`Controller.upcoming`): their VMs may be read
    #: together with this one's (observe.READ_AHEAD).
    upcoming: Callable[[int], Sequence[Body]] = lambda _limit: ()

    async def __call__(self, body: Body) -> Result:
        assignment = inputs.parse_assignment(body)
        if assignment is None:
            # The CRD schema admits only valid objects; one that slipped past is left alone.
            return Result()
        deleting = assignment.metadata.deletion_timestamp is not None
        match await finalizers.stage(self.objects, body, deleting=deleting):
            case Stage.CLEAN_UP:
                return await self._delete(body, assignment)
            case Stage.RECONCILE:
                return await self._reconcile(body, assignment)
            case Stage.FAILED:
                return Result(failed=True)
            case Stage.DONE:
                if not deleting:  # the finalizer was just added: say so before any vCenter call
                    await write_first_status(
                        self.objects, body, VMDeviceAssignmentStatus, self.clock()
                    )
                return Result()

    @property
    def _sources(self) -> Sources:
        return Sources(
            self.vcenter,
            self.policy,
            self.assignments,
            self.namespace_labels,
            self.policies,
            self.upcoming,
        )

    @property
    def _reporter(self) -> Reporter:
        return Reporter(self.objects, self.policy)

    async def _reconcile(self, body: Body, assignment: VMDeviceAssignment) -> Result:
        now = self.clock()
        try:
            seen = await observe(self._sources, assignment)
        except PortError as err:
            return await self._unobserved(body, assignment, err, now)
        plan = plan_for(assignment, seen.namespace, seen.observed, now)
        plan = held_plan(plan, self._suspension(assignment), assignment.status)
        _log_held(assignment, plan)
        intent = Intent(assignment.status, intended_status(plan, assignment, now))
        try:
            await write_intent(self.objects, body, intent)
        except PortError:
            return Result(failed=True)  # stale read (409) or API error: change nothing
        applied = await apply(seen.vms, self.objects, body, plan)
        return await self._reporter.outcome(body, assignment, seen, plan, applied, now=now)

    async def _unobserved(
        self, body: Body, assignment: VMDeviceAssignment, err: PortError, now: datetime
    ) -> Result:
        """vCenter could not be asked: an outage (retried with backoff) or something a human
        must fix, such as a missing Secret or a refused login (Stalled; looked at again on a
        slow timer). Devices and power tracking stay as last recorded."""
        told = tenant_problem(err, assignment.spec.policy_ref.name)
        plan = plan_unobserved(assignment.status, told, stalled=not err.retryable)
        plan = held_plan(plan, self._suspension(assignment), assignment.status)
        await self._reporter.tell_admins(assignment, err)
        intent = Intent(assignment.status, intended_status(plan, assignment, now))
        with contextlib.suppress(PortError):  # the next run reports it again
            await write_intent(self.objects, body, intent)
        return Result(failed=True) if err.retryable else Result(requeue_after=STALLED_SECONDS)

    async def _delete(self, body: Body, assignment: VMDeviceAssignment) -> Result:
        """Remove our devices, restore `previous`; the power policy applies (docs/design.md,
        "VM side: deletion")."""
        spec, reporter = assignment.spec, self._reporter
        if not _may_have_changed_vm(assignment.status):
            # Never allowed to act (e.g. Forbidden) or never got that far: nothing of ours is on
            # the VM. Matching devices by spec identity here would let anyone who can create
            # and delete an assignment strip (and power off) a VM that is not theirs.
            _log_release(assignment, "NothingRecorded")
            return await finalizers.release(self.objects, body)
        policy = inputs.parse_policy(self.policy(spec.policy_ref.name), self.policies)
        if policy is None:
            _log_release(assignment, "PolicyNotFound")
            # Without its policy nothing says which vCenter, nor whether the namespace may still
            # act on the VM: refuse (never the operator's default vCenter), release, say so.
            return await reporter.released(
                body,
                f"HostPassthroughPolicy {spec.policy_ref.name} no longer exists: the VM is left "
                "as it is (its devices and memory reservation stay; a vSphere administrator "
                "removes them, or recreate the policy before deleting assignments)",
            )
        try:
            seen = await observe_pinned(self._sources, assignment, policy)
        except PortError as err:
            await reporter.cleanup_failed(body, assignment, err)
            return Result(failed=True)
        plan = plan_assignment_deletion(
            namespace=seen.namespace,
            spec=spec,
            observed=seen.observed,
            now=self.clock(),
            previous=assignment.status,
            tracking=tracking_in(assignment.status),
        )
        if plan.outcome.release and plan.outcome.not_ready is not None:
            _log_release(assignment, plan.outcome.not_ready.reason)
            return await reporter.released(body, plan.outcome.not_ready.message)
        if plan.outcome.release:
            vm = plan.outcome.vm
            _log_release(assignment, "CleanedUp", vm.pci_devices if vm is not None else ())
            return await finalizers.release(self.objects, body)
        plan = held_plan(plan, self._suspension(assignment), assignment.status)
        held = plan.outcome.held
        if held is not None and held.pending:
            return await self._cleanup_waits(body, assignment, held)
        intent = Intent(assignment.status, cleanup_status(plan, assignment, self.clock()))
        try:
            await write_intent(self.objects, body, intent)
        except PortError as err:
            await reporter.cleanup_failed(body, assignment, err)
            return Result(failed=True)
        applied = await apply(seen.vms, self.objects, body, plan)
        if applied.error is not None:
            await reporter.cleanup_failed(body, assignment, applied.error)
            return Result(failed=True)
        return Result(requeue_after=soonest(plan, CONFIRM_SECONDS if applied.made else None))

    def _suspension(self, assignment: VMDeviceAssignment) -> Suspension | None:
        return suspension_of(suspend=assignment.spec.suspend, dry_run=self.dry_run)

    async def _cleanup_waits(
        self, body: Body, assignment: VMDeviceAssignment, held: Held
    ) -> Result:
        """Suspended: the deletion's calls are held back and the finalizer stays; a change of
        spec.suspend (or an operator restarted without --dry-run) runs it again."""
        message = cleanup_waits(held)
        _log.info("Holding back deletion cleanup", extra=_held_fields(assignment, held))
        previous = assignment.status
        generation = assignment.metadata.generation or 0
        status = cleanup_waiting_status(previous, held, generation, self.clock())
        if not status_changed(previous, status):
            return Result()  # said already
        try:
            await write_intent(self.objects, body, Intent(previous, status))
        except PortError:
            return Result(failed=True)
        await self.objects.event(body, "Warning", CLEANUP_SUSPENDED, message)
        return Result()


def _held_fields(assignment: VMDeviceAssignment, held: Held) -> dict[str, Any]:
    meta = assignment.metadata
    return {
        "namespace": meta.namespace,
        "object": meta.name,
        "reason": held.suspension.reason,
        "pending": list(held.pending),
    }


def _log_release(
    assignment: VMDeviceAssignment, why: str, left: Sequence[ObservedPciDevice] = ()
) -> None:
    """Why a finalizer goes: the one line that explains, afterwards, a VM left as it was.
    `left`: the passthrough devices still on the VM (someone else's, or found attached)."""
    meta, status = assignment.metadata, assignment.status
    _log.info(
        "Releasing the finalizer",
        extra={
            "namespace": meta.namespace,
            "object": meta.name,
            "reason": why,
            "vm": status.vm.instance_uuid if status.vm is not None else None,
            "devicesLeft": [d.key for d in left],
        },
    )


def _log_held(assignment: VMDeviceAssignment, plan: VMPlan) -> None:
    held = plan.outcome.held
    if held is not None and held.pending:
        _log.info("Holding back vCenter writes", extra=_held_fields(assignment, held))


def _may_have_changed_vm(status: VMDeviceAssignmentStatus) -> bool:
    """Status records every change before it is made: `previous`, power tracking, and
    Reconciling=True while calls are under way (a crash after a call leaves it True). The
    first status's Reconciling=True (AwaitingReconcile) comes before anything was observed."""
    reconciling = find(status.conditions, RECONCILING)
    calls_under_way = (
        is_true(status.conditions, RECONCILING)
        and reconciling is not None
        and reconciling.reason != AWAITING_RECONCILE
    )
    return (
        status.previous is not None
        or status.power is not None
        or any(d.attached for d in status.devices)
        or calls_under_way
    )
