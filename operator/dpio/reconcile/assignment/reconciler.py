"""VMDeviceAssignment: observe -> plan -> apply -> status, for one object.

Level-triggered and idempotent, like the policy reconciler. One run: finalizer first; the
namespace's right to use the policy is checked from caches before vCenter is asked anything
(a namespace that is not a consumer learns nothing about the VM); observe the VM (≤ 3 calls);
plan; write status (what the operator is about to do, `previous` and power tracking included)
with the object's resourceVersion as precondition, THEN make the calls in the plan's order:
cluster overrides, power before, ReconfigVM, power after. A run working from a stale read fails
the write (409) and changes nothing in vCenter.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dpio.api.assignment import VMDeviceAssignment, VMDeviceAssignmentStatus
from dpio.api.conditions import CLEANUP_SKIPPED, READY, RECONCILING, RECONFIGURE_FAILED
from dpio.planner.conditions import Problem, compute_conditions, find, is_true, status_changed
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.observed import VMObservation
from dpio.planner.vm.plan import VMCalls, VMOutcome, VMPlan, pinned
from dpio.planner.vm.status import assignment_status, assignment_wants
from dpio.reconcile import finalizers
from dpio.reconcile.assignment import inputs
from dpio.reconcile.assignment.apply import (
    Applier,
    merge_patch,
    transition_events,
)
from dpio.reconcile.assignment.tenant_messages import tenant_problem
from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio.reconcile.finalizers import Stage
from dpio.reconcile.ports import ObjectsPort, PortError, VCenterVMsPort, VMsPort
from dpio.reconcile.queue import Result

log = logging.getLogger(__name__)

Body = Mapping[str, Any]
#: While another assignment's claim on our device is not known yet, look again this soon.
CLAIM_CHECK_SECONDS = 2.0
#: A Secret or login a human must fix is looked at again this often: no Secret watch, as the
#: operator reads only the Secrets it is pointed at (docs/design.md#credentials-and-permissions).
STALLED_SECONDS = 30.0


@dataclass(frozen=True)
class AssignmentReconciler:
    vcenter: VCenterVMsPort
    objects: ObjectsPort
    #: The cached HostPassthroughPolicy body of that name, or None.
    policy: Callable[[str], Body | None]
    all_assignments: Callable[[], Iterable[Body]]
    #: The labels of a namespace (for consumers.namespaceSelector); None if not read yet.
    namespace_labels: Callable[[str], Mapping[str, str] | None]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

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
            case Stage.DONE:
                return Result()

    async def _reconcile(self, body: Body, assignment: VMDeviceAssignment) -> Result:
        now, namespace = self.clock(), assignment.metadata.namespace or ""
        try:
            vms, observed, unknown_claims = await self._observe(assignment)
        except PortError as err:
            return await self._unobserved(body, assignment, err)
        plan = inputs.plan(assignment, namespace, observed, now)
        try:
            await self._report(body, assignment, plan, None)
        except PortError:
            return Result(failed=True)  # stale read (409) or API error: change nothing
        if vms is not None and not plan.empty:
            try:
                await Applier(vms, self.objects, body).apply(plan)
            except PortError as err:
                await self._failed(body, assignment, plan, err)
                return Result(failed=True)
            return Result(requeue_after=_soonest(plan, CONFIRM_SECONDS))
        if unknown_claims and (plan.outcome.unavailable or plan.outcome.forbidden):
            return Result(requeue_after=_soonest(plan, CLAIM_CHECK_SECONDS))
        return Result(requeue_after=_soonest(plan, None))

    async def _unobserved(
        self, body: Body, assignment: VMDeviceAssignment, err: PortError
    ) -> Result:
        """vCenter could not be asked: an outage (retried with backoff) or something a human
        must fix, such as a missing Secret or a refused login (Stalled; looked at again on a
        slow timer). Devices and power tracking stay as last recorded."""
        status = assignment.status
        kept = VMOutcome(tracking=inputs.tracking(status), previous=status.previous)
        told = tenant_problem(err, assignment.spec.policy_ref.name)
        outcome = replace(kept, not_ready=told) if err.retryable else replace(kept, stalled=told)
        plan = VMPlan(outcome=outcome)
        await self._tell_admins(assignment, err)
        with contextlib.suppress(PortError):  # the next run reports it again
            await self._report(body, assignment, plan, None)
        return Result(failed=True) if err.retryable else Result(requeue_after=STALLED_SECONDS)

    async def _observe(
        self, assignment: VMDeviceAssignment
    ) -> tuple[VMsPort | None, VMObservation, bool]:
        """The VM (unless the namespace may not use the policy: then vCenter is not asked and
        the VM stays unknown), completed from the caches; and whether a rival's claim is still
        unknown. No port when nothing was observed."""
        meta, spec = assignment.metadata, assignment.spec
        namespace = meta.namespace or ""
        policy = inputs.parse_policy(self.policy(spec.policy_ref.name))
        labels = self.namespace_labels(namespace)
        observed, allowed = inputs.before_vcenter(policy, assignment, namespace, labels)
        if policy is None or not allowed:
            # Labels not read yet: the selector failed closed; look again once they are.
            return None, observed, labels is None
        vms = await self.vcenter.vms_for(policy.spec.vcenter)
        seen = await vms.observe_vm(
            name=spec.vm.name or "", instance_uuid=spec.vm.instance_uuid or ""
        )
        observed, unknown = inputs.completed(
            seen,
            policy,
            self.namespace_labels,
            self.all_assignments(),
            inputs.ObjectKey(namespace, meta.name),
        )
        return vms, observed, unknown

    async def _delete(self, body: Body, assignment: VMDeviceAssignment) -> Result:
        """Remove our devices, restore `previous`; the power policy applies (docs/design.md,
        "VM side: deletion")."""
        spec = assignment.spec
        if not _may_have_changed_vm(assignment.status):
            # Never allowed to act (e.g. Forbidden) or never got that far: nothing of ours is on
            # the VM. Matching devices by spec identity here would let anyone who can create
            # and delete an assignment strip (and power off) a VM that is not theirs.
            await finalizers.release(self.objects, body)
            return Result()
        meta, namespace = assignment.metadata, assignment.metadata.namespace or ""
        policy = inputs.parse_policy(self.policy(spec.policy_ref.name))
        if policy is None:
            # Without its policy nothing says which vCenter, nor whether the namespace may still
            # act on the VM: refuse (never the operator's default vCenter), release, say so.
            await self._released(
                body,
                f"HostPassthroughPolicy {spec.policy_ref.name} no longer exists: the VM is left "
                "as it is (its devices and memory reservation stay; a vSphere administrator "
                "removes them, or recreate the policy before deleting assignments)",
            )
            return Result()
        pin, _ = pinned(assignment.status)
        try:
            vms = await self.vcenter.vms_for(policy.spec.vcenter)
            # Only the pinned VM: the name may belong to another VM by now.
            seen = await vms.observe_vm(
                name="" if pin else spec.vm.name or "",
                instance_uuid=pin or spec.vm.instance_uuid or "",
            )
        except PortError as err:
            await self._tell_admins(assignment, err)
            told = tenant_problem(err, spec.policy_ref.name)
            await self.objects.event(body, "Warning", err.reason, f"Cleanup failed: {told.message}")
            return Result(failed=True)
        observed, _ = inputs.completed(
            seen,
            policy,
            self.namespace_labels,
            self.all_assignments(),
            inputs.ObjectKey(namespace, meta.name),
        )
        plan = plan_assignment_deletion(
            namespace=namespace,
            spec=spec,
            observed=observed,
            now=self.clock(),
            previous=assignment.status,
            tracking=inputs.tracking(assignment.status),
        )
        if plan.outcome.release and plan.outcome.not_ready is not None:
            await self._released(body, plan.outcome.not_ready.message)
            return Result()
        if plan.outcome.release:
            await finalizers.release(self.objects, body)
            return Result()
        status = assignment.status
        conditions = compute_conditions(
            status.conditions,
            assignment_wants(plan),
            assignment.metadata.generation or 0,
            self.clock(),
        )
        cleanup = status.model_copy(
            update={
                "conditions": list(conditions),
                "power": inputs.power_status(plan.outcome.tracking),
            }
        )
        try:
            await self._write(body, status, cleanup)
            await Applier(vms, self.objects, body).apply(plan)
        except PortError as err:
            await self._tell_admins(assignment, err)
            told = tenant_problem(err, spec.policy_ref.name)
            await self.objects.event(body, "Warning", err.reason, f"Cleanup failed: {told.message}")
            return Result(failed=True)
        if plan.empty:
            return Result(requeue_after=_soonest(plan, None))
        return Result(requeue_after=_soonest(plan, CONFIRM_SECONDS))

    async def _released(self, body: Body, why: str) -> None:
        """Deletion without touching the VM: an Event says why, then the finalizer goes."""
        await self.objects.event(body, "Warning", CLEANUP_SKIPPED, why)
        await finalizers.release(self.objects, body)

    async def _tell_admins(self, assignment: VMDeviceAssignment, err: PortError) -> None:
        """The details a tenant may not see (Secret, server, account) go to the policy's
        Events and the log, where the platform team looks."""
        meta = assignment.metadata
        log.warning(
            "vCenter call failed for VMDeviceAssignment",
            extra={"namespace": meta.namespace, "object": meta.name, "reason": err.reason,
                   "error": err.message},
        )  # fmt: skip
        policy = self.policy(assignment.spec.policy_ref.name)
        ready = find(assignment.status.conditions, READY)
        if policy is not None and (ready is None or ready.reason != err.reason):
            message = f"VMDeviceAssignment {meta.namespace}/{meta.name}: {err.message}"
            with contextlib.suppress(PortError):
                await self.objects.event(policy, "Warning", err.reason, message)

    async def _report(
        self, body: Body, assignment: VMDeviceAssignment, plan: VMPlan, problem: Problem | None
    ) -> None:
        if problem is not None:
            plan = replace(plan, outcome=replace(plan.outcome, not_ready=problem))
        previous = assignment.status
        status = assignment_status(
            plan,
            previous=previous,
            generation=assignment.metadata.generation or 0,
            now=self.clock(),
            adapters=[n.adapter for n in assignment.spec.network_direct_path],
        )
        status = status.model_copy(update={"power": inputs.power_status(plan.outcome.tracking)})
        await self._write(body, previous, status)

    async def _failed(
        self, body: Body, assignment: VMDeviceAssignment, plan: VMPlan, err: PortError
    ) -> None:
        """vCenter refused a call: say so in Ready (the next run retries with backoff)."""
        told = tenant_problem(err, assignment.spec.policy_ref.name)
        if told.message != err.message:
            await self._tell_admins(assignment, err)
        problem = Problem(RECONFIGURE_FAILED, f"{err.reason}: {told.message}")
        await self.objects.event(body, "Warning", RECONFIGURE_FAILED, problem.message)
        # The status written before the calls moved resourceVersion on; this write carries no
        # precondition (it changes no vCenter state and repeats the tracking just written).
        unguarded = {**body, "metadata": {**body["metadata"], "resourceVersion": ""}}
        done = replace(plan, calls=VMCalls(upgrade=plan.calls.upgrade))
        with contextlib.suppress(PortError):  # the retry reports it again
            await self._report(unguarded, assignment, done, problem)

    async def _write(
        self, body: Body, previous: VMDeviceAssignmentStatus, status: VMDeviceAssignmentStatus
    ) -> None:
        current = previous if body.get("status") else None
        if not status_changed(current, status):
            return  # steady state: no write at all
        before = body.get("status") or {}
        after = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        await self.objects.patch_status(body, merge_patch(before, after))
        await transition_events(self.objects, body, previous, status)


def _may_have_changed_vm(status: VMDeviceAssignmentStatus) -> bool:
    """Status records every change before it is made: `previous`, power tracking, and
    Reconciling=True while calls are under way (a crash after a call leaves it True)."""
    return (
        status.previous is not None
        or status.power is not None
        or any(d.attached for d in status.devices)
        or is_true(status.conditions, RECONCILING)
    )


def _soonest(plan: VMPlan, seconds: float | None) -> float | None:
    wanted = [s for s in (seconds,) if s is not None]
    if plan.outcome.requeue_after is not None:
        wanted.append(plan.outcome.requeue_after.total_seconds())
    return min(wanted) if wanted else None
