"""VM features that DirectPath I/O rules out, and what `Resolve` changes (docs/design.md,
"VM side: feature conflicts").

A VM with a passthrough device loses vMotion, snapshots, suspend, hot add, Fault Tolerance, HA
and record/replay (vSphere Virtual Machine Administration, "Add a PCI Device").
`conflictPolicy: Block` changes nothing while any conflict exists. `Resolve` turns off hot add and
nested HV in the same ReconfigVM, and sets per-VM cluster overrides (DRS manual, HA restart
priority disabled); Fault Tolerance and snapshots hold user data or protection, so they still
block.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpio.api.assignment import ConflictPolicy, FeatureConflictStatus
from dpio.api.conditions import (
    DRS_AUTOMATION,
    FAULT_TOLERANCE,
    HIGH_AVAILABILITY,
    HOT_ADD,
    NESTED_HV,
    SNAPSHOTS,
)
from dpio.planner.vm.observed import (
    FULLY_AUTOMATED,
    MANUAL,
    RESTART_PRIORITY_DISABLED,
    ObservedCluster,
    ObservedVM,
)

# What a VM loses with a PCI passthrough device (status.unavailableFeatures); Gen2 keeps them.
UNAVAILABLE_FEATURES = (
    "vMotion",
    "Snapshots",
    "HotPlug",
    "FaultTolerance",
    "HighAvailability",
    "RecordReplay",
    "Suspend",
)
RESOLVABLE = frozenset({HOT_ADD, NESTED_HV, HIGH_AVAILABILITY, DRS_AUTOMATION})


@dataclass(frozen=True, slots=True)
class FeatureConflict:
    feature: str  # a FeatureConflict reason
    message: str

    @property
    def resolvable(self) -> bool:
        return self.feature in RESOLVABLE

    def status(self) -> FeatureConflictStatus:
        return FeatureConflictStatus(
            feature=self.feature, message=self.message, resolvable=self.resolvable
        )


def drs_fully_automated(cluster: ObservedCluster) -> bool:
    """DRS would migrate this VM on its own: cluster DRS on, and the VM's override (if any) or
    the cluster default is fullyAutomated (ClusterDrsVmConfigInfo, vSphere API reference)."""
    if not cluster.drs_enabled or cluster.vm_drs_enabled is False:
        return False
    behavior = cluster.vm_drs_behavior or cluster.drs_automation
    return behavior == FULLY_AUTOMATED


def ha_restarts(cluster: ObservedCluster) -> bool:
    """HA would restart this VM elsewhere: HA on and its restart priority not `disabled`."""
    return cluster.ha_enabled and cluster.vm_das_restart_priority != RESTART_PRIORITY_DISABLED


def find_conflicts(vm: ObservedVM) -> tuple[FeatureConflict, ...]:
    """Every feature in use that passthrough rules out, in a fixed order."""
    found = []
    if vm.ft_configured:  # config.ftInfo set: FT is refused with DirectPath I/O
        found.append(FeatureConflict(FAULT_TOLERANCE, "VM has Fault Tolerance configured"))
    if vm.snapshot_count > 0:  # a VM with a passthrough device can't take or keep snapshots
        count = vm.snapshot_count
        message = f"VM has {count} snapshot{'s' if count != 1 else ''}"
        found.append(FeatureConflict(SNAPSHOTS, message))
    hot = [
        what
        for what, on in (("CPU", vm.cpu_hot_add_enabled), ("memory", vm.memory_hot_add_enabled))
        if on
    ]
    if hot:
        found.append(FeatureConflict(HOT_ADD, f"VM has {' and '.join(hot)} hot add enabled"))
    if vm.nested_hv_enabled:  # KB 437651: nested HV is refused with a passthrough device
        found.append(FeatureConflict(NESTED_HV, "VM has nested hardware virtualization enabled"))
    cluster = vm.cluster
    if cluster is not None and ha_restarts(cluster):
        message = f"HA in cluster {cluster.name} would restart the VM on another host"
        found.append(FeatureConflict(HIGH_AVAILABILITY, message))
    if cluster is not None and drs_fully_automated(cluster):
        message = f"DRS in cluster {cluster.name} may migrate the VM (fully automated)"
        found.append(FeatureConflict(DRS_AUTOMATION, message))
    return tuple(found)


def blocking(
    conflicts: tuple[FeatureConflict, ...], policy: ConflictPolicy
) -> tuple[FeatureConflict, ...]:
    """The conflicts that stop every change under `policy`."""
    if policy is ConflictPolicy.BLOCK:
        return conflicts
    return tuple(c for c in conflicts if not c.resolvable)


@dataclass(frozen=True, slots=True)
class DrsOverrideChange:
    """`ClusterDrsVmConfigSpec` for this VM (operation add/edit/remove)."""

    operation: str
    enabled: bool | None = None
    behavior: str | None = None


@dataclass(frozen=True, slots=True)
class DasOverrideChange:
    """`ClusterDasVmConfigSpec` for this VM; `restart_priority` None with operation remove."""

    operation: str
    restart_priority: str | None = None


def override_operation(existed: bool) -> str:
    return "edit" if existed else "add"


def resolve_drs(cluster: ObservedCluster) -> DrsOverrideChange:
    """DRS override `manual` for this VM: DRS then only recommends (vSphere API reference)."""
    existed = cluster.vm_drs_behavior is not None or cluster.vm_drs_enabled is not None
    return DrsOverrideChange(override_operation(existed), enabled=True, behavior=MANUAL)


def resolve_das(cluster: ObservedCluster) -> DasOverrideChange:
    """HA override `restartPriority: disabled` (ClusterDasVmSettings, vSphere API reference)."""
    existed = cluster.vm_das_restart_priority is not None
    return DasOverrideChange(override_operation(existed), RESTART_PRIORITY_DISABLED)
