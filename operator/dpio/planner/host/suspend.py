"""A suspended HostPassthroughPolicy (spec.suspend, or the operator's dry-run): the calls its
plan holds back, described for the `Suspended` condition, and the rolling reboot frozen as it is.

A reboot in flight stops before its next step: the records stay as status has them (a host the
operator put in maintenance mode stays there), and each host says why it waits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dpio.api.policy import RollingRebootStatus
from dpio.planner.host.passthru import PassthruChange
from dpio.planner.host.reboot import (
    EnterMaintenanceMode,
    ExitMaintenanceMode,
    RebootAction,
    RebootPlan,
)
from dpio.planner.suspension import Suspension


def describe_update(host: str, changes: Iterable[PassthruChange]) -> str:
    listed = list(changes)
    enabled = sorted(c.id for c in listed if c.passthru_enabled)
    disabled = sorted(c.id for c in listed if not c.passthru_enabled)
    parts = [f"enable {', '.join(enabled)}" if enabled else "",
             f"disable {', '.join(disabled)}" if disabled else ""]  # fmt: skip
    return f"update passthrough on {host} ({'; '.join(p for p in parts if p)})"


def describe_action(action: RebootAction) -> str:
    if isinstance(action, EnterMaintenanceMode):
        return f"put {action.host} in maintenance mode"
    if isinstance(action, ExitMaintenanceMode):
        return f"take {action.host} out of maintenance mode"
    return f"reboot {action.host}"


def frozen_reboot(records: Mapping[str, RollingRebootStatus], suspension: Suspension) -> RebootPlan:
    """The rolling reboot as status has it, no step started: every host in it waits."""
    why = f"{suspension.cause}; the next step waits until {suspension.resume}"
    return RebootPlan(records=dict(records), waiting=dict.fromkeys(records, why))


def unfinished_reboots(
    records: Mapping[str, RollingRebootStatus], actions: Iterable[RebootAction]
) -> list[str]:
    """Rolling reboots under way whose next step is not due yet (a host still rebooting): held
    too, so Ready does not claim a host left in maintenance mode is done."""
    named = {a.host for a in actions}
    return [
        f"continue the rolling reboot of {name} ({record.phase.value})"
        for name, record in sorted(records.items())
        if name not in named
    ]
