"""The async face of the adapter for the VM side: what the VMDeviceAssignment reconciler awaits.

Each blocking step runs through `VCenterClient.run` (bounded thread pool, fault translation, one
transparent re-login on session expiry). Reads: reader.py (at most 3 calls per converged VM,
docs/design.md#vcenter-access); specs: spec.py; execution: ops.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.observed import VMName, VMObservation
from dpio.planner.vm.power import PowerAction
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.vm import ops
from dpio.vsphere.vm.read_ahead import dropped_by
from dpio.vsphere.vm.reader import VMReader
from dpio.vsphere.watch import Change

# A reconfigure or power task that runs longer than this is reported as TaskTimedOut (it may
# still finish; the next reconcile sees the result).
DEFAULT_TASK_TIMEOUT_SECONDS = 600.0


class VMAdapter:
    """VM-side operations on one vCenter."""

    def __init__(
        self, client: VCenterClient, *, task_timeout: float = DEFAULT_TASK_TIMEOUT_SECONDS
    ) -> None:
        self.client = client
        self.task_timeout = task_timeout
        self.reader = VMReader()

    async def observe_vm(
        self, *, name: str = "", instance_uuid: str = "", ahead: Sequence[VMName] = ()
    ) -> VMObservation:
        """The VM named so (exactly one of `name` / `instance_uuid`), its host's ConfigTarget,
        passthrough limit and Gen2 capability, and which host devices other VMs hold.

        `vm` is None when no such VM exists. `claims`, `policy` and `namespace_labels` stay
        empty: the reconciler fills them from its caches. `ahead`: (name, instance UUID) of
        the VMs likely observed next, read in the same call (read_ahead.py).
        """
        if bool(name) == bool(instance_uuid):
            raise ValueError("observe_vm needs exactly one of name or instance_uuid")
        return await self.client.run(self.reader.observe, name, instance_uuid, tuple(ahead))

    def changed(self, changes: Sequence[Change]) -> None:
        """What the change watch reported: answers read ahead that it makes stale are dropped.
        Called on the watcher's thread, before the changes trigger any reconcile."""
        self.reader.forget(dropped_by(changes))

    async def reconfigure(self, change: ReconfigVM) -> None:
        """One ReconfigVM_Task with every change, waited for; nothing when `change` is empty.

        A stale `changeVersion` raises `ConcurrentModification` (retryable: observe again).
        """
        if change.empty:
            return
        self.reader.forget([change.moref])
        task = await self.client.run(ops.start_reconfigure, self.reader, change)
        await self.client.run(ops.wait, task, self.task_timeout, self.client.tasks)

    async def reconfigure_cluster(self, change: ReconfigureCluster) -> None:
        """ReconfigureComputeResource_Task(modify=True) with this VM's DRS/HA overrides."""
        if change.drs is None and change.das is None:
            return
        self.reader.forget([change.vm_moref])
        task = await self.client.run(ops.start_reconfigure_cluster, change)
        await self.client.run(ops.wait, task, self.task_timeout, self.client.tasks)

    async def upgrade(self, change: UpgradeVM) -> None:
        """UpgradeVM_Task, waited for; the VM must be powered off (InvalidPowerState if not)."""
        self.reader.forget([change.moref])
        task = await self.client.run(ops.start_upgrade, change)
        await self.client.run(ops.wait, task, self.task_timeout, self.client.tasks)

    async def power(self, vm_moref: str, action: PowerAction) -> None:
        """ShutdownGuest (returns once VMware Tools accepted it), or PowerOff/PowerOn (waited)."""
        self.reader.forget([vm_moref])
        task = await self.client.run(ops.start_power, vm_moref, action)
        if task:
            await self.client.run(ops.wait, task, self.task_timeout, self.client.tasks)
