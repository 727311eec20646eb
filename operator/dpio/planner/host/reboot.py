"""Rolling reboot (`reboot.policy: Rolling`): a pure state machine over observed hosts.

Per host: Draining (EnterMaintenanceMode sent) -> Rebooting (RebootHost sent) -> Exiting
(ExitMaintenanceMode sent) -> done. The phase, its start and whether the operator put the host in
maintenance mode live in `HostStatus.rollingReboot`, so the machine survives operator restarts.
A host starts only while its cluster has fewer than `maxUnavailable` hosts unavailable (in
maintenance mode, not connected, or held by any policy's rolling reboot:
`dpio.planner.host.budget`) and only inside a reboot window, if the spec has any
(`dpio.planner.host.windows`). The operator reboots and takes out of maintenance mode only
hosts it put there itself: a host someone else put there waits, and says so. A drain that
powered-on VMs DRS can't move would hold is not started (`dpio.planner.host.drain`).
`Manual` only reports: records already started still run to the end, no new host is started.
A host waiting for its cluster's budget or for a window is not Degraded: nothing is wrong, and
the RebootRequired condition says what it waits for.
A Draining or Rebooting record that shows no effect after a while may have no task behind it
(the process died between the record and the call): the plan names it `unconfirmed`, and the
step is sent again only once vCenter's recent tasks show none (`dpio.planner.host.steps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dpio.api.conditions import (
    CLUSTER_BUDGET_EXHAUSTED,
    DRAIN_BLOCKED,
    DRAIN_TIMEOUT,
    MAINTENANCE_MODE_BY_OTHERS,
    OUTSIDE_REBOOT_WINDOW,
)
from dpio.api.policy import RebootPhase, RebootPolicy, RebootSpec, RollingRebootStatus
from dpio.planner.conditions import Problem
from dpio.planner.host.budget import ClusterLoad, budget_key, budget_name
from dpio.planner.host.drain import drain_blockers
from dpio.planner.host.steps import (
    STEP_TASK_NAMES,
    STEP_TASKS,
    TaskSeen,
    UnconfirmedStep,
    unconfirmed,
)
from dpio.planner.host.windows import ALWAYS, WindowState
from dpio.planner.observed import ObservedHost, ObservedInventory


@dataclass(frozen=True, slots=True)
class EnterMaintenanceMode:
    """`HostSystem.EnterMaintenanceMode_Task(timeout, evacuatePoweredOffVms=False)`.

    vSphere API reference: the task fails with a Timeout fault when the host could not be drained
    (VMs evacuated by DRS) within `timeout` seconds, and the host stays out of maintenance mode.
    """

    host: str
    moref: str
    timeout: int  # seconds


@dataclass(frozen=True, slots=True)
class RebootHost:
    """`HostSystem.RebootHost_Task(force=False)`: only a host in maintenance mode reboots."""

    host: str
    moref: str


@dataclass(frozen=True, slots=True)
class ExitMaintenanceMode:
    """`HostSystem.ExitMaintenanceMode_Task(timeout=0)`."""

    host: str
    moref: str


RebootAction = EnterMaintenanceMode | RebootHost | ExitMaintenanceMode


@dataclass(frozen=True, slots=True)
class RebootCandidate:
    host: ObservedHost
    reboot_required: bool  # enabled != active on some device, after this reconcile's changes


@dataclass(frozen=True, slots=True)
class RebootPlan:
    records: Mapping[str, RollingRebootStatus]  # host name -> record; absent: not rebooting
    actions: tuple[RebootAction, ...] = ()
    timed_out: frozenset[str] = frozenset()  # drains past drainTimeout: hosts left running
    problems: tuple[Problem, ...] = ()
    waiting: Mapping[str, str] = field(default_factory=dict)  # host -> why no step starts
    reasons: Mapping[str, str] = field(default_factory=dict)  # host -> the waiting reason
    window: WindowState = ALWAYS  # spec.reboot.windows at `now`
    #: Recorded steps with no effect yet that nobody has seen sent: ask vCenter's recent tasks.
    unconfirmed: tuple[UnconfirmedStep, ...] = ()
    #: Hosts whose recorded step is sent again in `actions`: vCenter had no task of it.
    resent: frozenset[str] = frozenset()
    #: Host -> what a host under way waits for (it still holds its slot, unlike `waiting`).
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def in_progress(self) -> tuple[str, ...]:
        """Hosts whose rolling reboot is under way (a drain that timed out is not, nor a host
        waiting for someone else)."""
        return tuple(sorted(set(self.records) - self.timed_out - set(self.waiting)))


@dataclass(slots=True)
class _Machine:
    spec_drain_timeout: timedelta
    now: datetime
    records: dict[str, RollingRebootStatus]
    actions: list[RebootAction]
    problems: list[Problem]
    timed_out: set[str]
    seen: Mapping[str, TaskSeen] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    unconfirmed: list[UnconfirmedStep] = field(default_factory=list)
    resent: set[str] = field(default_factory=set)
    notes: dict[str, str] = field(default_factory=dict)

    def wait(self, host: ObservedHost, reason: str, message: str) -> None:
        """Waits for a human: Degraded."""
        self.hold(host, reason, message)
        self.problems.append(Problem(reason, f"{host.name}: {message}"))

    def hold(self, host: ObservedHost, reason: str, message: str) -> None:
        """Waits for time to pass (a window, a slot in the cluster): not Degraded."""
        self.waiting[host.name] = message
        self.reasons[host.name] = reason

    def record(self, host: ObservedHost, phase: RebootPhase, entered: bool) -> None:
        self.records[host.name] = RollingRebootStatus(
            phase=phase, since=self.now, entered_by_operator=entered
        )

    def no_effect(
        self, host: ObservedHost, record: RollingRebootStatus, again: RebootAction
    ) -> None:
        """The recorded step shows no effect yet: keep waiting, unless vCenter's recent tasks
        show it was never sent; then `again` sends it, and the record (its `since`) stays."""
        self.records[host.name] = record
        if not unconfirmed(record, self.now):
            return
        seen = self.seen.get(host.name)
        if seen is TaskSeen.NOT_SENT:
            self.actions.append(again)
            self.resent.add(host.name)
            # A note of this moment makes the status differ, so the write before the task (with
            # its resourceVersion precondition) is made: a run on a stale copy sends nothing.
            self.notes[host.name] = (
                f"{STEP_TASK_NAMES[record.phase]} sent again at {format_time(self.now)}: vCenter "
                f"had no task of the {record.phase.value} step recorded at "
                f"{format_time(record.since)}"
            )
            return
        if seen is TaskSeen.SENT:
            return
        self.unconfirmed.append(UnconfirmedStep(host.name, host.moref, record.phase, record.since))
        if seen is TaskSeen.UNKNOWN:
            self.notes[host.name] = (
                f"can't tell whether the {record.phase.value} step's task "
                f"({STEP_TASKS[record.phase]}) was sent: vCenter's recent tasks could not be "
                "read. It is not sent again on a guess; asked again on the next reconcile"
            )


def plan_reboots(
    spec: RebootSpec,
    drain_timeout: timedelta,
    candidates: Sequence[RebootCandidate],
    previous: Mapping[str, RollingRebootStatus],
    now: datetime,
    *,
    load: ClusterLoad | None = None,
    window: WindowState = ALWAYS,
    seen: Mapping[str, TaskSeen] | None = None,
) -> RebootPlan:
    """`load`: the hosts down per cluster, over the whole inventory and every policy's holds
    (None: only the candidates are known); `window`: `spec.windows` at `now`. Steps of hosts
    already under way go on outside a window: a host the operator put in maintenance mode is
    rebooted and taken out rather than left there until the next window opens. `seen`: what
    vCenter's recent tasks (or this process) say of recorded steps the plan had named
    `unconfirmed`; a host not in it is asked about, never sent again."""
    machine = _Machine(drain_timeout, now, {}, [], [], set(), dict(seen or {}))
    ordered = sorted(candidates, key=lambda c: c.host.name)
    for candidate in ordered:
        record = previous.get(candidate.host.name)
        if record is not None:
            _advance(machine, candidate, record)
    if load is None:
        load = ClusterLoad.observe(ObservedInventory(hosts=tuple(c.host for c in ordered)))
    if spec.policy is RebootPolicy.ROLLING:
        _start(machine, spec.max_unavailable, ordered, load, window)
    return RebootPlan(
        records=dict(machine.records),
        actions=tuple(machine.actions),
        timed_out=frozenset(machine.timed_out),
        problems=tuple(machine.problems),
        waiting=dict(machine.waiting),
        reasons=dict(machine.reasons),
        window=window,
        unconfirmed=tuple(machine.unconfirmed),
        resent=frozenset(machine.resent),
        notes=dict(machine.notes),
    )


def _advance(machine: _Machine, candidate: RebootCandidate, record: RollingRebootStatus) -> None:
    host = candidate.host
    if record.phase is RebootPhase.DRAINING:
        _advance_draining(machine, candidate, record)
    elif record.phase is RebootPhase.REBOOTING:
        _advance_rebooting(machine, host, record)
    elif host.in_maintenance_mode and host.connected:  # Exiting, not out yet: ask again
        machine.records[host.name] = record
        machine.actions.append(ExitMaintenanceMode(host.name, host.moref))


def _advance_draining(
    machine: _Machine, candidate: RebootCandidate, record: RollingRebootStatus
) -> None:
    host = candidate.host
    if host.in_maintenance_mode and record.entered_by_operator:
        machine.record(host, RebootPhase.REBOOTING, True)
        machine.actions.append(RebootHost(host.name, host.moref))
    elif not candidate.reboot_required:
        return  # rebooted by someone else meanwhile: nothing left to do
    elif host.in_maintenance_mode:
        # The drain had timed out (its task ended in a Timedout fault), so someone else
        # entered maintenance mode since: their host, their reboot.
        machine.records[host.name] = record
        _wait_for_owner(machine, host)
    elif machine.now - record.since > machine.spec_drain_timeout:
        # Left running (docs/design.md, "Host side: rolling reboots"); the record stays so the
        # host is not drained again and again: a human decides (reboot it by hand). Its
        # EnterMaintenanceMode task is over, so a later maintenance mode is not the operator's.
        machine.records[host.name] = record.model_copy(update={"entered_by_operator": False})
        machine.timed_out.add(host.name)
        machine.problems.append(
            Problem(
                DRAIN_TIMEOUT,
                f"{host.name}: could not enter maintenance mode within "
                f"{_duration(machine.spec_drain_timeout)}; left running. Reboot it by hand",
            )
        )
    elif not host.connected:
        machine.records[host.name] = record  # vCenter can't reach it: nothing to ask or send
    else:  # EnterMaintenanceMode task still running, or never sent: the drain time left
        left = machine.spec_drain_timeout - (machine.now - record.since)
        again = EnterMaintenanceMode(host.name, host.moref, max(1, int(left.total_seconds())))
        machine.no_effect(host, record, again)


def _wait_for_owner(machine: _Machine, host: ObservedHost) -> None:
    machine.wait(
        host,
        MAINTENANCE_MODE_BY_OTHERS,
        "in maintenance mode, entered by someone else: the operator neither reboots it nor "
        "takes it out; the reboot waits until it leaves maintenance mode (or reboot it by hand)",
    )


def _duration(value: timedelta) -> str:
    """30m, 1h30m, 45s: as the spec spells drainTimeout."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0s"


