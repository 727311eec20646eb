"""Task outcomes from the change watch (task_states.py, watch.task_updates, tasks.wait_for_task):
a wait the watch answers makes no call; a watch that is down or silent falls back to a read."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from dpio.vsphere import tasks
from dpio.vsphere.errors import TaskFailed
from dpio.vsphere.task_states import TaskStates
from dpio.vsphere.watch import changes_of, task_updates, with_recent_tasks

V: Any = vim
PC: Any = vmodl.query.PropertyCollector


def _update(obj: Any, kind: str, **values: Any) -> Any:
    changes = [PC.Change(name=p, op="assign", val=v) for p, v in values.items()]
    return PC.ObjectUpdate(kind=kind, obj=obj, changeSet=changes)


def _states(**morefs: str) -> TaskStates:
    states = TaskStates()
    states.set_live(True)
    states.report((m, {"info.state": s}) for m, s in morefs.items())
    return states


def test_task_updates_go_apart_from_the_object_changes() -> None:
    fault = V.fault.InvalidPowerState(msg="powered on")
    update_set = PC.UpdateSet(
        version="7",
        filterSet=[
            PC.FilterUpdate(
                objectSet=[
                    _update(V.Task("task-1"), "enter", **{"info.state": "running"}),
                    _update(V.VirtualMachine("vm-1"), "modify", **{"config.changeVersion": "2"}),
                    _update(V.Task("task-2"), "modify", **{"info.state": "error"}),
                    _update(V.Task("task-2"), "modify", **{"info.error": fault}),
                    _update(V.Task("task-0"), "leave"),
                ]
            )
        ],
    )
    assert [c.moref for c in changes_of(update_set)] == ["vm-1"]
    assert task_updates(update_set) == [
        ("task-1", {"info.state": "running"}),
        ("task-2", {"info.state": "error"}),
        ("task-2", {"info.error": fault}),
    ]


def test_a_report_keeps_what_an_earlier_one_said() -> None:
    states = TaskStates()
    states.report(
        [("task-1", {"info.state": "running", "info.descriptionId": "VirtualMachine.reconfigure"})]
    )
    states.report([("task-1", {"info.state": "success"})])
    found = states.get("task-1")
    assert found is not None
    assert (found.state, found.description_id, found.done) == (
        "success",
        "VirtualMachine.reconfigure",
        True,
    )


def test_only_the_newest_tasks_are_kept() -> None:
    states = TaskStates(keep=3)
    states.report((f"task-{i}", {"info.state": "success"}) for i in range(5))
    assert len(states) == 3
    assert states.get("task-1") is None
    assert states.get("task-4") is not None


def test_a_wait_ends_when_the_watch_reports_the_end() -> None:
    states = _states(**{"task-1": "running"})
    threading.Timer(0.05, lambda: states.report([("task-1", {"info.state": "success"})])).start()
    found = states.wait_done("task-1", 5.0, unseen=5.0)
    assert found is not None
    assert found.state == "success"


def test_a_wait_gives_up_on_a_task_the_watch_never_reports() -> None:
    started = time.monotonic()
    assert _states().wait_done("task-9", 30.0, unseen=0.05) is None
    assert time.monotonic() - started < 5.0


def test_a_wait_gives_up_when_the_watch_goes_down() -> None:
    states = _states(**{"task-1": "running"})
    threading.Timer(0.05, lambda: states.set_live(False)).start()
    assert states.wait_done("task-1", 30.0, unseen=30.0) is None


class _Reads:
    """Stands for the connection: counts the reads a wait makes (it must make none)."""

    def __init__(self) -> None:
        self.reads = 0

    @property
    def content(self) -> Any:
        self.reads += 1
        raise AssertionError("the wait read the task although the watch reported it")


def test_wait_for_task_takes_the_watch_report_without_a_call() -> None:
    conn = _Reads()
    states = _states(**{"task-1": "success"})
    assert tasks.wait_for_task(conn, V.Task("task-1"), 5.0, states) is None  # type: ignore[arg-type]
    assert conn.reads == 0


def test_wait_for_task_raises_the_fault_the_watch_reported() -> None:
    states = _states()
    fault = V.fault.InvalidPowerState(msg="The attempted operation cannot be performed")
    states.report([("task-2", {"info.state": "error", "info.error": fault})])
    with pytest.raises(TaskFailed) as caught:
        tasks.wait_for_task(_Reads(), V.Task("task-2"), 5.0, states)  # type: ignore[arg-type]
    assert caught.value.fault == "InvalidPowerState"
    assert caught.value.__cause__ is fault


def test_wait_for_task_reads_the_task_when_the_watch_is_down() -> None:
    conn = _Reads()
    states = TaskStates()  # never live
    with pytest.raises(AssertionError, match="read the task"):
        tasks.wait_for_task(conn, V.Task("task-3"), 5.0, states)  # type: ignore[arg-type]
    assert conn.reads == 1


def test_the_watch_filter_follows_recent_tasks() -> None:
    view = V.view.ContainerView("view-1")
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view)],
        propSet=[PC.PropertySpec(type=V.VirtualMachine, pathSet=["name"])],
    )
    with_recent_tasks(spec, V.TaskManager("TaskManager"))
    assert spec.objectSet[0].obj == view
    obj = spec.objectSet[1]
    assert (obj.skip, obj.selectSet[0].path, obj.selectSet[0].type) == (
        True,
        "recentTask",
        V.TaskManager,
    )
    props = spec.propSet[1]
    assert (props.type, set(props.pathSet)) == (
        V.Task,
        {"info.state", "info.error", "info.descriptionId"},
    )
