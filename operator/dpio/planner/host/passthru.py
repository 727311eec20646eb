"""The passthrough rules for one host's devices, applied to a `Draft` (docs/design.md,
"Host side: passthrough rules").

`dpio.planner.host.host_plan.plan_host` builds a `Draft` per host and runs these rules over it
(wanted states, refusals, exclusive, dependent devices); `passthru_changes` then gives the
`PassthruChange`s of the ONE `UpdatePassthruConfig` call and `project_changes` the state they lead
to. Each rule carries its vSphere source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from dpio.api.conditions import DEVICE_IN_USE, DEVICE_NOT_CAPABLE, POLICY_CONFLICT
from dpio.api.policy import DeviceState
from dpio.planner.conditions import Problem
from dpio.planner.host.in_use import (
    DeviceClaim,
    claim_message,
    claimed_addresses,
    dynamic_keep,
    keep_message,
)
from dpio.planner.host.rules import PolicyRules, Rivals
from dpio.planner.observed import HostPciDevice, HostPciPassthruInfo, ObservedHost

# vSphere API reference, HostPciPassthruInfo.hardwareLabel: "Since vSphere API Release 7.0.2.0".
HARDWARE_LABEL_SINCE = (7, 0, 2)


@dataclass(frozen=True, slots=True)
class PassthruChange:
    """One `HostPciPassthruConfig` (vSphere API reference, HostPciPassthruSystem)."""

    id: str
    passthru_enabled: bool
    apply_now: bool  # HostPciPassthruConfig.applyNow (7.0); False before 7.0
    hardware_label: str | None = None  # None: leave the label alone


@dataclass(slots=True)
class Draft:
    """Per-host working state while the rules run; never leaves the planner."""

    host: ObservedHost
    info: Mapping[str, HostPciPassthruInfo]
    devices: Mapping[str, HostPciDevice]
    rules: PolicyRules
    rivals: Rivals
    wanted: dict[str, bool] = field(default_factory=dict)  # id -> passthruEnabled wanted
    labels: dict[str, str] = field(default_factory=dict)
    refused: dict[str, tuple[DeviceState, str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    claims: tuple[DeviceClaim, ...] = ()  # assignments' devices not attached yet, this host
    kept: dict[str, str] = field(default_factory=dict)  # id -> who needs it (in_use)


def want(draft: Draft, pci_id: str, enabled: bool, label: str | None) -> None:
    winner = draft.rivals.older_opposite(draft.host, draft.devices.get(pci_id), pci_id, enabled)
    if winner is not None:
        verb = "enabled" if not enabled else "disabled"
        draft.notes[pci_id] = f"Policy {winner} (older) wants it {verb}; left as it is"
        draft.problems.append(
            Problem(POLICY_CONFLICT, f"{draft.host.name} {pci_id}: policy {winner} wins")
        )
        return
    if enabled and not _may_enable(draft, pci_id):
        return
    draft.wanted[pci_id] = enabled
    if label is not None:
        draft.labels[pci_id] = label


def _may_enable(draft: Draft, pci_id: str) -> bool:
    info = draft.info.get(pci_id)
    name = draft.host.name
    if info is None or not info.passthru_capable:
        # HostPciPassthruInfo.passthruCapable false: vSphere refuses UpdatePassthruConfig for it.
        message = "Device is not passthrough capable (passthruCapable is false)"
        draft.refused[pci_id] = (DeviceState.NOT_CAPABLE, message)
        draft.problems.append(Problem(DEVICE_NOT_CAPABLE, f"{name} {pci_id}: {message}"))
        return False
    reason = draft.host.in_use_by_host.get(pci_id)
    if reason is not None and not draft.rules.allow_devices_in_use:
        # The vSphere Client warns before taking a device ESXi uses (vmkernel NIC, boot HBA).
        message = f"Used by ESXi ({reason}); set allowDevicesInUse to take it anyway"
        draft.refused[pci_id] = (DeviceState.IN_USE_BY_HOST, message)
        draft.problems.append(Problem(DEVICE_IN_USE, f"{name} {pci_id}: {message}"))
        return False
    return True


def apply_exclusive(draft: Draft, selected: set[str]) -> list[str]:
    """`exclusive: true`: disable devices no selector matches, never one attached to a VM."""
    touched = []
    for pci_id, info in sorted(draft.info.items()):
        if pci_id in selected or not (info.passthru_enabled or info.passthru_active):
            continue
        touched.append(pci_id)
        vms = draft.host.attached_to_vms.get(pci_id, ())
        if vms:
            draft.notes[pci_id] = f"Attached to VM {', '.join(vms)}; exclusive leaves it enabled"
            continue
        claimed = claimed_addresses(draft.claims).get(pci_id)
        if claimed is not None:
            draft.kept[pci_id] = claimed
            draft.notes[pci_id] = claim_message(claimed)
            continue
        want(draft, pci_id, False, None)
    return touched


def expand_groups(draft: Draft, groups: Mapping[str, frozenset[str]]) -> None:
    """Devices sharing a dependentDevice change together (HostPciPassthruInfo.dependentDevice)."""
    for pci_id, enabled in sorted(draft.wanted.items()):
        members = groups.get(pci_id, frozenset({pci_id})) - {pci_id}
        if enabled:
            _enable_group(draft, pci_id, members)
        elif any(draft.wanted.get(m) for m in members) or _any_attached(draft, members):
            draft.wanted.pop(pci_id)
            draft.notes[pci_id] = "Kept: a dependent device is selected or attached to a VM"
        else:
            draft.wanted.update({m: False for m in members if m in draft.info})


def _enable_group(draft: Draft, pci_id: str, members: frozenset[str]) -> None:
    for member in sorted(members):
        reason = draft.host.in_use_by_host.get(member)
        if reason is not None and not draft.rules.allow_devices_in_use:
            message = f"Dependent device {member} is used by ESXi ({reason})"
            draft.wanted.pop(pci_id, None)
            draft.refused[pci_id] = (DeviceState.IN_USE_BY_HOST, message)
            draft.problems.append(Problem(DEVICE_IN_USE, f"{draft.host.name} {pci_id}: {message}"))
            return
    for member in members:
        info = draft.info.get(member)
        if info is not None and info.passthru_capable:
            draft.wanted[member] = True


def _any_attached(draft: Draft, members: frozenset[str]) -> bool:
    return any(draft.host.attached_to_vms.get(m) or m in draft.kept for m in members)


def keep_in_use(draft: Draft, groups: Mapping[str, frozenset[str]]) -> None:
    """Devices about to be disabled that a VM or an assignment may still need stay enabled,
    with their dependent devices (`dpio.planner.host.in_use`): ones assignments claim, and
    as many as not-running Dynamic DirectPath devices need."""
    claimed = claimed_addresses(draft.claims)
    for pci_id, assignment in claimed.items():
        _keep(draft, groups, pci_id, assignment, claim_message(assignment))
    enabled = {i for i, info in draft.info.items() if info.passthru_enabled}
    leaving = {i for i, on in draft.wanted.items() if not on and i in enabled}
    staying = {i for i, on in draft.wanted.items() if on} | (enabled - set(draft.wanted))
    staying -= set(claimed)  # those serve their assignment, not a dynamic device
    for pci_id, who in dynamic_keep(draft.host, staying, leaving, draft.claims).items():
        _keep(draft, groups, pci_id, who, keep_message(who))


def _keep(
    draft: Draft, groups: Mapping[str, frozenset[str]], pci_id: str, who: str, message: str
) -> None:
    for member in groups.get(pci_id, frozenset({pci_id})):
        if draft.wanted.get(member) is False:
            draft.wanted.pop(member)
            draft.kept[member] = who
            draft.notes[member] = message


def passthru_changes(draft: Draft, apply_now: bool) -> tuple[PassthruChange, ...]:
    label_ok = draft.host.version_at_least(*HARDWARE_LABEL_SINCE)
    changes = []
    for pci_id, enabled in sorted(draft.wanted.items()):
        current = draft.info[pci_id]
        label = draft.labels.get(pci_id) if enabled else None
        if label is not None and not label_ok:
            runs = draft.host.version or "an unknown version"
            draft.notes[pci_id] = f"hardwareLabel needs vSphere 7.0.2 or later (host runs {runs})"
            label = None
        relabel = label is not None and label != current.hardware_label
        if current.passthru_enabled != enabled or relabel:
            changes.append(PassthruChange(pci_id, enabled, apply_now, label))
    return tuple(changes)


def project_changes(
    info: Mapping[str, HostPciPassthruInfo], changes: tuple[PassthruChange, ...]
) -> dict[str, HostPciPassthruInfo]:
    """The passthrough info as it will read once the changes are in (applyNow: active at once)."""
    projected = dict(info)
    for change in changes:
        before = projected[change.id]
        projected[change.id] = replace(
            before,
            passthru_enabled=change.passthru_enabled,
            passthru_active=change.passthru_enabled if change.apply_now else before.passthru_active,
            hardware_label=change.hardware_label or before.hardware_label,
        )
    return projected
