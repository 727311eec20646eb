"""Was a rolling-reboot step's task ever sent? Told from vCenter's own record, never guessed.

A step's record goes to status before its task starts (so a run on a stale copy starts
nothing twice); a process that dies in between, or a task call that never reached vCenter,
leaves a record with no task behind it. A record that shows no effect after `UNCONFIRMED_AFTER`
is *unconfirmed*: the reconciler then reads the host's recent tasks (`ManagedEntity.recentTask`,
one fresh PropertyCollector call) and `tasks_seen` says, per host, whether vCenter has a task of
the step's method queued since the record. Only `NOT_SENT` lets the step be sent again; a read
that failed is `UNKNOWN`, and the host waits (a second reboot is the worst outcome there is).

vCenter keeps completed tasks in `recentTask` for about 10 minutes (queued and running ones for
as long as they last). A drain that succeeded shows as maintenance mode and a reboot as a new
boot time, so by then the record shows its effect and is not asked about; see docs/design.md,
"A step recorded but never sent".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from dpio.api.policy import RebootPhase, RollingRebootStatus

#: TaskInfo.descriptionId of the steps' tasks, "<type>.<vmodl method>" as vCenter spells them
#: (vSphere API reference, HostSystem: enterMaintenanceMode, reboot; TaskInfo.descriptionId).
ENTER_MAINTENANCE_MODE = "HostSystem.enterMaintenanceMode"
REBOOT = "HostSystem.reboot"
STEP_TASKS: Mapping[RebootPhase, str] = {
    RebootPhase.DRAINING: ENTER_MAINTENANCE_MODE,
    RebootPhase.REBOOTING: REBOOT,
}
#: The SOAP methods of the steps, as logs, Events and the vSphere Client name the tasks.
STEP_TASK_NAMES: Mapping[RebootPhase, str] = {
    RebootPhase.DRAINING: "EnterMaintenanceMode_Task",
    RebootPhase.REBOOTING: "RebootHost_Task",
}
#: A record whose step shows no effect this long after it was written is asked about. Covers the
#: time between the status write and the task call, and a call still in flight when its process
#: died; an Exiting record needs none (taking a host out twice does no harm: it is sent again).
UNCONFIRMED_AFTER = timedelta(seconds=60)
#: `since` is the operator's clock, `queueTime` vCenter's: a task queued up to this much
#: before the record still counts as the step's. Larger only ever errs towards waiting.
CLOCK_SKEW = timedelta(seconds=60)


class TaskSeen(Enum):
    """What vCenter's recent tasks say of a recorded step."""

    SENT = "sent"  # a task of its method was queued since the record (or this process sent it)
    NOT_SENT = "not sent"  # none: the step may be sent again
    UNKNOWN = "unknown"  # the tasks could not be read: wait, and ask again next time


@dataclass(frozen=True, slots=True)
class HostTask:
    """One entry of `HostSystem.recentTask`: `info.descriptionId`, `info.state`
    (queued, running, success, error), `info.queueTime`."""

    description_id: str
    state: str
    queue_time: datetime | None


@dataclass(frozen=True, slots=True)
class UnconfirmedStep:
    """A recorded step that shows no effect yet and whose task this process did not see sent."""

    host: str
    moref: str
    phase: RebootPhase
    since: datetime


def unconfirmed(record: RollingRebootStatus, now: datetime) -> bool:
    """Old enough to ask vCenter whether the step's task was sent."""
    return record.phase in STEP_TASKS and now - record.since > UNCONFIRMED_AFTER


def step_sent(step: UnconfirmedStep, tasks: Iterable[HostTask]) -> bool:
    """A task of the step's method queued since the record, in any state: one that failed was
    asked for too (vCenter refused it; it is not sent again, as before this check existed).
    A task without a queue time or without a descriptionId (not read) counts: it errs towards
    waiting."""
    method = STEP_TASKS[step.phase]
    earliest = step.since - CLOCK_SKEW
    return any(
        t.description_id in (method, "") and (t.queue_time is None or t.queue_time >= earliest)
        for t in tasks
    )


def tasks_seen(
    steps: Sequence[UnconfirmedStep], tasks: Mapping[str, Sequence[HostTask]] | None
) -> dict[str, TaskSeen]:
    """Host name -> what its recent tasks (by host moref; None: the read failed) say."""
    if tasks is None:
        return {s.host: TaskSeen.UNKNOWN for s in steps}
    return {
        s.host: TaskSeen.SENT if step_sent(s, tasks.get(s.moref, ())) else TaskSeen.NOT_SENT
        for s in steps
    }
