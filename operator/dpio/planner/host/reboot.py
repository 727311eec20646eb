"""Rolling reboot (`reboot.policy: Rolling`): a pure state machine over observed hosts.

Per host: Draining (EnterMaintenanceMode sent) -> Rebooting (RebootHost sent) -> Exiting
(ExitMaintenanceMode sent) -> done. The phase, its start and whether the operator put the host in
maintenance mode live in `HostStatus.rollingReboot`, so the machine survives operator restarts.
At most `maxUnavailable` hosts of the policy are unavailable (in maintenance mode or not connected)
at a time. The operator reboots and takes out of maintenance mode only hosts it put there itself:
a host someone else put there waits, and says so. A drain that powered-on VMs DRS can't move
would hold is not started (`dpio.planner.host.drain`).
`Manual` only reports: records already started still run to the end, no new host is started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dpio.api.conditions import DRAIN_BLOCKED, DRAIN_TIMEOUT, MAINTENANCE_MODE_BY_OTHERS
from dpio.api.policy import RebootPhase, RebootPolicy, RebootSpec, RollingRebootStatus
from dpio.planner.conditions import Problem
from dpio.planner.host.drain import drain_blockers
from dpio.planner.observed import ObservedHost


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
    waiting: dict[str, str] = field(default_factory=dict)

    def wait(self, host: ObservedHost, reason: str, message: str) -> None:
        self.waiting[host.name] = message
        self.problems.append(Problem(reason, f"{host.name}: {message}"))

    def record(self, host: ObservedHost, phase: RebootPhase, entered: bool) -> None:
        self.records[host.name] = RollingRebootStatus(
            phase=phase, since=self.now, entered_by_operator=entered
        )


def plan_reboots(
    spec: RebootSpec,
    drain_timeout: timedelta,
    candidates: Sequence[RebootCandidate],
    previous: Mapping[str, RollingRebootStatus],
    now: datetime,
) -> RebootPlan:
    machine = _Machine(drain_timeout, now, {}, [], [], set())
    ordered = sorted(candidates, key=lambda c: c.host.name)
    for candidate in ordered:
        record = previous.get(candidate.host.name)
        if record is not None:
            _advance(machine, candidate, record)
    if spec.policy is RebootPolicy.ROLLING:
        _start(machine, spec.max_unavailable, ordered)
    return RebootPlan(
        records=dict(machine.records),
        actions=tuple(machine.actions),
        timed_out=frozenset(machine.timed_out),
        problems=tuple(machine.problems),
        waiting=dict(machine.waiting),
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
    else:
        machine.records[host.name] = record  # EnterMaintenanceMode task still running


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
        machine.records[host.name] = record  # RebootHost sent, host not down yet
        return
    if rebooted and record.entered_by_operator and host.in_maintenance_mode:
        machine.record(host, RebootPhase.EXITING, True)
        machine.actions.append(ExitMaintenanceMode(host.name, host.moref))
    # Otherwise done, or someone took the host out of maintenance mode before it rebooted:
    # drop the record; if a reboot is still needed the host starts over.


def _start(machine: _Machine, max_unavailable: int, ordered: Sequence[RebootCandidate]) -> None:
    busy = set(machine.records) - machine.timed_out - set(machine.waiting)
    unavailable = sum(1 for c in ordered if c.host.unavailable or c.host.name in busy)
    for candidate in ordered:
        host = candidate.host
        if host.name in machine.records or not candidate.reboot_required or not host.connected:
            continue
        if host.in_maintenance_mode:
            _wait_for_owner(machine, host)  # not ours: no record, so never ours later
            continue
        blockers = drain_blockers(host)
        if blockers:
            machine.wait(
                host,
                DRAIN_BLOCKED,
                f"not drained: maintenance mode can't evacuate powered-on "
                f"{', '.join(blockers)}. Power them off or move them",
            )
        elif unavailable < max_unavailable:
            machine.record(host, RebootPhase.DRAINING, True)
            timeout = int(machine.spec_drain_timeout.total_seconds())
            machine.actions.append(EnterMaintenanceMode(host.name, host.moref, timeout))
            unavailable += 1