def _advance_rebooting(machine: _Machine, host: ObservedHost, record: RollingRebootStatus) -> None:
    if not host.connected:
        machine.records[host.name] = record  # rebooting: disconnected is expected
        return
    rebooted = host.boot_time is not None and host.boot_time > record.since
    if not rebooted and host.in_maintenance_mode:
        # RebootHost sent and the host not down yet, or never sent.
        machine.no_effect(host, record, RebootHost(host.name, host.moref))
        return
    if rebooted and record.entered_by_operator and host.in_maintenance_mode:
        machine.record(host, RebootPhase.EXITING, True)
        machine.actions.append(ExitMaintenanceMode(host.name, host.moref))
    # Otherwise done, or someone took the host out of maintenance mode before it rebooted:
    # drop the record; if a reboot is still needed the host starts over.


def _start(
    machine: _Machine,
    max_unavailable: int,
    ordered: Sequence[RebootCandidate],
    load: ClusterLoad,
    window: WindowState,
) -> None:
    busy = set(machine.records) - machine.timed_out - set(machine.waiting)
    down: dict[str, set[str]] = {}  # budget key -> hosts down, with this run's starts

    def down_in(host: ObservedHost) -> set[str]:
        return down.setdefault(budget_key(host), set(load.of(host)))

    for candidate in ordered:
        if candidate.host.name in busy:
            down_in(candidate.host).add(candidate.host.name)
    for candidate in ordered:
        host = candidate.host
        if host.name in machine.records or not candidate.reboot_required or not host.connected:
            continue
        if host.in_maintenance_mode:
            _wait_for_owner(machine, host)  # not ours: no record, so never ours later
            continue
        blockers = drain_blockers(host)
        hosts_down = down_in(host)
        if blockers:
            machine.wait(
                host,
                DRAIN_BLOCKED,
                f"not drained: maintenance mode can't evacuate powered-on "
                f"{', '.join(blockers)}. Power them off or move them",
            )
        elif not window.open:
            machine.hold(host, OUTSIDE_REBOOT_WINDOW, _outside_window(window))
        elif len(hosts_down) < max_unavailable:
            machine.record(host, RebootPhase.DRAINING, True)
            timeout = int(machine.spec_drain_timeout.total_seconds())
            machine.actions.append(EnterMaintenanceMode(host.name, host.moref, timeout))
            hosts_down.add(host.name)
        else:
            machine.hold(
                host,
                CLUSTER_BUDGET_EXHAUSTED,
                f"unavailable in {budget_name(host)}: {len(hosts_down)} "
                f"({', '.join(sorted(hosts_down))}), maxUnavailable is {max_unavailable}",
            )


def _outside_window(window: WindowState) -> str:
    if window.next_start is None:
        return "no reboot window is open"
    return f"no reboot window is open; the next opens at {format_time(window.next_start)}"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC, as timestamps read in status."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
