"""Wait for a vSphere task by change notification, not by polling `task.info`.

Each wait gets a PropertyCollector of its own (`CreatePropertyCollector`): WaitForUpdatesEx on
the session's shared collector would hand one waiter the updates of another's filter (vSphere
API reference, PropertyCollector: "each session has a default collector ... create additional
collectors for independent clients"). Cost: create, filter, one long poll per state change,
destroy; polling `task.info` costs a call every interval for as long as the task runs.
Before that, one read of the task: many tasks (a reconfigure, a power-on) have finished by the
time the call that started them returns, and then that read is the whole wait (1 call, not 4).

Cheaper still, no call at all: where the vCenter's change watch follows its recent tasks
(task_states.py), the wait is for the watch's report, and the read above is only the fallback
for a watch that is down or never reports the task.
"""

from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim

from dpio.vsphere import properties
from dpio.vsphere.connect import Connection
from dpio.vsphere.errors import TaskFailed, TaskTimedOut, translate
from dpio.vsphere.task_states import TaskStates

# TaskInfo.State (vSphere API reference).
SUCCESS, ERROR = "success", "error"
_TASK_PATHS = ("info.state", "info.error", "info.result", "info.descriptionId")
_MAX_WAIT_SECONDS = 20  # per long poll; below the client's socket timeout
#: A task the watch has not reported at all after this long is read instead (it may have left
#: vCenter's list of recent tasks before the watch saw it).
UNSEEN_SECONDS = 10.0


def task_ref(conn: Connection, task_moref: str) -> Any:
    return conn.ref(vim.Task, task_moref)


def _apply(changes: Any, state: dict[str, Any]) -> None:
    for update in changes.filterSet or ():
        for obj in update.objectSet or ():
            for change in obj.changeSet or ():
                state[change.name] = change.val


def wait_for_task(
    conn: Connection, task: Any, timeout: float, reported: TaskStates | None = None
) -> Any:
    """The task's result once it succeeds; `TaskFailed` (retryable as its fault) if it fails.

    With `reported` (the watch's task states) and a live watch, the watch's report is the
    answer and no call is made; the result is then None (the watch does not carry
    `info.result`, which no caller of a watched wait uses)."""
    if reported is not None and reported.live:
        started = time.monotonic()
        seen = reported.wait_done(properties.moref_id(task), timeout, unseen=UNSEEN_SECONDS)
        if seen is not None:
            reported_state = {
                "info.state": seen.state,
                "info.error": seen.error,
                "info.descriptionId": seen.description_id,
            }
            return _outcome(reported_state, task)
        # Not heard of (or the watch went down): read it, within what is left of `timeout`.
        timeout = max(1.0, timeout - (time.monotonic() - started))
    spec = properties.object_filter(task, vim.Task, _TASK_PATHS)
    read = properties.retrieve_flat(conn.content.propertyCollector, spec)
    state: dict[str, Any] = dict(read[0].props) if read else {}
    if state.get("info.state") not in (SUCCESS, ERROR):
        collector = conn.content.propertyCollector.CreatePropertyCollector()
        try:
            collector.CreateFilter(spec, partialUpdates=False)
            state = _wait(collector, timeout, task)
        finally:
            collector.Destroy()
    return _outcome(state, task)


def _outcome(state: dict[str, Any], task: Any) -> Any:
    """`info.result` of a task that succeeded; `TaskFailed` for one that failed."""
    if state.get("info.state") == ERROR:
        fault = state.get("info.error")
        cause = translate(fault) if isinstance(fault, BaseException) else None
        name = str(state.get("info.descriptionId") or properties.moref_id(task))
        raise TaskFailed(
            f"task {name} failed: {cause.message if cause else 'no error reported'}",
            fault=cause.fault if cause else "",
            retryable=cause.retryable if cause else False,
        ) from fault if isinstance(fault, BaseException) else None
    return state.get("info.result")


def _wait(collector: Any, timeout: float, task: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    version = ""
    state: dict[str, Any] = {}
    while state.get("info.state") not in (SUCCESS, ERROR):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TaskTimedOut(
                f"task {properties.moref_id(task)} still {state.get('info.state')} "
                f"after {timeout:.0f}s"
            )
        wait = max(1, min(_MAX_WAIT_SECONDS, int(remaining)))
        options = properties.PC.WaitOptions(maxWaitSeconds=wait)
        changes = collector.WaitForUpdatesEx(version, options)
        if changes is not None:
            version = changes.version
            _apply(changes, state)
    return state
