"""A rolling-reboot step recorded in status whose task may never have been sent (the process
died between the record and the call): asked about once it shows no effect, sent again only
when vCenter's recent tasks show none, never on a guess (planner/host/steps.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.unit.planner.builders import NOW, gpu_host, spec
from tests.unit.planner.host.test_planner_reboot import DRAIN, ROLLING, host, names, record

from dpio.api.policy import (
    HostPassthroughPolicyStatus,
    HostStatus,
    RebootPhase,
    RollingRebootStatus,
)
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.reboot import (
    EnterMaintenanceMode,
    RebootCandidate,
    RebootPlan,
    plan_reboots,
)
from dpio.planner.host.status import policy_status
from dpio.planner.host.steps import (
    ENTER_MAINTENANCE_MODE,
    REBOOT,
    HostTask,
    TaskSeen,
    UnconfirmedStep,
    step_sent,
    tasks_seen,
)
from dpio.planner.observed import ObservedHost, ObservedInventory

OLD_BOOT = NOW - timedelta(days=3)
DRAINING_HOST = host("esx01")  # not in maintenance mode: the drain shows no effect
REBOOTING_HOST = host("esx01", in_maintenance_mode=True, boot_time=OLD_BOOT)


def plan(
    observed: ObservedHost,
    previous: RollingRebootStatus,
    seen: dict[str, TaskSeen] | None = None,
    *others: ObservedHost,
) -> RebootPlan:
    candidates = [RebootCandidate(observed, True)] + [RebootCandidate(o, True) for o in others]
    return plan_reboots(ROLLING, DRAIN, candidates, {"esx01": previous}, NOW, seen=seen)


def seconds_ago(seconds: int, phase: RebootPhase) -> RollingRebootStatus:
    return RollingRebootStatus(
        phase=phase, since=NOW - timedelta(seconds=seconds), entered_by_operator=True
    )


@pytest.mark.parametrize(
    ("observed", "previous", "asked"),
    [
        (DRAINING_HOST, record(RebootPhase.DRAINING, 5), True),
        (REBOOTING_HOST, record(RebootPhase.REBOOTING, 5), True),
        # Within the grace period the task may still be on its way: nothing is asked.
        (DRAINING_HOST, seconds_ago(50, RebootPhase.DRAINING), False),
        (REBOOTING_HOST, seconds_ago(50, RebootPhase.REBOOTING), False),
        # The step shows its effect: in maintenance mode (reboot next), down, rebooted.
        (host("esx01", in_maintenance_mode=True), record(RebootPhase.DRAINING, 5), False),
        (
            host("esx01", in_maintenance_mode=True, connection_state="notResponding"),
            record(RebootPhase.REBOOTING, 5),
            False,
        ),
        (
            host("esx01", in_maintenance_mode=True, boot_time=NOW - timedelta(minutes=1)),
            record(RebootPhase.REBOOTING, 5),
            False,
        ),
        # vCenter can't reach the host: neither asked about nor sent again.
        (host("esx01", connection_state="disconnected"), record(RebootPhase.DRAINING, 5), False),
        # Past drainTimeout: DrainTimeout as before, never a new drain.
        (DRAINING_HOST, record(RebootPhase.DRAINING, 31), False),
        # Exiting is sent again anyway while the host is in maintenance mode (harmless).
        (host("esx01", in_maintenance_mode=True), record(RebootPhase.EXITING, 5), False),
    ],
)
def test_only_an_old_record_without_effect_is_asked_about(
    observed: ObservedHost, previous: RollingRebootStatus, asked: bool
) -> None:
    result = plan(observed, previous)
    expected = (UnconfirmedStep("esx01", "host-esx01", previous.phase, previous.since),)
    assert result.unconfirmed == (expected if asked else ())
    assert result.resent == frozenset()
    if asked:  # asking starts nothing and keeps the record (and the host's slot)
        assert result.actions == ()
        assert result.records["esx01"] == previous
        assert result.in_progress == ("esx01",)


@pytest.mark.parametrize("phase", [RebootPhase.DRAINING, RebootPhase.REBOOTING])
def test_a_step_vcenter_saw_is_waited_for(phase: RebootPhase) -> None:
    observed = DRAINING_HOST if phase is RebootPhase.DRAINING else REBOOTING_HOST
    result = plan(observed, record(phase, 5), {"esx01": TaskSeen.SENT})
    assert result.actions == ()
    assert result.unconfirmed == ()
    assert result.records["esx01"] == record(phase, 5)


def test_a_drain_never_sent_is_sent_with_the_drain_time_left() -> None:
    previous = record(RebootPhase.DRAINING, 5)
    result = plan(DRAINING_HOST, previous, {"esx01": TaskSeen.NOT_SENT})
    assert result.actions == (EnterMaintenanceMode("esx01", "host-esx01", 25 * 60),)
    assert result.resent == {"esx01"}
    # `since` stays: drainTimeout counts from the first attempt.
    assert result.records["esx01"] == previous
    assert result.unconfirmed == ()
    # The host's message says so, with this moment: the status always differs, so it is
    # written (resourceVersion precondition) before the task starts.
    assert result.notes["esx01"] == (
        "EnterMaintenanceMode_Task sent again at 2025-01-01T12:00:00Z: vCenter had no task of "
        "the Draining step recorded at 2025-01-01T11:55:00Z"
    )


def test_a_reboot_never_sent_is_sent_and_the_record_stays() -> None:
    previous = record(RebootPhase.REBOOTING, 5)
    result = plan(REBOOTING_HOST, previous, {"esx01": TaskSeen.NOT_SENT})
    assert names(result.actions) == [("RebootHost", "esx01")]
    assert result.resent == {"esx01"}
    # The boot time is compared with the same `since`: a reboot after it is this step's.
    assert result.records["esx01"] == previous


def test_when_the_tasks_could_not_be_read_the_host_waits_and_says_so() -> None:
    previous = record(RebootPhase.REBOOTING, 5)
    result = plan(REBOOTING_HOST, previous, {"esx01": TaskSeen.UNKNOWN})
    assert result.actions == ()
    assert result.resent == frozenset()
    assert [s.host for s in result.unconfirmed] == ["esx01"]  # asked again next time
    assert "can't tell whether" in result.notes["esx01"]
    assert "not sent again on a guess" in result.notes["esx01"]
    assert result.in_progress == ("esx01",)  # it keeps its slot: it may well be rebooting


def test_a_drain_sent_again_keeps_the_clusters_slot() -> None:
    result = plan(
        DRAINING_HOST, record(RebootPhase.DRAINING, 5), {"esx01": TaskSeen.NOT_SENT}, host("esx02")
    )
    assert names(result.actions) == [("EnterMaintenanceMode", "esx01")]
    assert "maxUnavailable is 1" in result.waiting["esx02"]


def task(method: str, queued: datetime | None, state: str = "success") -> HostTask:
    return HostTask(description_id=method, state=state, queue_time=queued)


DRAINING_STEP = UnconfirmedStep("esx01", "host-1", RebootPhase.DRAINING, NOW)
REBOOTING_STEP = UnconfirmedStep("esx01", "host-1", RebootPhase.REBOOTING, NOW)


@pytest.mark.parametrize(
    ("step", "tasks", "sent"),
    [
        (DRAINING_STEP, [], False),
        (DRAINING_STEP, [task(ENTER_MAINTENANCE_MODE, NOW + timedelta(seconds=1))], True),
        (DRAINING_STEP, [task(ENTER_MAINTENANCE_MODE, NOW, "queued")], True),
        (DRAINING_STEP, [task(ENTER_MAINTENANCE_MODE, NOW, "running")], True),
        # A task vCenter refused was asked for: not sent again (as before this check).
        (DRAINING_STEP, [task(ENTER_MAINTENANCE_MODE, NOW, "error")], True),
        # Another method's task is not the step's.
        (DRAINING_STEP, [task(REBOOT, NOW + timedelta(seconds=1))], False),
        (REBOOTING_STEP, [task(ENTER_MAINTENANCE_MODE, NOW - timedelta(seconds=5))], False),
        (REBOOTING_STEP, [task(REBOOT, NOW + timedelta(seconds=2))], True),
        # vCenter's clock may run behind the operator's by up to a minute.
        (REBOOTING_STEP, [task(REBOOT, NOW - timedelta(seconds=59))], True),
        # A reboot queued well before the record is an older one.
        (REBOOTING_STEP, [task(REBOOT, NOW - timedelta(minutes=5))], False),
        # No queue time: counted (it errs towards waiting).
        (REBOOTING_STEP, [task(REBOOT, None)], True),
        # A task listed whose info could not be read: counted too.
        (REBOOTING_STEP, [task("", None, "")], True),
    ],
)
def test_a_step_counts_as_sent_with_a_task_of_its_method_since_the_record(
    step: UnconfirmedStep, tasks: list[HostTask], sent: bool
) -> None:
    assert step_sent(step, tasks) is sent


def test_tasks_seen_per_host_and_unknown_when_the_read_failed() -> None:
    other = UnconfirmedStep("esx02", "host-2", RebootPhase.REBOOTING, NOW)
    tasks = {"host-1": [task(ENTER_MAINTENANCE_MODE, NOW)]}
    assert tasks_seen([DRAINING_STEP, other], tasks) == {
        "esx01": TaskSeen.SENT,
        "esx02": TaskSeen.NOT_SENT,
    }
    assert tasks_seen([DRAINING_STEP, other], None) == {
        "esx01": TaskSeen.UNKNOWN,
        "esx02": TaskSeen.UNKNOWN,
    }


def test_plan_policy_passes_what_was_seen_and_the_status_says_when_it_is_unknown() -> None:
    rolling = spec(reboot={"policy": "Rolling"})
    observed = gpu_host("esx01", enabled=True, in_maintenance_mode=True, boot_time=OLD_BOOT)
    previous = HostPassthroughPolicyStatus(
        hosts=[HostStatus(name="esx01", rolling_reboot=record(RebootPhase.REBOOTING, 5))]
    )
    inventory = ObservedInventory(hosts=(observed,))

    def planned(seen: dict[str, TaskSeen] | None) -> tuple[list[str], str]:
        result = plan_policy(
            name="p",
            creation_timestamp=NOW,
            spec=rolling,
            inventory=inventory,
            now=NOW,
            previous=previous,
            seen=seen,
        )
        status = policy_status(
            result, reboot_policy=rolling.reboot.policy, previous=previous, generation=1, now=NOW
        )
        actions = [type(a).__name__ for a in result.reboot_actions]
        return actions, status.hosts[0].message or ""

    assert planned(None)[0] == []
    assert planned({"esx01": TaskSeen.NOT_SENT})[0] == ["RebootHost"]
    actions, message = planned({"esx01": TaskSeen.UNKNOWN})
    assert actions == []
    assert message.startswith("Rolling reboot: can't tell whether the Rebooting step's task")
