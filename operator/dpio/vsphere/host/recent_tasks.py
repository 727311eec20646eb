"""A host's recent tasks, read fresh: whether a rolling-reboot step's task was ever sent.

`ManagedEntity.recentTask` lists the queued, running and recently completed tasks of an entity
(vSphere API reference; vCenter drops completed ones after about 10 minutes). One
`RetrievePropertiesEx` follows `recentTask` from every host asked about to its tasks and reads
only `info.descriptionId`, `info.state` and `info.queueTime`; each task is the host's whose
`recentTask` lists it (not taken from `info.entity`, which a task might lack). Never from the
shared inventory read: a cached answer can't prove that a task was NOT sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from pyVmomi import vim

from dpio.planner.host.steps import HostTask
from dpio.vsphere import properties
from dpio.vsphere.connect import Connection

_TASK_PATHS = ("info.descriptionId", "info.state", "info.queueTime")
_UNREAD = HostTask(description_id="", state="", queue_time=None)


def _filter(hosts: Collection[Any]) -> Any:
    pc = properties.PC
    to_tasks = pc.TraversalSpec(name="tasks", path="recentTask", skip=False, type=vim.HostSystem)
    return pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=host, skip=False, selectSet=[to_tasks]) for host in hosts],
        propSet=[
            pc.PropertySpec(type=vim.HostSystem, pathSet=["recentTask"]),
            pc.PropertySpec(type=vim.Task, pathSet=list(_TASK_PATHS)),
        ],
    )


def _aware(value: Any) -> datetime | None:
    """xsd:dateTime as pyVmomi parses it; one without a zone is taken as UTC."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def read_recent_tasks(
    conn: Connection, host_morefs: Collection[str]
) -> Mapping[str, tuple[HostTask, ...]]:
    """Host moref -> its recent tasks (every host asked about has an entry); one call."""
    if not host_morefs:
        return {}
    refs = [conn.ref(vim.HostSystem, moref) for moref in host_morefs]
    objects = properties.retrieve_flat(conn.content.propertyCollector, _filter(refs))
    tasks = {
        o.moref: HostTask(
            description_id=str(o.get("info.descriptionId", "")),
            state=str(o.get("info.state", "")),
            queue_time=_aware(o.get("info.queueTime")),
        )
        for o in objects
        if o.kind == "Task"
    }
    listed = {o.moref: o.get("recentTask", []) for o in objects if o.kind == "HostSystem"}
    # A task listed whose info did not come back (gone meanwhile) is kept, unread: the planner
    # counts it as the step's, which errs towards waiting.
    return {
        moref: tuple(tasks.get(properties.moref_id(ref), _UNREAD) for ref in listed.get(moref, []))
        for moref in host_morefs
    }
