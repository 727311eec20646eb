"""The VM side of the adapters: `VMsPort` over `dpio.vsphere.vm_adapter.VMAdapter`, with
vSphere's typed errors turned into `PortError`s here, once, and vCenter's VM change
notifications handed to the runtime (DESIGN.md §3.2.10: drift shows within seconds, no polling).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dpio.api.policy import VCenterRef
from dpio.handlers.logins import Logins, port_error
from dpio.planner.vm_changes import ReconfigureCluster, ReconfigVM
from dpio.planner.vm_observed import VMObservation
from dpio.planner.vm_power import PowerAction
from dpio.vsphere.errors import VSphereError
from dpio.vsphere.vm_adapter import VMAdapter
from dpio.vsphere.watch import Change, Watcher

#: vSphere's type name of the objects whose changes matter to assignments.
VIRTUAL_MACHINE = "VirtualMachine"


@dataclass
class VSphereVMs:
    """`VMsPort` over the adapter's `VMAdapter`: only the error translation is added here."""

    adapter: VMAdapter

    async def observe_vm(self, *, name: str = "", instance_uuid: str = "") -> VMObservation:
        try:
            return await self.adapter.observe_vm(name=name, instance_uuid=instance_uuid)
        except VSphereError as err:
            raise port_error(err) from err

    async def reconfigure(self, change: ReconfigVM) -> None:
        try:
            await self.adapter.reconfigure(change)
        except VSphereError as err:
            raise port_error(err) from err

    async def reconfigure_cluster(self, change: ReconfigureCluster) -> None:
        try:
            await self.adapter.reconfigure_cluster(change)
        except VSphereError as err:
            raise port_error(err) from err

    async def power(self, vm_moref: str, action: PowerAction) -> None:
        try:
            await self.adapter.power(vm_moref, action)
        except VSphereError as err:
            raise port_error(err) from err


@dataclass
class VMCenters:
    """`VCenterVMsPort`: the Secret of the assignment's policy, else the operator's default.

    Logins (and their refused-login memory) are shared with the host side through `Logins`,
    sessions through its `SessionCache`. Each vCenter gets one watcher whose VM changes go to
    `on_vm_change`.
    """

    logins: Logins
    default_secret: str
    #: Called (on a watcher thread) with the morefs of VMs that changed.
    on_vm_change: Callable[[frozenset[str]], None] = lambda _morefs: None
    adapters: dict[str, VMAdapter] = field(default_factory=dict)
    watchers: dict[str, Watcher] = field(default_factory=dict)

    async def vms_for(self, vcenter: VCenterRef | None) -> VSphereVMs:
        client = await self.logins.client(
            vcenter.secret_ref.name if vcenter else self.default_secret
        )
        adapter = self.adapters.get(client.server)
        if adapter is None or adapter.client is not client:  # first use, or new credentials
            adapter = self.adapters[client.server] = VMAdapter(client)
        watcher = self.watchers.get(client.server)
        if watcher is None or watcher.client is not client or not watcher.alive:
            old = self.watchers.pop(client.server, None)
            if old is not None:
                await asyncio.to_thread(old.stop)
            # Drift shows within seconds through WaitForUpdatesEx, not by polling (§3.2.10).
            watcher = Watcher(client, self._changed)
            watcher.start()
            self.watchers[client.server] = watcher
        return VSphereVMs(adapter)

    def stop(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        self.watchers.clear()

    def _changed(self, changes: Sequence[Change]) -> None:
        morefs = frozenset(c.moref for c in changes if c.kind == VIRTUAL_MACHINE)
        if morefs:
            self.on_vm_change(morefs)
