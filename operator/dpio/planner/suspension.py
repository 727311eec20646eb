"""The pause switch: `spec.suspend` on either kind, and the operator-wide dry-run mode.

While either holds, the planner still plans everything (so status can name what would be done)
but hands the reconciler no call: `held_calls` is the one rule, "suspended -> no vCenter
write", and each kind's planner applies it where its calls are made (docs/design.md,
"Suspend and dry-run"). The object reports it as condition `Suspended` (True, reason
`Suspended` or `DryRun`), and `Ready` stays False while something is held back.
Flux (`spec.suspend`) and Cluster API (`spec.paused`) behave the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import AS_EXPECTED, DRY_RUN, SUSPENDED
from dpio.api.policy import HostPassthroughPolicyStatus
from dpio.planner.conditions import Problem, Want, compute_conditions

_MAX_LISTED = 5


@dataclass(frozen=True, slots=True)
class Suspension:
    """Why no vCenter write may be made now: reason `Suspended` (spec) or `DryRun` (operator)."""

    reason: str

    @property
    def cause(self) -> str:
        if self.reason == DRY_RUN:
            return "The operator runs in dry-run mode: nothing is written to vCenter"
        return "spec.suspend is true: nothing is written to vCenter"

    @property
    def resume(self) -> str:
        """What lets writes happen again, for messages."""
        if self.reason == DRY_RUN:
            return "the operator runs without --dry-run (chart value dryRun: false)"
        return "spec.suspend is false"


def suspension_of(*, suspend: bool, dry_run: bool) -> Suspension | None:
    """The object's own switch wins: it outlasts the operator's mode."""
    if suspend:
        return Suspension(SUSPENDED)
    if dry_run:
        return Suspension(DRY_RUN)
    return None


@dataclass(frozen=True, slots=True)
class Held:
    """The calls a suspension held back in this reconcile (none: nothing is pending)."""

    suspension: Suspension
    pending: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if not self.pending:
            return f"{self.suspension.cause}; nothing is pending"
        shown = "; ".join(self.pending[:_MAX_LISTED])
        rest = len(self.pending) - _MAX_LISTED
        listing = f"{shown}; and {rest} more" if rest > 0 else shown
        return f"{self.suspension.cause}. Would: {listing}"

    @property
    def problem(self) -> Problem | None:
        """Ready=False while changes wait: the spec is not in effect."""
        if not self.pending:
            return None
        return Problem(self.suspension.reason, self.message)


def held_calls(suspension: Suspension | None, pending: Sequence[str]) -> Held | None:
    """The rule: with a suspension, every call of the plan is held back and only described."""
    if suspension is None:
        return None
    return Held(suspension, tuple(pending))


def suspended_want(held: Held | None) -> Want:
    """Condition `Suspended`, present on every reconciled object."""
    if held is None:
        return Want.false(SUSPENDED, AS_EXPECTED, "Changes are written to vCenter")
    return Want.true(SUSPENDED, held.suspension.reason, held.message)


def cleanup_waits(held: Held) -> str:
    """Message of a deletion whose cleanup would write to vCenter: the finalizer stays."""
    return f"{held.message}. Deletion waits (the finalizer stays) until {held.suspension.resume}"


#: The status of either kind: both carry `conditions` and `observed_generation`.
S = TypeVar("S", HostPassthroughPolicyStatus, VMDeviceAssignmentStatus)


def cleanup_waiting_status(previous: S, held: Held, generation: int, now: datetime) -> S:
    """The status of a deletion whose cleanup would write while suspended: `Suspended` says the
    deletion waits (cleanup_waits), every other condition stays as it was."""
    want = Want.true(SUSPENDED, held.suspension.reason, cleanup_waits(held))
    conditions = previous.conditions
    kept: list[Want] = [
        Want(c.type, c.status, c.reason, c.message) for c in conditions if c.type != want.type
    ]
    update = {
        "conditions": list(compute_conditions(conditions, [*kept, want], generation, now)),
        "observed_generation": generation,
    }
    return previous.model_copy(update=update)
