"""A recorded rolling-reboot step is sent again only when vCenter's recent tasks showed none:
for any hosts, records (phase, age, ownership) and any answer per host (sent, not sent, unknown,
not asked), the plan never starts a recorded Draining or Rebooting step on a guess, keeps the
record of a step it sends again, and asks only about records it holds (planner/host/steps.py)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.property.strategies import NOW, PROFILE, observed_hosts

from dpio.api.policy import RebootPhase, RebootPolicy, RebootSpec, RollingRebootStatus
from dpio.planner.host.reboot import (
    EnterMaintenanceMode,
    RebootCandidate,
    RebootHost,
    plan_reboots,
)
from dpio.planner.host.steps import TaskSeen
from dpio.planner.observed import ObservedHost

records = st.builds(
    RollingRebootStatus,
    phase=st.sampled_from(RebootPhase),
    since=st.integers(0, 3 * 3600).map(lambda s: NOW - timedelta(seconds=s)),
    entered_by_operator=st.booleans(),
)
answers = st.sampled_from([None, TaskSeen.SENT, TaskSeen.NOT_SENT, TaskSeen.UNKNOWN])


@PROFILE
@given(
    hosts=st.lists(observed_hosts, max_size=4, unique_by=lambda h: h.name),
    needs=st.lists(st.booleans(), min_size=4, max_size=4),
    previous=st.lists(st.none() | records, min_size=4, max_size=4),
    seen=st.lists(answers, min_size=4, max_size=4),
    max_unavailable=st.integers(1, 3),
)
def test_a_recorded_step_is_never_started_again_on_a_guess(
    hosts: list[ObservedHost],
    needs: list[bool],
    previous: list[RollingRebootStatus | None],
    seen: list[TaskSeen | None],
    max_unavailable: int,
) -> None:
    spec = RebootSpec(policy=RebootPolicy.ROLLING, max_unavailable=max_unavailable)
    candidates = [RebootCandidate(h, n) for h, n in zip(hosts, needs, strict=False)]
    before = {h.name: r for h, r in zip(hosts, previous, strict=False) if r is not None}
    answered = {h.name: s for h, s in zip(hosts, seen, strict=False) if s is not None}

    plan = plan_reboots(spec, timedelta(minutes=30), candidates, before, NOW, seen=answered)

    for action in plan.actions:
        record = before.get(action.host)
        again = record is not None and (
            (record.phase is RebootPhase.DRAINING and isinstance(action, EnterMaintenanceMode))
            or (record.phase is RebootPhase.REBOOTING and isinstance(action, RebootHost))
        )
        if again:
            assert answered.get(action.host) is TaskSeen.NOT_SENT, (action, record)
            assert action.host in plan.resent
    for host in plan.resent:
        assert answered.get(host) is TaskSeen.NOT_SENT
        assert plan.records[host] == before[host]  # `since` stays
    for step in plan.unconfirmed:
        assert before[step.host].since == step.since
        assert answered.get(step.host) in (None, TaskSeen.UNKNOWN)
        assert step.host in plan.in_progress  # asking keeps the host's slot
