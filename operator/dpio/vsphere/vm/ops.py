"""Execute a VM plan: ReconfigVM_Task, ReconfigureComputeResource_Task, power. Blocking.

Starting a task and waiting for it are two calls through `VCenterClient.run`, so a re-login
while waiting repeats only the wait, never the change. A failed task comes back as the typed
error of its fault (ConcurrentModification for a stale `changeVersion`, InvalidPowerState, ...),
so callers can tell a conflict from a refusal without parsing messages.
"""

from __future__ import annotations

import logging
from typing import Any

from pyVmomi import vim

from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.power import PowerAction
from dpio.vsphere import tasks
from dpio.vsphere.connect import Connection
from dpio.vsphere.errors import TaskFailed, VSphereError, translate
from dpio.vsphere.properties import moref_id
from dpio.vsphere.task_states import TaskStates
from dpio.vsphere.vm import spec as vm_spec
from dpio.vsphere.vm.reader import VMReader

logger = logging.getLogger(__name__)


def start_reconfigure(conn: Connection, reader: VMReader, change: ReconfigVM) -> str:
    """Start ONE `ReconfigVM_Task` carrying every change of `change`; returns the task moref.

    NIC edits send the adapter as last read (an edit replaces the device), which must still be
    the VM at `change.change_version`.
    """
    nics = (
        reader.current_nics(conn, change.moref, change.change_version) if change.nic_edits else {}
    )
    spec = vm_spec.config_spec(change, nics)
    task = conn.ref(vim.VirtualMachine, change.moref).ReconfigVM_Task(spec=spec)
    logger.info(
        "Reconfiguring VM",
        extra={
            "vm": change.moref,
            "task": moref_id(task),
            "removes": [r.key for r in change.removes],
            "adds": [a.name for a in change.adds],
        },
    )
    return moref_id(task)


def start_reconfigure_cluster(conn: Connection, change: ReconfigureCluster) -> str:
    """`ReconfigureComputeResource_Task(spec, modify=True)`: only this VM's overrides change
    (modify=False would replace the whole cluster configuration; vSphere API reference)."""
    vm = conn.ref(vim.VirtualMachine, change.vm_moref)
    cluster = conn.ref(vim.ClusterComputeResource, change.cluster_moref)
    task = cluster.ReconfigureComputeResource_Task(
        spec=vm_spec.cluster_spec(change, vm), modify=True
    )
    logger.info(
        "Reconfiguring cluster overrides of VM",
        extra={"vm": change.vm_moref, "cluster": change.cluster_moref, "task": moref_id(task)},
    )
    return moref_id(task)


def start_upgrade(conn: Connection, change: UpgradeVM) -> str:
    """`UpgradeVM_Task(version)`: to the version given, not the host's newest (the least change
    that allows Dynamic DirectPath; vSphere API reference, VirtualMachine.UpgradeVM_Task)."""
    task = conn.ref(vim.VirtualMachine, change.moref).UpgradeVM_Task(version=change.version)
    logger.info(
        "Upgrading VM hardware version",
        extra={"vm": change.moref, "from": change.previous, "to": change.version},
    )
    return moref_id(task)


def start_power(conn: Connection, vm_moref: str, action: PowerAction) -> str:
    """The task moref, or "" for `ShutdownGuest`, which asks VMware Tools and returns at once
    (vSphere API reference, VirtualMachine.ShutdownGuest)."""
    vm = conn.ref(vim.VirtualMachine, vm_moref)
    logger.info("Changing VM power state", extra={"vm": vm_moref, "action": str(action)})
    if action is PowerAction.SHUTDOWN_GUEST:
        vm.ShutdownGuest()
        return ""
    if action is PowerAction.POWER_OFF:
        return moref_id(vm.PowerOffVM_Task())
    return moref_id(vm.PowerOnVM_Task())


def typed_task_error(err: TaskFailed) -> VSphereError:
    """The adapter error of the task's own fault (kept as `err.__cause__` by tasks.py)."""
    cause: Any = err.__cause__
    if not isinstance(cause, BaseException):
        return err
    typed = translate(cause)
    if type(typed) is VSphereError:
        return err
    return type(typed)(err.message, fault=err.fault)


def wait(
    conn: Connection, task_moref: str, timeout: float, reported: TaskStates | None = None
) -> Any:
    """The task's result; the typed error of its fault when it fails. With `reported` (the
    change watch's task states), no call while the watch reports the task (tasks.py)."""
    try:
        return tasks.wait_for_task(conn, tasks.task_ref(conn, task_moref), timeout, reported)
    except TaskFailed as err:
        typed = typed_task_error(err)
        if typed is err:
            raise
        raise typed from err
