"""A host's recent tasks, read fresh: whether a rolling-reboot step's task was ever sent.

`ManagedEntity.recentTask` lists the queued, running and recently completed tasks of an entity
(vSphere API reference; vCenter drops completed ones after about 10 minutes). One
`RetrievePropertiesEx` follows `recentTask` from every host asked about to its tasks and reads
only `info.descriptionId`, `info.state`, `info.queueTime` and `info.entity`. Never from the
shared inventory read: a cached answer can't prove that a task was NOT sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pyVmomi import vim

from dpio.planner.host.steps import HostTask
from dpio.vsphere import properties
from dpio.vsphere.connect import Connection

_TASK_PATHS = ("info.descriptionId", "info.state", "info.queueTime", "info.entity")


def _filter(hosts: Collection[Any]) -> Any:
    pc = properties.PC
    to_tasks = pc.TraversalSpec(name="tasks", path="recentTask", skip=False, type=vim.HostSystem)
    return pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=host, skip=True, selectSet=[to_tasks]) for host in hosts],
        propSet=[pc.PropertySpec(type=vim.Task, pathSet=list(_TASK_PATHS))],
    )


def read_recent_tasks(
    conn: Connection, host_morefs: Collection[str]
) -> Mapping[str, tuple[HostTask, ...]]:
    """Host moref -> its recent tasks (every host asked about has an entry); one call."""
    found: dict[str, list[HostTask]] = {moref: [] for moref in host_morefs}
    if not found:
        return {}
    refs = [conn.ref(vim.HostSystem, moref) for moref in found]
    objects = properties.retrieve_flat(conn.content.propertyCollector, _filter(refs))
    for task in objects:
        host = properties.moref_id(task.get("info.entity"))
        if host in found:
            found[host].append(
                HostTask(
                    description_id=str(task.get("info.descriptionId", "")),
                    state=str(task.get("info.state", "")),
                    queue_time=task.get("info.queueTime"),
                )
            )
    return {moref: tuple(tasks) for moref, tasks in found.items()}
