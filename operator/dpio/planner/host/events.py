"""Kubernetes Events for a HostPassthroughPolicy: one per transition, computed from two statuses.

`kubectl describe hpp` should tell the story (issue #3: enabled, reboot needed, rebooted,
refused) without an Event per reconcile: each function here compares the status before and after
a reconcile and reports only what flipped. The calls the reconciler makes (UpdatePassthruConfig,
maintenance mode, reboot) get their own Events where they are made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dpio.api.conditions import (
    DEGRADED,
    DEVICE_IN_USE,
    DEVICE_NOT_CAPABLE,
    INSECURE_CONNECTION,
    READY,
    REBOOT_REQUIRED,
    STALLED,
    SUSPENDED,
    Condition,
    ConditionStatus,
)
from dpio.api.policy import DeviceState, HostPassthroughPolicyStatus, HostStatus, RebootPhase
from dpio.planner.conditions import find

NORMAL, WARNING = "Normal", "Warning"
# Event reasons of our own (not condition reasons): what happened to a host.
HOST_REBOOTED = "HostRebooted"  # a rolling reboot brought the host back with the changes active
PASSTHROUGH_ACTIVE = "PassthroughActive"  # a host needed a reboot and no longer does
# Devices the policy selects but may not enable; each kind of refusal is one Event.
_REFUSED = {DeviceState.IN_USE_BY_HOST: DEVICE_IN_USE, DeviceState.NOT_CAPABLE: DEVICE_NOT_CAPABLE}
# Degraded reasons already told by the device Events above.
_TOLD_BY_DEVICES = frozenset(_REFUSED.values())
_MAX_LISTED = 5


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    """A core/v1 Event to post on the policy."""

    type: str  # Normal | Warning
    reason: str
    message: str


def transition_events(
    previous: HostPassthroughPolicyStatus, current: HostPassthroughPolicyStatus
) -> tuple[PolicyEvent, ...]:
    """Events for what changed from `previous` to `current`, in a stable order."""
    conditions = _condition_events(previous.conditions, current.conditions)
    told = {event.reason for event in conditions}  # e.g. Ready=False, reason DeviceInUse
    return (
        *conditions,
        *_host_events(previous.hosts, current.hosts),
        *(e for e in _refusal_events(previous.hosts, current.hosts) if e.reason not in told),
    )


def _flipped(before: Condition | None, after: Condition | None) -> bool:
    if after is None or after.status is ConditionStatus.UNKNOWN:
        return False
    return before is None or before.status != after.status


def _condition_events(
    previous: Sequence[Condition], current: Sequence[Condition]
) -> list[PolicyEvent]:
    events = []
    ready = find(current, READY)
    if ready is not None and _flipped(find(previous, READY), ready):
        false = ready.status is ConditionStatus.FALSE
        events.append(PolicyEvent(WARNING if false else NORMAL, ready.reason, ready.message))
    reboot = find(current, REBOOT_REQUIRED)
    if reboot is not None and _newly_true(find(previous, REBOOT_REQUIRED), reboot):
        events.append(PolicyEvent(NORMAL, reboot.reason, reboot.message))
    insecure = find(current, INSECURE_CONNECTION)
    if insecure is not None and _newly_true(find(previous, INSECURE_CONNECTION), insecure):
        events.append(PolicyEvent(WARNING, insecure.reason, insecure.message))
    suspended = find(current, SUSPENDED)
    told_now = {e.reason for e in events}  # Ready may have said it already
    if (
        suspended is not None
        and _newly_true(find(previous, SUSPENDED), suspended)
        and suspended.reason not in told_now
    ):
        events.append(PolicyEvent(NORMAL, suspended.reason, suspended.message))
    # Stalled and Degraded often carry the reason Ready just told: one Event is enough.
    # Degraded: DrainTimeout, PolicyConflict, HostUnreachable, PassthroughUnsupported, ...
    for type_ in (STALLED, DEGRADED):
        after = find(current, type_)
        told = {e.reason for e in events} | _TOLD_BY_DEVICES
        fresh = after is not None and _newly_true(find(previous, type_), after)
        if after is not None and fresh and after.reason not in told:
            events.append(PolicyEvent(WARNING, after.reason, after.message))
    return events


def _newly_true(before: Condition | None, after: Condition) -> bool:
    """True now, and either not before or for another reason."""
    if after.status is not ConditionStatus.TRUE:
        return False
    if before is None or before.status is not ConditionStatus.TRUE:
        return True
    return before.reason != after.reason


def _host_events(
    previous: Sequence[HostStatus], current: Sequence[HostStatus]
) -> Iterator[PolicyEvent]:
    before = {h.name: h for h in previous}
    for host in current:
        old = before.get(host.name)
        if old is None or not old.reboot_required or host.reboot_required:
            continue
        record = old.rolling_reboot
        if record is not None and record.phase is not RebootPhase.DRAINING:
            yield PolicyEvent(
                NORMAL, HOST_REBOOTED, f"{host.name} rebooted; its passthrough changes are active"
            )
        else:
            yield PolicyEvent(
                NORMAL, PASSTHROUGH_ACTIVE, f"Every passthrough change on {host.name} is active"
            )


def _refusal_events(
    previous: Sequence[HostStatus], current: Sequence[HostStatus]
) -> Iterator[PolicyEvent]:
    before = {(h.name, d.address): d.state for h in previous for d in h.devices}
    for state, reason in _REFUSED.items():
        refused = [
            f"{h.name} {d.address}: {d.message or state.value}"
            for h in current
            for d in h.devices
            if d.state is state and before.get((h.name, d.address)) is not state
        ]
        if refused:
            shown = "; ".join(refused[:_MAX_LISTED])
            more = len(refused) - _MAX_LISTED
            tail = f"; and {more} more" if more > 0 else ""
            yield PolicyEvent(WARNING, reason, f"Refused {shown}{tail}")
