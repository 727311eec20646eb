"""The policy reconciler's calls that change hosts, and what they tell `kubectl describe`:
one `UpdatePassthruConfig` per host (all hosts at once), and the Event of a rolling-reboot step
sent again because vCenter had no task of it (planner/host/steps.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from dpio.api.policy import RollingRebootStatus
from dpio.planner import UpdatePassthruConfig
from dpio.planner.host.reboot import RebootAction, format_time
from dpio.planner.host.steps import STEP_TASK_NAMES
from dpio.reconcile.ports import HostsPort, ObjectsPort, PortError

_log = logging.getLogger(__name__)
#: Event reason: a recorded rolling-reboot step had no task in vCenter and is sent again.
REBOOT_STEP_RESENT = "RebootStepResent"


async def update_passthru(
    objects: ObjectsPort,
    body: Mapping[str, Any],
    hosts: HostsPort,
    updates: Iterable[UpdatePassthruConfig],
) -> None:
    """One `UpdatePassthruConfig` per host, all hosts at once: the vCenter client's thread
    pool (one thread per pooled connection) bounds how many are in flight, so 64 hosts take
    64 / pool-size round trips instead of 64 (docs/benchmarks.md, finding 5). Each host that
    changed gets its Event; the first failure, in host order, is raised after all ended."""
    results = await asyncio.gather(
        *(_update_host(objects, body, hosts, u) for u in updates), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _update_host(
    objects: ObjectsPort, body: Mapping[str, Any], hosts: HostsPort, update: UpdatePassthruConfig
) -> None:
    try:
        await hosts.update_passthru_config(update)
    except PortError as err:  # say which host refused, for the condition's message
        message = f"{update.host}: UpdatePassthruConfig failed: {err.message}"
        raise PortError(err.reason, message, retryable=err.retryable) from err
    enabled = sorted(c.id for c in update.changes if c.passthru_enabled)
    disabled = sorted(c.id for c in update.changes if not c.passthru_enabled)
    parts = [f"enabled {', '.join(enabled)}" if enabled else "",
             f"disabled {', '.join(disabled)}" if disabled else ""]  # fmt: skip
    message = f"Passthrough on {update.host}: {'; '.join(p for p in parts if p)}"
    await objects.event(body, "Normal", "PassthroughUpdated", message)


async def tell_sent_again(
    objects: ObjectsPort,
    body: Mapping[str, Any],
    name: str,
    action: RebootAction,
    record: RollingRebootStatus,
) -> None:
    task = STEP_TASK_NAMES[record.phase]
    since = format_time(record.since)
    _log.warning(
        "Sent a recorded reboot step again: vCenter had no task of it",
        extra={"object": name, "host": action.host, "phase": record.phase.value,
               "since": since, "task": task},
    )  # fmt: skip
    message = (
        f"{action.host}: {task} sent again. The {record.phase.value} step recorded at "
        f"{since} had no task in vCenter (the operator stopped, or the call failed, between "
        "the record and the task)"
    )
    await objects.event(body, "Warning", REBOOT_STEP_RESENT, message)
