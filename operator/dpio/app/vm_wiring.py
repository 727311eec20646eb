"""The VM side of the adapters: `VMsPort` over `dpio.vsphere.vm.adapter.VMAdapter`, with
vSphere's typed errors turned into `PortError`s by `dpio.app.faults`. vCenter's VM change
notifications come from the host side's watch of the same vCenter: drift shows within seconds,
no polling (docs/design.md, "vCenter access").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from dpio.api.policy import VCenterRef
from dpio.app.faults import translate_faults
from dpio.app.logins import Logins
from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.observed import VMName, VMObservation
from dpio.planner.vm.power import PowerAction
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.vm.adapter import VMAdapter
from dpio.vsphere.watch import Change


@dataclass
class VSphereVMs:
    """`VMsPort` over the adapter's `VMAdapter`: only the error translation is added here."""

    adapter: VMAdapter

    @translate_faults
    async def observe_vm(
        self, *, name: str = "", instance_uuid: str = "", ahead: Sequence[VMName] = ()
    ) -> VMObservation:
        return await self.adapter.observe_vm(name=name, instance_uuid=instance_uuid, ahead=ahead)

    @translate_faults
    async def reconfigure(self, change: ReconfigVM) -> None:
        await self.adapter.reconfigure(change)

    @translate_faults
    async def reconfigure_cluster(self, change: ReconfigureCluster) -> None:
        await self.adapter.reconfigure_cluster(change)

    @translate_faults
    async def upgrade(self, change: UpgradeVM) -> None:
        await self.adapter.upgrade(change)

    @translate_faults
    async def power(self, vm_moref: str, action: PowerAction) -> None:
        await self.adapter.power(vm_moref, action)


@dataclass
class VMCenters:
    """`VCenterVMsPort`: the Secret of the assignment's policy, else the operator's default.

    Logins (and their refused-login memory) are shared with the host side through `Logins`,
    sessions through its `SessionCache`, and the change watch too: `watching` starts the host
    side's watcher of the vCenter (one per vCenter for both kinds), whose VM changes the host
    side hands to the runtime (`VCenters.on_vm_change`).
    """

    logins: Logins
    default_secret: str
    #: Makes sure the vCenter of this client is watched (`VCenters.watching`).
    watching: Callable[[VCenterClient], Awaitable[object]]
    adapters: dict[str, VMAdapter] = field(default_factory=dict)

    async def vms_for(self, vcenter: VCenterRef | None) -> VSphereVMs:
        client = await self.logins.client(
            vcenter.secret_ref.name if vcenter else self.default_secret
        )
        adapter = self.adapters.get(client.server)
        if adapter is None or adapter.client is not client:  # first use, or new credentials
            adapter = self.adapters[client.server] = VMAdapter(client)
        # Drift shows within seconds through WaitForUpdatesEx, not by polling (docs/design.md,
        # "vCenter access").
        await self.watching(client)
        return VSphereVMs(adapter)

    def changed(self, server: str, changes: Sequence[Change]) -> None:
        """The change watch of `server` reported `changes` (on its thread, before they trigger
        reconciles): answers read ahead that they make stale are dropped."""
        adapter = self.adapters.get(server)
        if adapter is not None:
            adapter.changed(changes)
