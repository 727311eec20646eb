"""Step 5 of a VMDeviceAssignment reconcile: say how it went and when to look again.

Tenants read the assignment's conditions and Events; the details a tenant may not see (Secret,
server, account) go to the policy's Events and the log, where the platform team looks
(tenant_messages.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.conditions import CLEANUP_SKIPPED, READY, RECONFIGURE_FAILED
from dpio.planner.conditions import Problem, find
from dpio.planner.vm.plan import VMCalls, VMPlan
from dpio.planner.vm.status import intended_status
from dpio.reconcile import finalizers
from dpio.reconcile.assignment.apply import Applied
from dpio.reconcile.assignment.intent import Intent, write_intent
from dpio.reconcile.assignment.observe import Observation
from dpio.reconcile.assignment.tenant_messages import tenant_problem
from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio.reconcile.ports import ObjectsPort, PortError
from dpio.reconcile.queue import Result

log = logging.getLogger(__name__)

Body = Mapping[str, Any]
#: While another assignment's claim on our device is not known yet, look again this soon.
CLAIM_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Reporter:
    objects: ObjectsPort
    #: The cached HostPassthroughPolicy body of that name, or None (its Events reach admins).
    policy: Callable[[str], Body | None]

    async def outcome(
        self,
        body: Body,
        assignment: VMDeviceAssignment,
        seen: Observation,
        plan: VMPlan,
        applied: Applied,
        *,
        now: datetime,
    ) -> Result:
        """After the calls: a refused call goes into Ready; otherwise look again to confirm
        what the calls did, or when the plan or an unknown rival claim asks for it."""
        if applied.error is not None:
            await self._refused(body, assignment, plan, applied.error, now)
            return Result(failed=True)
        if applied.made:
            return Result(requeue_after=soonest(plan, CONFIRM_SECONDS))
        outcome = plan.outcome
        if seen.unknown_claims and (outcome.unavailable or outcome.forbidden):
            return Result(requeue_after=soonest(plan, CLAIM_CHECK_SECONDS))
        return Result(requeue_after=soonest(plan, None))

    async def cleanup_failed(
        self, body: Body, assignment: VMDeviceAssignment, err: PortError
    ) -> None:
        await self.tell_admins(assignment, err)
        told = tenant_problem(err, assignment.spec.policy_ref.name)
        await self.objects.event(body, "Warning", err.reason, f"Cleanup failed: {told.message}")

    async def released(self, body: Body, why: str) -> Result:
        """Deletion without touching the VM: an Event says why, then the finalizer goes."""
        await self.objects.event(body, "Warning", CLEANUP_SKIPPED, why)
        return await finalizers.release(self.objects, body)

    async def tell_admins(self, assignment: VMDeviceAssignment, err: PortError) -> None:
        """The details a tenant may not see go to the policy's Events and the log, once per
        reason (not again while Ready already says it)."""
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

    async def _refused(
        self,
        body: Body,
        assignment: VMDeviceAssignment,
        plan: VMPlan,
        err: PortError,
        now: datetime,
    ) -> None:
        """vCenter refused a call: say so in Ready (the next run retries with backoff). A fault
        retrying won't fix (not `retryable`) also makes the assignment Stalled: kstatus Failed,
        not InProgress until a GitOps timeout."""
        told = tenant_problem(err, assignment.spec.policy_ref.name)
        if told.message != err.message:
            await self.tell_admins(assignment, err)
        problem = Problem(RECONFIGURE_FAILED, f"{err.reason}: {told.message}")
        await self.objects.event(body, "Warning", RECONFIGURE_FAILED, problem.message)
        # The calls are over; a refused UpgradeVM stays in Reconciling's message: its pass,
        # which holds no other call, is retried whole.
        stalled = plan.outcome.stalled if err.retryable else problem
        outcome = replace(plan.outcome, not_ready=problem, stalled=stalled)
        done = VMPlan(VMCalls(upgrade=plan.calls.upgrade), outcome)
        # The intent written before the calls moved resourceVersion on; this write carries no
        # precondition (it changes no vCenter state and repeats the tracking just written).
        intent = Intent(assignment.status, intended_status(done, assignment, now), guarded=False)
        with contextlib.suppress(PortError):  # the retry reports it again
            await write_intent(self.objects, body, intent)


def soonest(plan: VMPlan, seconds: float | None) -> float | None:
    wanted = [s for s in (seconds,) if s is not None]
    if plan.outcome.requeue_after is not None:
        wanted.append(plan.outcome.requeue_after.total_seconds())
    return min(wanted) if wanted else None
