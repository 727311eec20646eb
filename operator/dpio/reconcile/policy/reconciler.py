"""HostPassthroughPolicy: observe -> plan -> apply -> status, for one object.

Level-triggered and idempotent: every run reads all hosts once, plans against the spec, makes
only the calls the plan holds (none when the hosts are right) and writes status only when it
changed. The spec is never written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dpio.api.conditions import CLEANUP_SUSPENDED, CLUSTER_BUDGET_EXHAUSTED
from dpio.api.policy import (
    HostPassthroughPolicy,
    HostPassthroughPolicyStatus,
    RollingRebootStatus,
)
from dpio.planner import (
    EnterMaintenanceMode,
    ExitMaintenanceMode,
    OtherPolicy,
    OthersIndex,
    PolicyPlan,
    deletion_touches_hosts,
    plan_deletion,
    plan_policy,
    policy_status,
    status_changed,
    vcenter_unreachable_status,
)
from dpio.planner.conditions import Problem
from dpio.planner.host.deletion import held_deletion
from dpio.planner.host.events import transition_events
from dpio.planner.host.in_use import DeviceClaim
from dpio.planner.host.status import stalled_status
from dpio.planner.host.steps import (
    HostTask,
    TaskSeen,
    UnconfirmedStep,
    tasks_seen,
)
from dpio.planner.suspension import (
    Held,
    Suspension,
    cleanup_waiting_status,
    cleanup_waits,
    suspension_of,
)
from dpio.reconcile import finalizers
from dpio.reconcile.constants import CONFIRM_SECONDS
from dpio.reconcile.finalizers import Stage
from dpio.reconcile.first_status import write_first_status
from dpio.reconcile.policy.host_calls import tell_sent_again, update_passthru
from dpio.reconcile.policy.others import OtherPolicies
from dpio.reconcile.policy.reservations import RebootReservations
from dpio.reconcile.policy.selections import Selections
from dpio.reconcile.policy.sent_steps import SentSteps
from dpio.reconcile.ports import HostsPort, ObjectsPort, PortError, VCenterPort
from dpio.reconcile.queue import Result

_log = logging.getLogger(__name__)
#: While a rolling reboot is draining a host, look again this often to enforce drainTimeout.
DRAIN_CHECK_SECONDS = 15.0
#: A connection that needs a human (Secret missing or wrong, login refused) is looked at again
#: this often: a timer, not a watch on Secrets, because the operator may read only the Secrets it
#: is pointed at (docs/design.md#credentials-and-permissions) and a cluster-wide Secret watch
#: needs list/watch on all of them.
#: Re-reading one Secret costs one GET on the API server and no vCenter call (see
#: app.logins: a refused login is not retried with the same password).
STALLED_RECHECK_SECONDS = 30.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The status fields this reconciler owns, as the API spells them.
_STATUS_FIELDS = frozenset(
    f.alias or name for name, f in HostPassthroughPolicyStatus.model_fields.items()
)


def _recheck_after(plan: PolicyPlan, now: datetime, draining: bool) -> float | None:
    """When to look again with nothing to confirm: soon while a drain runs or a host waits for
    a slot in its cluster (a host another policy, or none, brings back frees it without any
    change to this policy's hosts); at the next window boundary while a reboot waits on
    windows (so it starts when one opens, and status.reboot stays true)."""
    after = []
    if draining or CLUSTER_BUDGET_EXHAUSTED in plan.reboot.reasons.values():
        after.append(DRAIN_CHECK_SECONDS)
    boundary = plan.reboot.window.next_boundary
    if plan.reboot_required and plan.reboot.window.bounded and boundary is not None:
        after.append(max((boundary - now).total_seconds(), 1.0))
    return min(after, default=None)


@dataclass(frozen=True)
class PolicyReconciler:
    vcenter: VCenterPort
    objects: ObjectsPort
    all_policies: Callable[[], Iterable[Mapping[str, Any]]]
    #: The cache's `spec_changes`: while it stays, the other policies are the same (None:
    #: walk `all_policies` on every reconcile).
    policies_version: Callable[[], int] | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: Parsed once per generation, shared by all reconciles of this kind.
    other_policies: OtherPolicies = field(default_factory=OtherPolicies)
    #: What each policy last planned on: which vCenter changes concern it (`PolicyTriggers`).
    selections: Selections = field(default_factory=Selections)
    #: What the cached VMDeviceAssignments claim and have not attached yet (`PendingClaims`):
    #: those devices are never disabled from under them.
    pending_claims: Callable[[], tuple[DeviceClaim, ...]] = lambda: ()
    #: Operator-wide dry-run (--dry-run): plan and report, never write to vCenter.
    dry_run: bool = False
    #: Hosts each policy's rolling reboot holds: a cluster's maxUnavailable counts them.
    reservations: RebootReservations = field(default_factory=RebootReservations)
    #: Recorded reboot steps whose task this process sent or saw: not asked about again.
    sent_steps: SentSteps = field(default_factory=SentSteps)

    async def __call__(self, body: Mapping[str, Any]) -> Result:
        try:
            policy = HostPassthroughPolicy.model_validate(body)
        except ValidationError as err:
            # The CRD schema admits only valid objects; one that slipped past (an older CRD)
            # is left alone rather than acted on half-understood.
            name = body.get("metadata", {}).get("name", "")
            _log.warning(
                "Ignoring HostPassthroughPolicy that does not parse",
                extra={"object": name, "errors": err.error_count()},
            )
            return Result()
        deleting = policy.metadata.deletion_timestamp is not None
        match await finalizers.stage(self.objects, body, deleting=deleting):
            case Stage.CLEAN_UP:
                return await self._delete(body, policy)
            case Stage.RECONCILE:
                return await self._reconcile(body, policy)
            case Stage.FAILED:
                return Result(failed=True)
            case Stage.DONE:
                if not deleting:  # the finalizer was just added: say so before any vCenter call
                    await write_first_status(
                        self.objects, body, HostPassthroughPolicyStatus, self.clock()
                    )
                return Result()

    async def _reconcile(self, body: Mapping[str, Any], policy: HostPassthroughPolicy) -> Result:
        now = self.clock()
        generation = policy.metadata.generation or 0
        previous = policy.status
        try:
            hosts = await self.vcenter.hosts_for(policy.spec)
            inventory = await hosts.read_inventory()
        except PortError as err:
            return await self._unavailable(body, previous, err, generation)
        others = self._others_index()
        self.reservations.seed(self.all_policies)
        claims = self._claims(policy.spec.exclusive)

        def planned(seen: Mapping[str, TaskSeen]) -> PolicyPlan:
            return self.reservations.decide(
                policy.metadata.name,
                others.names,
                lambda reserved: plan_policy(
                    name=policy.metadata.name,
                    creation_timestamp=policy.metadata.creation_timestamp or _EPOCH,
                    spec=policy.spec,
                    inventory=inventory,
                    now=now,
                    others=others,
                    previous=previous,
                    claims=claims,
                    reserved=reserved,
                    suspension=self._suspension(policy),
                    seen=seen,
                ),
            )

        seen = self.sent_steps.seen(policy.metadata.name, _records(previous))
        plan = planned(seen)
        if plan.reboot.unconfirmed:
            # A recorded step shows no effect: was its task ever sent? Ask vCenter, plan again.
            asked = await self._ask(policy.metadata.name, hosts, plan.reboot.unconfirmed)
            plan = planned({**seen, **asked})
        self.selections.record(policy.metadata.name, policy.spec.hosts, plan)
        if plan.held is not None and plan.held.pending:
            _log.info("Holding back vCenter writes", extra=_held_fields(policy, plan.held))
        try:
            await update_passthru(self.objects, body, hosts, plan.updates)
        except PortError as err:
            return await self._unavailable(body, previous, err, generation)
        status = policy_status(
            plan,
            reboot_policy=policy.spec.reboot.policy,
            previous=previous,
            generation=generation,
            now=now,
            insecure=hosts.insecure,
        )
        # The rolling-reboot record goes to status BEFORE its task starts, with the object's
        # resourceVersion as precondition: a run working from a stale read fails the write
        # (409) and starts nothing, so a host is never put through a second reboot.
        try:
            await self._write(body, previous, status)
        except PortError:
            return Result(failed=True)
        try:
            await self._start(body, policy.metadata.name, hosts, plan)
        except PortError:
            return Result(failed=True)
        # Every started step has its record in status (written above).
        # Suspended, no step starts and no drainTimeout is enforced: no timer either.
        draining = plan.held is None and any(h.rolling_reboot is not None for h in status.hosts)
        if not plan.empty:
            # Confirm what the calls did with one more read (status shows the projection
            # until then); vCenter change notifications make this sooner when they arrive.
            return Result(requeue_after=CONFIRM_SECONDS)
        return Result(requeue_after=_recheck_after(plan, now, draining))

    async def _unavailable(
        self,
        body: Mapping[str, Any],
        previous: HostPassthroughPolicyStatus,
        err: PortError,
        generation: int,
    ) -> Result:
        """vCenter could not be used: retry soon (outage) or slowly (a human must act)."""
        now = self.clock()
        if err.retryable:
            status = vcenter_unreachable_status(previous, err.message, generation, now)
            result = Result(failed=True)  # backoff: docs/design.md#failures-and-retries
        else:
            status = stalled_status(previous, Problem(err.reason, err.message), generation, now)
            result = Result(requeue_after=STALLED_RECHECK_SECONDS)
        try:
            await self._write(body, previous, status)
        except PortError:
            return Result(failed=True)
        return result

    async def _ask(
        self, name: str, hosts: HostsPort, steps: Sequence[UnconfirmedStep]
    ) -> Mapping[str, TaskSeen]:
        """What each host's recent tasks say of its recorded step; `UNKNOWN` if they can't be
        read (the host then waits: a step is never sent again on a guess)."""
        tasks: Mapping[str, Sequence[HostTask]] | None
        try:
            tasks = await hosts.recent_tasks([s.moref for s in steps])
        except PortError as err:
            _log.warning(
                "Could not read the recent tasks of hosts whose reboot step shows no effect",
                extra={"object": name, "hosts": [s.host for s in steps], "error": err.message},
            )
            tasks = None
        seen = tasks_seen(steps, tasks)
        for step in steps:
            if seen[step.host] is TaskSeen.SENT:
                self.sent_steps.remember(name, step.host, step.phase, step.since)
            _log.info(
                "Asked vCenter whether a recorded reboot step was sent",
                extra={
                    "object": name,
                    "host": step.host,
                    "phase": step.phase.value,
                    "since": step.since.isoformat(),
                    "seen": seen[step.host].value,
                },
            )
        return seen

    async def _start(
        self, body: Mapping[str, Any], name: str, hosts: HostsPort, plan: PolicyPlan
    ) -> None:
        """Each step's task; one whose record had none in vCenter is said to be sent again."""
        for action in plan.reboot_actions:
            record = plan.reboot.records.get(action.host)
            await hosts.start(action)
            if record is not None:  # vCenter has the task: no need to ask about this record
                self.sent_steps.remember(name, action.host, record.phase, record.since)
            if action.host in plan.reboot.resent and record is not None:
                await tell_sent_again(self.objects, body, name, action, record)
            reason = {
                EnterMaintenanceMode: "EnteringMaintenanceMode",
                ExitMaintenanceMode: "ExitingMaintenanceMode",
            }.get(type(action), "RebootingHost")
            await self.objects.event(body, "Normal", reason, f"{reason} {action.host}")

    async def _delete(self, body: Mapping[str, Any], policy: HostPassthroughPolicy) -> Result:
        if deletion_touches_hosts(policy.spec):
            try:
                hosts = await self.vcenter.hosts_for(policy.spec)
                inventory = await hosts.read_inventory()
                updates = plan_deletion(
                    name=policy.metadata.name,
                    spec=policy.spec,
                    inventory=inventory,
                    others=self._others(policy.metadata.name),
                    claims=self._claims(True),
                )
                held = held_deletion(self._suspension(policy), updates)
                if held is not None:
                    return await self._cleanup_waits(body, policy, held)
                await update_passthru(self.objects, body, hosts, updates)
            except PortError as err:
                await self.objects.event(body, "Warning", err.reason, f"Cleanup failed: {err}")
                return Result(failed=True)
        released = await finalizers.release(self.objects, body)
        if released.failed:
            return released
        self.selections.forget(policy.metadata.name)
        self.reservations.forget(policy.metadata.name)
        self.sent_steps.forget(policy.metadata.name)
        return Result()

    def _suspension(self, policy: HostPassthroughPolicy) -> Suspension | None:
        return suspension_of(suspend=policy.spec.suspend, dry_run=self.dry_run)

    async def _cleanup_waits(
        self, body: Mapping[str, Any], policy: HostPassthroughPolicy, held: Held
    ) -> Result:
        """Suspended: the deletion's writes are held back and the finalizer stays; a change of
        spec.suspend (or an operator restarted without --dry-run) runs it again."""
        message = cleanup_waits(held)
        _log.info("Holding back deletion cleanup", extra=_held_fields(policy, held))
        previous = policy.status
        generation = policy.metadata.generation or 0
        status = cleanup_waiting_status(previous, held, generation, self.clock())
        if not status_changed(previous, status):
            return Result()  # said already
        try:
            await self._write(body, previous, status)
        except PortError:
            return Result(failed=True)
        await self.objects.event(body, "Warning", CLEANUP_SUSPENDED, message)
        return Result()

    async def _write(
        self,
        body: Mapping[str, Any],
        previous: HostPassthroughPolicyStatus,
        status: HostPassthroughPolicyStatus,
    ) -> None:
        current = previous if body.get("status") else None
        if not status_changed(current, status):
            return  # steady state: no write at all
        payload = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        # A merge patch keeps what it leaves out: a field that went away (status.reboot once
        # no host waits) is written as null, which removes it.
        for gone in _STATUS_FIELDS & set(body.get("status") or {}) - set(payload):
            payload[gone] = None
        await self.objects.patch_status(body, payload)
        await self._transition_events(body, previous, status)

    async def _transition_events(
        self,
        body: Mapping[str, Any],
        previous: HostPassthroughPolicyStatus,
        status: HostPassthroughPolicyStatus,
    ) -> None:
        # One Event per flip, not per reconcile: `kubectl describe` tells the story.
        for event in transition_events(previous, status):
            await self.objects.event(body, event.type, event.reason, event.message)

    def _claims(self, disables: bool) -> tuple[DeviceClaim, ...]:
        """Devices assignments still converge to: read only for a plan that may disable devices
        (exclusive, deletion)."""
        return self.pending_claims() if disables else ()

    def _others_index(self) -> OthersIndex:
        """Every policy, indexed for `Rivals.build` (once per change of any policy's spec)."""
        if self.policies_version is None:
            return OthersIndex(self.other_policies.others(self.all_policies(), ""))
        return self.other_policies.index_at(self.policies_version(), self.all_policies)

    def _others(self, name: str) -> list[OtherPolicy]:
        if self.policies_version is None:
            return self.other_policies.others(self.all_policies(), name)
        return self.other_policies.others_at(self.policies_version(), self.all_policies, name)


def _records(previous: HostPassthroughPolicyStatus) -> dict[str, RollingRebootStatus]:
    return {h.name: h.rolling_reboot for h in previous.hosts if h.rolling_reboot is not None}


def _held_fields(policy: HostPassthroughPolicy, held: Held) -> dict[str, Any]:
    return {
        "object": policy.metadata.name,
        "reason": held.suspension.reason,
        "pending": list(held.pending),
    }
