"""Making a VM plan's calls, in the plan's order, and telling `kubectl describe` about them.

vm_plan.py and docs/design.md, "Reconcile: VMDeviceAssignment": cluster overrides
(ReconfigureComputeResource_Task), then the power action that must come before the change, then
UpgradeVM_Task (alone in its pass), then one ReconfigVM_Task, then the power action after it.
The status recording what is about to happen has been written before this runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import (
    DEVICES_UNAVAILABLE,
    FEATURE_CONFLICT,
    FORBIDDEN,
    POWER_OFF_REQUIRED,
    READY,
    STALLED,
    ConditionStatus,
)
from dpio.planner.conditions import find
from dpio.planner.vm.changes import ReconfigVM
from dpio.planner.vm.plan import VMPlan
from dpio.planner.vm.power import PowerAction
from dpio.reconcile.ports import ObjectsPort, VMsPort

Body = Mapping[str, Any]

# Event reasons for the calls (kubectl describe), in vSphere's words.
_POWER_REASONS = {
    PowerAction.SHUTDOWN_GUEST: "ShutdownGuest",
    PowerAction.POWER_OFF: "PoweredOff",
    PowerAction.POWER_ON: "PoweredOn",
}
# Conditions whose flips are worth an Event; True is a Warning for all but Ready.
_ANNOUNCED = (READY, STALLED, FORBIDDEN, DEVICES_UNAVAILABLE, FEATURE_CONFLICT, POWER_OFF_REQUIRED)


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


def merge_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """`after` as a JSON merge patch over `before` (RFC 7386): a field `after` no longer has is
    sent as null, or the API server would keep the old value (e.g. `power` once the VM runs)."""
    patch = dict(after)
    for key, old in before.items():
        if key not in after:
            patch[key] = None
        elif isinstance(old, Mapping) and isinstance(after[key], Mapping):
            patch[key] = merge_patch(old, after[key])
    return patch


async def transition_events(
    objects: ObjectsPort,
    body: Body,
    previous: VMDeviceAssignmentStatus,
    status: VMDeviceAssignmentStatus,
) -> None:
    """One Event per condition flip, not per reconcile: `kubectl describe` tells the story."""
    for type_ in _ANNOUNCED:
        before, after = find(previous.conditions, type_), find(status.conditions, type_)
        if after is None or after.status is ConditionStatus.UNKNOWN:
            continue
        if before is None and after.status is ConditionStatus.FALSE and type_ != READY:
            continue  # a problem that never was is not news
        if before is not None and before.status == after.status:
            continue
        bad = (after.status is ConditionStatus.TRUE) != (type_ == READY)
        await objects.event(body, "Warning" if bad else "Normal", after.reason, after.message)
