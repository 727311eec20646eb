"""Step 4 of a VMDeviceAssignment reconcile: make the plan's calls, in the plan's order, and
tell `kubectl describe` about each.

planner/vm/plan.py and docs/design.md, "Reconcile: VMDeviceAssignment": cluster overrides
(ReconfigureComputeResource_Task), then the power action that must come before the change, then
UpgradeVM_Task (alone in its pass), then one ReconfigVM_Task, then the power action after it.
The status recording what is about to happen has been written before this runs (intent.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dpio.planner.vm.changes import ReconfigVM
from dpio.planner.vm.plan import VMPlan
from dpio.planner.vm.power import PowerAction
from dpio.reconcile.ports import ObjectsPort, PortError, VMsPort

Body = Mapping[str, Any]

# Event reasons for the calls (kubectl describe), in vSphere's words.
_POWER_REASONS = {
    PowerAction.SHUTDOWN_GUEST: "ShutdownGuest",
    PowerAction.POWER_OFF: "PoweredOff",
    PowerAction.POWER_ON: "PoweredOn",
}


@dataclass(frozen=True)
class Applied:
    """What step 4 did: whether calls went out, and the error that stopped them."""

    made: bool = False
    error: PortError | None = None


async def apply(vms: VMsPort | None, objects: ObjectsPort, body: Body, plan: VMPlan) -> Applied:
    """Make the calls (none without a port: vCenter was not asked, so nothing is known)."""
    if vms is None or plan.empty:
        return Applied()
    try:
        await Applier(vms, objects, body).apply(plan)
    except PortError as err:
        return Applied(made=True, error=err)
    return Applied(made=True)


@dataclass(frozen=True)
class Applier:
    vms: VMsPort
    objects: ObjectsPort
    body: Body

    async def apply(self, plan: VMPlan) -> None:
        vm = plan.outcome.vm
        name = vm.name if vm is not None else "?"
        if plan.calls.cluster is not None:
            await self.vms.reconfigure_cluster(plan.calls.cluster)
            await self._event("ClusterOverridesSet", f"Set DRS/HA overrides of VM {name}")
        if plan.calls.power_before is not None and vm is not None:
            await self.vms.power(vm.moref, plan.calls.power_before)
            await self._event(_POWER_REASONS[plan.calls.power_before], plan.outcome.power_message)
        if plan.calls.upgrade is not None:
            up = plan.calls.upgrade
            await self.vms.upgrade(up)
            message = (
                f"Upgraded VM {name} from {up.previous or 'an unknown version'} to {up.version} "
                "for Dynamic DirectPath (upgradeHardwareVersion); not undone on delete"
            )
            await self._event("HardwareUpgraded", message)
        if plan.calls.reconfigure is not None:
            await self.vms.reconfigure(plan.calls.reconfigure)
            await self._event("Reconfigured", _describe(name, plan.calls.reconfigure))
        if plan.calls.power_after is not None and vm is not None:
            await self.vms.power(vm.moref, plan.calls.power_after)
            await self._event(_POWER_REASONS[plan.calls.power_after], f"VM {name} powered back on")

    async def _event(self, reason: str, message: str) -> None:
        await self.objects.event(self.body, "Normal", reason, message)


def _describe(name: str, change: ReconfigVM) -> str:
    parts = []
    if change.adds:
        parts.append(f"added {len(change.adds)} passthrough device(s)")
    if change.removes:
        parts.append(f"removed {len(change.removes)} passthrough device(s)")
    if change.nic_edits:
        parts.append(f"enabled DirectPath Gen2 on {', '.join(n.label for n in change.nic_edits)}")
    if change.memory_reservation_locked_to_max is not None:
        parts.append(
            "reserved all guest memory"
            if change.memory_reservation_locked_to_max
            else "restored the memory reservation"
        )
    settings = (
        change.cpu_hot_add_enabled,
        change.memory_hot_add_enabled,
        change.nested_hv_enabled,
    )
    if any(s is not None for s in settings):
        parts.append("changed hot add / nested HV settings")
    if change.extra_config:
        shown = ", ".join(f"{k}={v or '(removed)'}" for k, v in change.extra_config)
        parts.append(f"set {shown}")
    return f"Reconfigured VM {name}: {'; '.join(parts) or 'no device change'}"
