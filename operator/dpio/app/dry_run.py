"""Dry-run's second lock: the vCenter ports the reconcilers get refuse every write.

In dry-run the planner already holds every call back (dpio.planner.suspension), so the
reconcilers have none to make. Should one slip past it, these ports fail it (a PortError with
reason DryRun, not retryable: the object turns Stalled and says so) instead of letting it reach
vCenter. Reads pass through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dpio.api.conditions import DRY_RUN
from dpio.api.policy import HostPassthroughPolicySpec, VCenterRef
from dpio.planner import ObservedInventory, RebootAction, UpdatePassthruConfig
from dpio.planner.host.steps import HostTask
from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.observed import VMName, VMObservation
from dpio.planner.vm.power import PowerAction
from dpio.reconcile.ports import HostsPort, PortError, VCenterPort, VCenterVMsPort, VMsPort

_log = logging.getLogger(__name__)


def _refused(call: str) -> PortError:
    _log.error("Refused a vCenter write in dry-run", extra={"call": call})
    message = f"Dry-run: {call} refused; the operator writes nothing to vCenter"
    return PortError(DRY_RUN, message, retryable=False)


@dataclass(frozen=True)
class ReadOnlyHosts:
    inner: HostsPort

    @property
    def insecure(self) -> bool:
        return self.inner.insecure

    async def read_inventory(self) -> ObservedInventory:
        return await self.inner.read_inventory()

    async def update_passthru_config(self, update: UpdatePassthruConfig) -> None:
        raise _refused(f"UpdatePassthruConfig on {update.host}")

    async def start(self, action: RebootAction) -> None:
        raise _refused(f"{type(action).__name__} on {action.host}")

    async def recent_tasks(
        self, host_morefs: Collection[str]
    ) -> Mapping[str, tuple[HostTask, ...]]:
        return await self.inner.recent_tasks(host_morefs)


@dataclass(frozen=True)
class ReadOnlyVCenter:
    inner: VCenterPort

    async def hosts_for(self, spec: HostPassthroughPolicySpec) -> HostsPort:
        return ReadOnlyHosts(await self.inner.hosts_for(spec))


@dataclass(frozen=True)
class ReadOnlyVMs:
    inner: VMsPort

    async def observe_vm(
        self, *, name: str = "", instance_uuid: str = "", ahead: Sequence[VMName] = ()
    ) -> VMObservation:
        return await self.inner.observe_vm(name=name, instance_uuid=instance_uuid, ahead=ahead)

    async def reconfigure(self, change: ReconfigVM) -> None:
        raise _refused(f"ReconfigVM_Task on {change.moref}")

    async def reconfigure_cluster(self, change: ReconfigureCluster) -> None:
        raise _refused(f"ReconfigureComputeResource_Task on {change.cluster_moref}")

    async def upgrade(self, change: UpgradeVM) -> None:
        raise _refused(f"UpgradeVM_Task on {change.moref}")

    async def power(self, vm_moref: str, action: PowerAction) -> None:
        raise _refused(f"{action.value} on {vm_moref}")


@dataclass(frozen=True)
class ReadOnlyVMCenters:
    inner: VCenterVMsPort

    async def vms_for(self, vcenter: VCenterRef | None) -> VMsPort:
        return ReadOnlyVMs(await self.inner.vms_for(vcenter))
