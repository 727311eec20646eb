"""Conditions computed whole: transitions, lastTransitionTime, observedGeneration, kstatus."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.unit.planner.builders import NOW

from dpio.api.conditions import READY, RECONCILING, STALLED, Condition, ConditionStatus
from dpio.planner.conditions import (
    AWAITING_RECONCILE,
    Problem,
    Want,
    compute_conditions,
    conditions_changed,
    find,
    kstatus_wants,
)

LATER = NOW + timedelta(minutes=7, microseconds=123456)
T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def cond(type_: str, status: ConditionStatus, reason: str = "R", generation: int = 1) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message="",
        last_transition_time=NOW,
        observed_generation=generation,
    )


@pytest.mark.parametrize(
    ("before", "now_status", "reason", "moved"),
    [
        (T, T, "R", False),  # same status: time kept
        (T, T, "Other", False),  # reason changed, status didn't: time kept
        (T, F, "R", True),
        (F, U, "R", True),
        (None, T, "R", True),  # new condition
    ],
)
def test_last_transition_time_moves_only_on_status_flip(
    before: ConditionStatus | None, now_status: ConditionStatus, reason: str, moved: bool
) -> None:
    previous = [cond("Degraded", before)] if before else []
    result = compute_conditions(previous, [Want("Degraded", now_status, reason)], 2, LATER)
    degraded = find(result, "Degraded")
    assert degraded is not None
    expected = LATER.replace(microsecond=0) if moved else NOW
    assert degraded.last_transition_time == expected
    assert degraded.observed_generation == 2
    assert degraded.reason == reason


def test_ready_is_always_present_and_first() -> None:
    result = compute_conditions([], [Want.true("Degraded", "X")], 1, NOW)
    assert [c.type for c in result] == [READY, "Degraded"]
    assert result[0].status is U
    assert result[0].reason == AWAITING_RECONCILE


def test_conditions_no_longer_wanted_are_dropped() -> None:
    previous = [cond(READY, T), cond("Old", T)]
    result = compute_conditions(previous, [Want.true(READY, "R")], 1, NOW)
    assert [c.type for c in result] == [READY]


@pytest.mark.parametrize(
    ("stalled", "progressing", "not_ready", "expected"),
    [
        (None, None, None, {READY: T, RECONCILING: F, STALLED: F}),
        (None, "Updating", None, {READY: F, RECONCILING: T, STALLED: F}),
        (None, None, Problem("PendingReboot", "m"), {READY: F, RECONCILING: F, STALLED: F}),
        (None, "Updating", Problem("DeviceInUse", "m"), {READY: F, RECONCILING: T, STALLED: F}),
        # Nothing under way and only a human can help: Stalled (kstatus Failed), not a wait.
        (None, None, Problem("DeviceInUse", "m"), {READY: F, RECONCILING: F, STALLED: T}),
        (None, None, Problem("VMPoweredOn", "m"), {READY: F, RECONCILING: F, STALLED: F}),
        (Problem("InvalidSpec", "bad"), "x", None, {READY: F, RECONCILING: F, STALLED: T}),
    ],
)
def test_kstatus(
    stalled: Problem | None,
    progressing: str | None,
    not_ready: Problem | None,
    expected: dict[str, ConditionStatus],
) -> None:
    wants = kstatus_wants(stalled=stalled, progressing=progressing, not_ready=not_ready)
    assert {w.type: w.status for w in wants} == expected
    ready = next(w for w in wants if w.type == READY)
    if not_ready is not None:
        assert ready.reason == not_ready.reason
    if stalled is not None:
        assert ready.reason == stalled.reason


def test_recomputing_from_what_was_written_changes_nothing() -> None:
    wants = [Want.true(READY, "Reconciled", "ok"), Want.false("Degraded", "AsExpected")]
    first = compute_conditions([], wants, 3, LATER)
    # Read back as the API server keeps it: JSON, whole seconds.
    read_back = [Condition.model_validate(c.model_dump(mode="json")) for c in first]
    second = compute_conditions(read_back, wants, 3, LATER + timedelta(hours=1))
    assert not conditions_changed(read_back, second)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", F),
        ("reason", "Other"),
        ("message", "new"),
        ("observed_generation", 2),
        ("last_transition_time", NOW + timedelta(seconds=1)),
    ],
)
def test_conditions_changed_sees_every_field(field: str, value: object) -> None:
    before = [cond(READY, T)]
    after = [before[0].model_copy(update={field: value})]
    assert conditions_changed(before, after)
    assert not conditions_changed(before, list(before))


def test_conditions_changed_ignores_order_and_sub_second_precision() -> None:
    a, b = cond(READY, T), cond("Degraded", F)
    b_precise = b.model_copy(update={"last_transition_time": NOW + timedelta(microseconds=5)})
    assert not conditions_changed([a, b], [b_precise, a])
    assert conditions_changed([a, b], [a])
