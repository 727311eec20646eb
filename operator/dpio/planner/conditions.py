"""The whole condition list, computed by one pure function (metav1.Condition semantics, kstatus).

A planner says what each condition should be now (`Want`); `compute_conditions` merges that with
the previous list: `lastTransitionTime` moves only when `status` flips, every condition carries the
generation it was computed from, and `Ready` is always present (Unknown if nobody said otherwise).
`conditions_changed` lets a reconciler skip the status write when nothing moved.
Both kinds use this module; the kind-specific wants live with each kind's planner.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import (
    AWAITING_RECONCILE,
    PROGRESSING,
    READY,
    RECONCILED,
    RECONCILING,
    STALLED,
    Condition,
    ConditionStatus,
)
from dpio.api.policy_status import HostPassthroughPolicyStatus
from dpio.planner.attention import awaited, needs_a_human

__all__ = [
    "Problem",
    "Want",
    "compute_conditions",
    "conditions_changed",
    "find",
    "is_true",
    "kstatus_wants",
    "observing_conditions",
    "observing_status",
    "status_changed",
]

AnyStatus = TypeVar("AnyStatus", HostPassthroughPolicyStatus, VMDeviceAssignmentStatus)

# Conditions are listed in this order, the rest alphabetically after them.
_LEADING = (READY, RECONCILING, STALLED)


@dataclass(frozen=True, slots=True)
class Problem:
    """A reason (CamelCase, for machines) and a message (for humans) a condition reports."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Want:
    """What one condition should say now."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""

    @classmethod
    def true(cls, type_: str, reason: str, message: str = "") -> Want:
        return cls(type_, ConditionStatus.TRUE, reason, message)

    @classmethod
    def false(cls, type_: str, reason: str, message: str = "") -> Want:
        return cls(type_, ConditionStatus.FALSE, reason, message)


def _whole_seconds(moment: datetime) -> datetime:
    # metav1.Time keeps whole seconds; keeping more would make every read-back look changed.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0)


def _order(condition_type: str) -> tuple[int, str]:
    if condition_type in _LEADING:
        return _LEADING.index(condition_type), ""
    return len(_LEADING), condition_type


def compute_conditions(
    previous: Sequence[Condition],
    wants: Iterable[Want],
    generation: int,
    now: datetime,
) -> tuple[Condition, ...]:
    """The new condition list: one entry per wanted type (the last `Want` of a type wins)."""
    by_type = {want.type: want for want in wants}
    by_type.setdefault(READY, Want(READY, ConditionStatus.UNKNOWN, AWAITING_RECONCILE))
    before = {c.type: c for c in previous}
    result = []
    for want in sorted(by_type.values(), key=lambda w: _order(w.type)):
        old = before.get(want.type)
        flipped = old is None or old.status != want.status
        result.append(
            Condition(
                type=want.type,
                status=want.status,
                reason=want.reason,
                message=want.message,
                last_transition_time=_whole_seconds(now)
                if flipped or old is None
                else old.last_transition_time,
                observed_generation=generation,
            )
        )
    return tuple(result)


def _comparable(condition: Condition) -> tuple[str, str, str, str, datetime, int | None]:
    return (
        condition.type,
        condition.status.value,
        condition.reason,
        condition.message,
        _whole_seconds(condition.last_transition_time),
        condition.observed_generation,
    )


def conditions_changed(previous: Sequence[Condition], current: Sequence[Condition]) -> bool:
    """True when writing `current` over `previous` would change anything at all.

    Compared by type (order on the wire is not meaningful) and at metav1.Time precision, so a
    list read back from the API server equals the one computed from it.
    """
    old = sorted((_comparable(c) for c in previous), key=lambda t: t[0])
    new = sorted((_comparable(c) for c in current), key=lambda t: t[0])
    return old != new


def status_changed(previous: AnyStatus | None, current: AnyStatus) -> bool:
    """True when writing `current` would change the object (compared as the API server keeps it)."""
    if previous is None:
        return True
    if conditions_changed(previous.conditions, current.conditions):
        return True
    exclude = {"conditions"}
    return previous.model_dump(mode="json", exclude=exclude) != current.model_dump(
        mode="json", exclude=exclude
    )


def find(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)


def is_true(conditions: Sequence[Condition], condition_type: str) -> bool:
    found = find(conditions, condition_type)
    return found is not None and found.status is ConditionStatus.TRUE


def kstatus_wants(
    *,
    stalled: Problem | None,
    progressing: str | None,
    not_ready: Problem | None,
    ready_message: str = "",
) -> tuple[Want, ...]:
    """Ready, Reconciling and Stalled from the three things that decide them.

    `stalled` (needs a human) wins over `progressing` (work under way), which wins over
    `not_ready` (the spec is not fully in effect but nothing is being done about it right now).
    A `not_ready` whose reason needs a human (planner.attention) is `stalled` once nothing is
    under way, so kstatus says Failed instead of InProgress until a timeout.
    kstatus: Reconciling and Stalled are never both True.
    """
    if stalled is None and progressing is None and not_ready is not None:
        stalled = not_ready if needs_a_human(not_ready.reason) else None
    if stalled is not None:
        return (
            Want.false(READY, stalled.reason, stalled.message),
            Want.false(RECONCILING, stalled.reason, "Waiting for someone to act: see Stalled"),
            Want.true(STALLED, stalled.reason, stalled.message),
        )
    stalled_off = Want.false(STALLED, RECONCILED if not_ready is None else not_ready.reason)
    if progressing is not None:
        reason = not_ready.reason if not_ready is not None else PROGRESSING
        return (
            Want.false(READY, reason, not_ready.message if not_ready else progressing),
            Want.true(RECONCILING, PROGRESSING, progressing),
            Want.false(STALLED, PROGRESSING),
        )
    if not_ready is not None:
        return (
            Want.false(READY, not_ready.reason, not_ready.message),
            Want.false(RECONCILING, not_ready.reason, awaited(not_ready.reason)),
            stalled_off,
        )
    return (
        Want.true(READY, RECONCILED, ready_message or "All of the spec is in effect"),
        Want.false(RECONCILING, RECONCILED),
        stalled_off,
    )


def observing_conditions(generation: int, now: datetime) -> tuple[Condition, ...]:
    """The first status's conditions, written before anything is observed: kstatus calls an
    object without status Current, so a Flux health check polling right after the apply would
    pass it. Reconciling=True (InProgress) until the first reconcile says more."""
    wants = (
        Want(READY, ConditionStatus.UNKNOWN, AWAITING_RECONCILE, "Not observed in vCenter yet"),
        Want.true(RECONCILING, AWAITING_RECONCILE, "Observing vCenter"),
        Want.false(STALLED, AWAITING_RECONCILE),
    )
    return compute_conditions((), wants, generation, now)


def observing_status(kind: type[AnyStatus], generation: int, now: datetime) -> AnyStatus:
    """The whole first status: observedGeneration and `observing_conditions`, nothing else."""
    return kind(
        observed_generation=generation, conditions=list(observing_conditions(generation, now))
    )
