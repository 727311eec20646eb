"""Rolling reboot: drain, reboot, exit; maxUnavailable; exit only own hosts; drain timeout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW
from tests.unit.planner.builders import host as any_host

from dpio.api.conditions import DRAIN_TIMEOUT, MAINTENANCE_MODE_BY_OTHERS
from dpio.api.policy import RebootPhase, RebootPolicy, RebootSpec, RollingRebootStatus
from dpio.planner.host.reboot import (
    EnterMaintenanceMode,
    ExitMaintenanceMode,
    RebootAction,
    RebootCandidate,
    RebootHost,
    RebootPlan,
    plan_reboots,
)
from dpio.planner.observed import ObservedHost

ROLLING = RebootSpec(policy=RebootPolicy.ROLLING, max_unavailable=1)


def host(name: str, **fields: Any) -> ObservedHost:
    """A host of one cluster: maxUnavailable is a budget per cluster (test_planner_budget.py)."""
    fields.setdefault("cluster", "gpu")
    return any_host(name, **fields)


DRAIN = timedelta(minutes=30)


def record(phase: RebootPhase, since_minutes: int = 5, *, ours: bool = True) -> RollingRebootStatus:
    return RollingRebootStatus(
        phase=phase, since=NOW - timedelta(minutes=since_minutes), entered_by_operator=ours
    )


def step(
    hosts: list[tuple[ObservedHost, bool]],
    previous: dict[str, RollingRebootStatus] | None = None,
    spec: RebootSpec = ROLLING,
) -> RebootPlan:
    candidates = [RebootCandidate(h, needs) for h, needs in hosts]
    return plan_reboots(spec, DRAIN, candidates, previous or {}, NOW)


def names(actions: tuple[RebootAction, ...]) -> list[tuple[str, str]]:
    return [(type(a).__name__, a.host) for a in actions]


@pytest.mark.parametrize(
    ("max_unavailable", "already_down", "started"),
    [
        (1, 0, ["esx01"]),
        (2, 0, ["esx01", "esx02"]),
        (3, 0, ["esx01", "esx02", "esx03"]),
        (1, 1, []),  # a host of the policy is already in maintenance mode: no slot left
        (2, 1, ["esx01"]),
    ],
)
def test_max_unavailable_is_respected(
    max_unavailable: int, already_down: int, started: list[str]
) -> None:
    pending = [(host(f"esx0{i}"), True) for i in range(1, 4)]
    down = [(host(f"esx9{i}", in_maintenance_mode=True), False) for i in range(already_down)]
    spec = RebootSpec(policy=RebootPolicy.ROLLING, max_unavailable=max_unavailable)
    result = step(pending + down, spec=spec)
    assert names(result.actions) == [("EnterMaintenanceMode", n) for n in started]
    assert all(isinstance(a, EnterMaintenanceMode) and a.timeout == 1800 for a in result.actions)
    for name in started:
        assert result.records[name].phase is RebootPhase.DRAINING
        assert result.records[name].entered_by_operator


def test_disconnected_host_counts_as_unavailable() -> None:
    result = step([(host("esx01"), True), (host("esx02", connection_state="notResponding"), False)])
    assert result.actions == ()


def test_manual_only_reports() -> None:
    result = step([(host("esx01"), True)], spec=RebootSpec(policy=RebootPolicy.MANUAL))
    assert result.actions == ()
    assert result.records == {}


@pytest.mark.parametrize(
    ("observed", "previous", "action", "phase"),
    [
        # Draining, host reached maintenance mode: reboot it.
        (
            host("esx01", in_maintenance_mode=True),
            record(RebootPhase.DRAINING),
            RebootHost,
            RebootPhase.REBOOTING,
        ),
        # Draining still under way: wait.
        (host("esx01"), record(RebootPhase.DRAINING), None, RebootPhase.DRAINING),
        # Rebooting and down: wait.
        (
            host("esx01", in_maintenance_mode=True, connection_state="notResponding"),
            record(RebootPhase.REBOOTING),
            None,
            RebootPhase.REBOOTING,
        ),
        # Rebooting, not yet down (bootTime older than the phase): wait.
        (
            host("esx01", in_maintenance_mode=True, boot_time=NOW - timedelta(days=3)),
            record(RebootPhase.REBOOTING),
            None,
            RebootPhase.REBOOTING,
        ),
        # Back up after the reboot, the operator put it in maintenance mode: take it out.
        (
            host("esx01", in_maintenance_mode=True, boot_time=NOW - timedelta(minutes=1)),
            record(RebootPhase.REBOOTING),
            ExitMaintenanceMode,
            RebootPhase.EXITING,
        ),
        # Exiting, still in maintenance mode: ask again (level-triggered).
        (
            host("esx01", in_maintenance_mode=True),
            record(RebootPhase.EXITING),
            ExitMaintenanceMode,
            RebootPhase.EXITING,
        ),
        # Exiting and out: done.
        (host("esx01"), record(RebootPhase.EXITING), None, None),
    ],
)
def test_phases(
    observed: ObservedHost,
    previous: RollingRebootStatus,
    action: type | None,
    phase: RebootPhase | None,
) -> None:
    needs = previous.phase is not RebootPhase.EXITING and not (
        observed.boot_time is not None and observed.boot_time > previous.since
    )
    result = step([(observed, needs)], {"esx01": previous})
    assert [type(a) for a in result.actions] == ([action] if action else [])
    got = result.records.get("esx01")
    assert (got.phase if got else None) is phase


def test_a_host_someone_else_put_in_maintenance_mode_is_neither_rebooted_nor_taken_out() -> None:
    theirs = host("esx01", in_maintenance_mode=True)
    first = step([(theirs, True), (host("esx02"), True)])
    assert first.actions == ()  # and esx02 waits too: esx01 already takes the one slot
    assert first.records == {}  # no record: nothing marks their maintenance mode as ours
    assert [p.reason for p in first.problems] == [MAINTENANCE_MODE_BY_OTHERS]
    assert "entered by someone else" in first.waiting["esx01"]
    assert first.in_progress == ()
    # Restart-safe: the next run (any replica) decides the same from the same status.
    again = step([(theirs, True)], dict(first.records))
    assert again.actions == ()
    assert again.records == {}
    # Once its owner takes it out, the operator drains it itself.
    out = step([(host("esx01"), True)], dict(again.records))
    assert names(out.actions) == [("EnterMaintenanceMode", "esx01")]
    assert out.records["esx01"].entered_by_operator


def test_after_a_drain_timeout_a_maintenance_mode_entered_by_hand_is_not_the_operators() -> None:
    timed_out = step([(host("esx01"), True)], {"esx01": record(RebootPhase.DRAINING, 31)})
    assert timed_out.records["esx01"].entered_by_operator is False
    by_hand = host("esx01", in_maintenance_mode=True)
    result = step([(by_hand, True)], dict(timed_out.records))
    assert result.actions == ()  # no RebootHost, and later no ExitMaintenanceMode either
    assert [p.reason for p in result.problems] == [MAINTENANCE_MODE_BY_OTHERS]
    assert result.in_progress == ()
    # Rebooted by hand: the record goes, and the host stays in maintenance mode.
    rebooted = step([(by_hand, False)], dict(result.records))
    assert rebooted.actions == ()
    assert rebooted.records == {}


def test_a_record_that_the_operator_entered_maintenance_mode_survives_a_restart() -> None:
    """The record is written before EnterMaintenanceMode starts; a new process reads it."""
    ours = step([(host("esx01"), True)])
    in_mm = host("esx01", in_maintenance_mode=True)
    rebooting = step([(in_mm, True)], dict(ours.records))
    assert names(rebooting.actions) == [("RebootHost", "esx01")]
    back = host("esx01", in_maintenance_mode=True, boot_time=NOW + timedelta(minutes=1))
    exiting = step([(back, False)], dict(rebooting.records))
    assert names(exiting.actions) == [("ExitMaintenanceMode", "esx01")]


def test_drain_past_timeout_leaves_host_running_and_degraded() -> None:
    result = step([(host("esx01"), True)], {"esx01": record(RebootPhase.DRAINING, 31)})
    assert result.actions == ()
    assert result.timed_out == {"esx01"}
    assert [p.reason for p in result.problems] == [DRAIN_TIMEOUT]
    assert result.in_progress == ()
    # The stuck host does not hold the slot: the next host may drain.
    two = step(
        [(host("esx01"), True), (host("esx02"), True)],
        {"esx01": record(RebootPhase.DRAINING, 31)},
    )
    assert names(two.actions) == [("EnterMaintenanceMode", "esx02")]


def test_a_started_reboot_finishes_after_switching_to_manual() -> None:
    back = host("esx01", in_maintenance_mode=True, boot_time=NOW)
    result = step(
        [(back, False), (host("esx02"), True)],
        {"esx01": record(RebootPhase.REBOOTING)},
        spec=RebootSpec(policy=RebootPolicy.MANUAL),
    )
    assert names(result.actions) == [("ExitMaintenanceMode", "esx01")]


def test_full_cycle_two_hosts_one_at_a_time() -> None:
    """Walk the machine through vSphere's answers; never more than one host unavailable."""
    records: dict[str, RollingRebootStatus] = {}
    booted = NOW - timedelta(days=1)
    state = {n: {"mm": False, "up": True, "boot": booted} for n in ("esx01", "esx02")}
    needs = {"esx01": True, "esx02": True}
    seen: list[tuple[str, str]] = []
    for tick in range(12):
        now = NOW + timedelta(minutes=tick)
        for name, s in state.items():
            if not s["up"]:  # a host that was told to reboot is back one tick later
                s["up"], s["boot"], needs[name] = True, now - timedelta(seconds=30), False
        hosts = [
            (
                host(
                    n,
                    in_maintenance_mode=s["mm"],
                    boot_time=s["boot"],
                    connection_state="connected" if s["up"] else "notResponding",
                ),
                needs[n],
            )
            for n, s in state.items()
        ]
        assert sum(1 for h, _ in hosts if h.unavailable) <= ROLLING.max_unavailable
        result = plan_reboots(
            ROLLING, DRAIN, [RebootCandidate(h, r) for h, r in hosts], records, now
        )
        records = dict(result.records)
        for action in result.actions:
            seen.append((type(action).__name__, action.host))
            s = state[action.host]
            if isinstance(action, EnterMaintenanceMode):
                s["mm"] = True
            elif isinstance(action, RebootHost):
                s["up"] = False
            else:
                s["mm"] = False
    assert seen == [
        ("EnterMaintenanceMode", "esx01"),
        ("RebootHost", "esx01"),
        ("ExitMaintenanceMode", "esx01"),
        ("EnterMaintenanceMode", "esx02"),
        ("RebootHost", "esx02"),
        ("ExitMaintenanceMode", "esx02"),
    ]
    assert records == {}
