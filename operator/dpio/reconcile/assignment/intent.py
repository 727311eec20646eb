"""Step 3 of a VMDeviceAssignment reconcile: write the intent, the status that says what the
calls are about to do (`previous`, power tracking, Reconciling), BEFORE any call.

The write carries the object's resourceVersion as precondition: a run working from a stale
read fails it (409) and makes no call. A status that did not change is not written at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import (
    DEVICES_UNAVAILABLE,
    FEATURE_CONFLICT,
    FORBIDDEN,
    POWER_OFF_REQUIRED,
    READY,
    STALLED,
    ConditionStatus,
)
from dpio.planner.conditions import find, status_changed
from dpio.reconcile.ports import ObjectsPort

Body = Mapping[str, Any]

# Conditions whose flips are worth an Event; True is a Warning for all but Ready.
_ANNOUNCED = (READY, STALLED, FORBIDDEN, DEVICES_UNAVAILABLE, FEATURE_CONFLICT, POWER_OFF_REQUIRED)


@dataclass(frozen=True)
class Intent:
    """The status to write over `previous` (what the object's status says now)."""

    previous: VMDeviceAssignmentStatus
    status: VMDeviceAssignmentStatus
    #: False: written without the resourceVersion precondition (a report after the calls,
    #: which changes no vCenter state).
    guarded: bool = True


async def write_intent(objects: ObjectsPort, body: Body, intent: Intent) -> None:
    """Patch status if it changed, then one Event per condition flip. Raises PortError."""
    if not intent.guarded:
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": ""}}
    current = intent.previous if body.get("status") else None
    if not status_changed(current, intent.status):
        return  # steady state: no write at all
    before = body.get("status") or {}
    after = intent.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    await objects.patch_status(body, merge_patch(before, after))
    await transition_events(objects, body, intent.previous, intent.status)


def merge_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """`after` as a JSON merge patch over `before` (RFC 7386): a field `after` no longer has is
    sent as null, or the API server would keep the old value (e.g. `power` once the VM runs)."""
    patch = dict(after)
    for key, old in before.items():
        if key not in after:
            patch[key] = None
        elif isinstance(old, Mapping) and isinstance(after[key], Mapping):
            patch[key] = merge_patch(old, after[key])
    return patch


async def transition_events(
    objects: ObjectsPort,
    body: Body,
    previous: VMDeviceAssignmentStatus,
    status: VMDeviceAssignmentStatus,
) -> None:
    """One Event per condition flip, not per reconcile: `kubectl describe` tells the story.
    Ready, Stalled and the problem's own condition often flip together with the same reason and
    message (Stalled=True for InUseByVM, say): that is told once."""
    told: set[tuple[str, str]] = set()
    for type_ in _ANNOUNCED:
        before, after = find(previous.conditions, type_), find(status.conditions, type_)
        if after is None or after.status is ConditionStatus.UNKNOWN:
            continue
        if before is None and after.status is ConditionStatus.FALSE and type_ != READY:
            continue  # a problem that never was is not news
        if before is not None and before.status == after.status:
            continue
        if (after.reason, after.message) in told:
            continue
        told.add((after.reason, after.message))
        bad = (after.status is ConditionStatus.TRUE) != (type_ == READY)
        await objects.event(body, "Warning" if bad else "Normal", after.reason, after.message)
