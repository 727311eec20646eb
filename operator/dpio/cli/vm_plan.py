"""`dpio plan` for a VMDeviceAssignment: the operator's `plan_assignment` result, for review.

Pure: a `VMPlan` in, text or JSON out. The calls are named as the operator makes them
(docs/design.md, "Reconcile: VMDeviceAssignment"): one `ReconfigVM_Task` carrying every device
change, the cluster's DRS/HA overrides through `ReconfigureComputeResource_Task`, the power steps
around them; and what holds the change back (power state, unavailable devices, feature
conflicts, Forbidden, Stalled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dpio.planner.conditions import Problem
from dpio.planner.observed import format_pci_id
from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM
from dpio.planner.vm.conflicts import FeatureConflict
from dpio.planner.vm.devices import DeviceAdd
from dpio.planner.vm.observed import DynamicBacking
from dpio.planner.vm.plan import VMPlan

_SETTINGS = (
    ("memory_reservation_locked_to_max", "memoryReservationLockedToMax"),
    ("cpu_hot_add_enabled", "cpuHotAddEnabled"),
    ("memory_hot_add_enabled", "memoryHotAddEnabled"),
    ("nested_hv_enabled", "nestedHVEnabled"),
)


@dataclass(frozen=True, slots=True)
class AssignmentReport:
    namespace: str
    name: str
    vcenter: str
    plan: VMPlan
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """The operator would call vSphere (reconfigure, cluster overrides or power), or will as
        soon as the VM is powered off (PowerOffRequired): either way the VM changes."""
        held = self.plan.outcome.held is not None  # spec.suspend: nothing changes
        return not self.plan.empty or (self.plan.outcome.change_pending and not held)


def backing_text(add: DeviceAdd) -> str:
    backing = add.backing
    if isinstance(backing, DynamicBacking):
        pairs = ",".join(
            f"{format_pci_id(v)}:{format_pci_id(d)}" for v, d in backing.allowed_devices
        )
        label = f" label {backing.custom_label}" if backing.custom_label else ""
        return f"Dynamic DirectPath {pairs}{label}"
    return f"PCI {backing.id} (deviceId {backing.device_id})"


def reconfigure_lines(change: ReconfigVM) -> list[str]:
    lines = [f"      - remove key {r.key} ({r.label})" for r in change.removes]
    lines += [f"      + add {a.name}: {backing_text(a)}" for a in change.adds]
    lines += [
        f"      ~ {wire}: {str(getattr(change, attr)).lower()}"
        for attr, wire in _SETTINGS
        if getattr(change, attr) is not None
    ]
    lines += [
        f"      ~ {e.label}: uptCompatibilityEnabled true (DirectPath Gen2)"
        for e in change.nic_edits
    ]
    lines += [
        f"      ~ extraConfig {key} = {value!r}" + (" (removed)" if not value else "")
        for key, value in change.extra_config
    ]
    return lines


def cluster_text(change: ReconfigureCluster) -> str:
    parts = []
    if change.drs is not None:
        drs = change.drs
        parts.append(f"DRS override {drs.operation} (enabled={drs.enabled}, {drs.behavior})")
    if change.das is not None:
        parts.append(
            f"HA override {change.das.operation} (restartPriority {change.das.restart_priority})"
        )
    return "; ".join(parts)


def _conflict_note(conflict: FeatureConflict, blocking: set[str]) -> str:
    if conflict.feature in blocking:
        return " (blocks the change)"
    # Resolve turns these off in the same change (docs/design.md, "VM side: feature conflicts").
    return " (resolved by the change)" if conflict.resolvable else ""


def render_text(report: AssignmentReport) -> str:
    plan = report.plan
    lines = [f"VMDeviceAssignment/{report.namespace}/{report.name} (vCenter from {report.vcenter})"]
    lines += [f"  note: {n}" for n in report.notes]
    for label, problem in (
        ("Forbidden", plan.outcome.forbidden),
        ("Stalled", plan.outcome.stalled),
        ("not ready", plan.outcome.not_ready),
    ):
        if problem is not None:
            lines.append(f"  ! {label} {problem.reason}: {problem.message}")
    vm = plan.outcome.vm
    if vm is not None:
        lines.append(f"  VM {vm.name} ({vm.moref}) on {vm.host}, {vm.power_state}")
        lines.append(f"    {_vm_line(plan)}")
    if plan.calls.power_before is not None:
        lines.append(f"  > {plan.calls.power_before} first")
        if plan.calls.reconfigure is None:  # the planner reconfigures once vCenter reports it off
            lines.append("      then, with the VM powered off, the device change")
    if plan.calls.upgrade is not None:
        up = plan.calls.upgrade
        lines.append(
            f"  ~ UpgradeVM_Task {up.previous or '?'} -> {up.version} (not undone on "
            "delete); the device change follows in the next pass"
        )
    if plan.calls.reconfigure is not None:
        lines.append(f"  ~ ReconfigVM_Task ({plan.calls.reconfigure.moref})")
        lines += reconfigure_lines(plan.calls.reconfigure)
    if plan.calls.cluster is not None:
        lines.append(f"  ~ ReconfigureComputeResource_Task: {cluster_text(plan.calls.cluster)}")
    if plan.calls.power_after is not None:
        lines.append(f"  > {plan.calls.power_after} afterwards")
    if plan.outcome.change_pending:
        lines.append(
            f"  ! PowerOffRequired: {plan.outcome.power_message or 'the VM is powered on'}"
        )
    lines += [
        f"  ! unavailable {c.name} {c.problem.reason}: {c.problem.message}"
        for c in plan.outcome.unavailable
    ]
    blocking = {c.feature for c in plan.outcome.blocked_by}
    lines += [
        f"  ! conflict {c.feature}: {c.message}{_conflict_note(c, blocking)}"
        for c in plan.outcome.conflicts
    ]
    if vm is not None and plan.empty:
        lines.append("  = no change")
    return "\n".join(lines) + "\n"


def _vm_line(plan: VMPlan) -> str:
    """Firmware, hardware version and what its devices map: why power-on works or not."""
    vm = plan.outcome.vm
    assert vm is not None
    mmio = plan.outcome.mmio
    needs = (
        f", devices map {mmio.total_gb} GB"
        + (" (needs EFI and 64-bit MMIO)" if mmio.needs_64bit else "")
        if mmio is not None
        else ""
    )
    firmware = vm.firmware or "unknown"
    window = f", 64bitMMIOSizeGB {vm.mmio_size_gb}" if vm.mmio_size_gb else ""
    return (
        f"firmware {firmware}, {vm.hardware_version or 'hardware version unknown'}{window}{needs}"
    )


def _problem(p: Problem | None) -> dict[str, str] | None:
    return {"reason": p.reason, "message": p.message} if p is not None else None


def _vm_dict(plan: VMPlan) -> dict[str, Any] | None:
    vm = plan.outcome.vm
    if vm is None:
        return None
    return {
        "moref": vm.moref,
        "name": vm.name,
        "host": vm.host,
        "powerState": vm.power_state,
        "firmware": vm.firmware,
        "hardwareVersion": vm.hardware_version,
    }


def _reconfigure_dict(change: ReconfigVM | None) -> dict[str, Any] | None:
    if change is None:
        return None
    settings = {wire: getattr(change, attr) for attr, wire in _SETTINGS}
    return {
        "removes": [{"key": r.key, "label": r.label} for r in change.removes],
        "adds": [{"name": a.name, "backing": backing_text(a)} for a in change.adds],
        "settings": {wire: value for wire, value in settings.items() if value is not None},
        "gen2Adapters": [e.label for e in change.nic_edits],
        "extraConfig": dict(change.extra_config),
    }


def to_dict(report: AssignmentReport) -> dict[str, Any]:
    plan = report.plan
    blocking = {c.feature for c in plan.outcome.blocked_by}
    return {
        "kind": "VMDeviceAssignment",
        "namespace": report.namespace,
        "name": report.name,
        "vcenter": report.vcenter,
        "changed": report.changed,
        "vm": _vm_dict(plan),
        "upgradeVM": {"from": plan.calls.upgrade.previous, "to": plan.calls.upgrade.version}
        if plan.calls.upgrade
        else None,
        "mmioSizeGB": plan.outcome.mmio.total_gb if plan.outcome.mmio is not None else None,
        "reconfigVM": _reconfigure_dict(plan.calls.reconfigure),
        "reconfigureCluster": cluster_text(plan.calls.cluster) if plan.calls.cluster else None,
        "powerBefore": str(plan.calls.power_before) if plan.calls.power_before else None,
        "powerAfter": str(plan.calls.power_after) if plan.calls.power_after else None,
        "powerOffRequired": plan.outcome.change_pending,
        "forbidden": _problem(plan.outcome.forbidden),
        "stalled": _problem(plan.outcome.stalled),
        "notReady": _problem(plan.outcome.not_ready),
        "unavailable": [
            {"name": c.name, "reason": c.problem.reason, "message": c.problem.message}
            for c in plan.outcome.unavailable
        ],
        "featureConflicts": [
            {"feature": c.feature, "message": c.message, "blocks": c.feature in blocking}
            for c in plan.outcome.conflicts
        ],
        "notes": list(report.notes),
    }
