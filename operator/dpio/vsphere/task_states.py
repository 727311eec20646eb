"""Task outcomes from the change watch, so that waiting for a task costs no call of its own.

The watch (watch.py) follows `TaskManager.recentTask` ("tasks that completed recently, that are
currently running, or that are queued to run"; vSphere API reference, TaskManager) in the same
filter as the hosts and VMs, and hands every reported task state here. A caller that started a
task waits on that report instead of reading the task: a `ReconfigVM_Task` costs the call that
starts it and nothing more, as its completion arrives in the same `WaitForUpdatesEx` answer as
the VM's new configuration.

vCenter keeps a bounded list (200 tasks in the simulator, "the VC limit"), and the watch may be
down: a caller that hears nothing falls back to reading the task (tasks.py). Bounded here too:
the most recent `keep` tasks are remembered, which covers a task that finished before its
caller began to wait.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: TaskInfo.State values that end a task (vSphere API reference).
DONE = frozenset({"success", "error"})
#: How many tasks' states are kept (each is a few short strings and the fault if any).
KEEP = 4096


@dataclass(frozen=True, slots=True)
class TaskState:
    """What the watch last reported of one task: `info.state`, `info.error` (the fault, or
    None) and `info.descriptionId`."""

    state: str
    error: Any = None
    description_id: str = ""

    @property
    def done(self) -> bool:
        return self.state in DONE


class TaskStates:
    """Thread-safe: the watch thread reports, callers' worker threads wait."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._states: OrderedDict[str, TaskState] = OrderedDict()
        self._changed = threading.Condition()
        self._live = False

    @property
    def live(self) -> bool:
        """The watch runs and has sent its initial state: a task's change will be reported."""
        return self._live

    def set_live(self, live: bool) -> None:
        """Called by the watch: True once its initial state is in, False when it goes down
        (waiters stop waiting and read the task instead)."""
        with self._changed:
            self._live = live
            self._changed.notify_all()

    def report(self, updates: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Changed properties per task moref (`info.state`, `info.error`, `info.descriptionId`);
        properties not in an update keep their last reported value."""
        with self._changed:
            for moref, props in updates:
                before = self._states.pop(moref, None)
                self._states[moref] = TaskState(
                    state=str(props.get("info.state", before.state if before else "")),
                    error=props["info.error"] if "info.error" in props else _error_of(before),
                    description_id=str(
                        props.get("info.descriptionId", before.description_id if before else "")
                    ),
                )
            while len(self._states) > self._keep:
                self._states.popitem(last=False)
            self._changed.notify_all()

    def get(self, moref: str) -> TaskState | None:
        with self._changed:
            return self._states.get(moref)

    def wait_done(self, moref: str, timeout: float, *, unseen: float) -> TaskState | None:
        """The task's final state as the watch reports it; None when the watch is not live,
        when it has not reported the task at all within `unseen` seconds (it may have left
        vCenter's recent list), or after `timeout`: the caller then reads the task itself."""
        start = time.monotonic()
        with self._changed:
            while True:
                found = self._states.get(moref)
                if found is not None and found.done:
                    return found
                if not self._live:
                    return None
                waited = time.monotonic() - start
                limit = timeout if found is not None else min(timeout, unseen)
                if waited >= limit:
                    return None
                self._changed.wait(limit - waited)

    def __len__(self) -> int:
        with self._changed:
            return len(self._states)


def _error_of(before: TaskState | None) -> Any:
    return before.error if before is not None else None
