"""The passthrough plan for one host: desired state of each device and the changes that get there.

Rules (DESIGN.md §3.1), each with its vSphere source next to the code that applies it. The output
is a `HostPlan`: the `PassthruChange`s for ONE `UpdatePassthruConfig` call (empty when the host is
already right, so no call is made), and one `DevicePlan` per device the policy has an opinion on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from dpio.api.conditions import (
    DEVICE_IN_USE,
    DEVICE_NOT_CAPABLE,
    DEVICE_NOT_FOUND,
    PASSTHROUGH_UNSUPPORTED,
    POLICY_CONFLICT,
)
from dpio.api.policy import DeviceState
from dpio.planner.conditions import Problem
from dpio.planner.dependents import dependent_groups
from dpio.planner.observed import HostPciDevice, HostPciPassthruInfo, ObservedHost
from dpio.planner.rules import PolicyRules, Rivals
from dpio.planner.selection import match_devices

# vSphere API reference, HostPciPassthruInfo.hardwareLabel: "Since vSphere API Release 7.0.2.0".
HARDWARE_LABEL_SINCE = (7, 0, 2)

UNSUPPORTED_MESSAGE = (
    "Host does not support passthrough configuration: no PCI device is passthrough capable. "
    "Enable the IOMMU in the BIOS (Intel VT-d or AMD-Vi) and reboot the host"
)


@dataclass(frozen=True, slots=True)
class PassthruChange:
    """One `HostPciPassthruConfig` (vSphere API reference, HostPciPassthruSystem)."""

    id: str
    passthru_enabled: bool
    apply_now: bool  # HostPciPassthruConfig.applyNow (7.0); False before 7.0
    hardware_label: str | None = None  # None: leave the label alone


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """What the policy sees and wants for one device on one host; one status row."""

    id: str
    state: DeviceState
    device: HostPciDevice | None = None
    info: HostPciPassthruInfo | None = None  # projected: as it will be once the changes apply
    dependent_devices: tuple[str, ...] = ()
    attached_to: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class HostPlan:
    host: ObservedHost
    passthrough_supported: bool
    changes: tuple[PassthruChange, ...] = ()
    devices: tuple[DevicePlan, ...] = ()
    reboot_required: bool = False  # some device has enabled != active after the changes
    problems: tuple[Problem, ...] = ()
    message: str = ""


@dataclass(slots=True)
class _Draft:
    """Per-host working state while the rules run; never leaves this module."""

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


def device_state(info: HostPciPassthruInfo) -> DeviceState:
    """Broadcom KB 309986: enabled != active means a reboot is pending, in either direction."""
    if info.passthru_enabled:
        return DeviceState.ACTIVE if info.passthru_active else DeviceState.PENDING_REBOOT
    return DeviceState.PENDING_DISABLE_REBOOT if info.passthru_active else DeviceState.DISABLED


def plan_host(host: ObservedHost, rules: PolicyRules, rivals: Rivals) -> HostPlan:
    info = host.passthru_info()
    matches, absent = match_devices(rules.matchers, host)
    listed = [m.device.id for m in matches]
    not_found = tuple(_not_found(host, address) for address in absent)
    if not any(i.passthru_capable for i in info.values()):
        return _unsupported(host, listed, not_found)
    draft = _Draft(host, info, host.pci_device(), rules, rivals)
    for match in matches:
        _want(draft, match.device.id, True, match.matcher.hardware_label)
    if rules.exclusive:
        listed += _exclusive(draft, set(listed))
    groups = dependent_groups(info.values())
    _expand_groups(draft, groups)
    changes = _changes(draft, rules.apply_now_auto and host.device_rebind_without_reboot_supported)
    if not host.connected:
        changes = ()  # vCenter can't reach the host: report what it last knew, change nothing
    projected = _project(info, changes)
    rows = tuple(_row(draft, projected, groups, i) for i in sorted(set(listed))) + not_found
    problems = draft.problems + [Problem(DEVICE_NOT_FOUND, r.message) for r in not_found]
    return HostPlan(
        host=host,
        passthrough_supported=True,
        changes=changes,
        devices=rows,
        reboot_required=any(i.passthru_enabled != i.passthru_active for i in projected.values()),
        problems=tuple(problems),
    )


def _not_found(host: ObservedHost, address: str) -> DevicePlan:
    message = f"No PCI device {address} on host {host.name}"
    return DevicePlan(id=address, state=DeviceState.NOT_FOUND, message=message)


def _unsupported(
    host: ObservedHost, listed: list[str], not_found: tuple[DevicePlan, ...]
) -> HostPlan:
    devices = host.pci_device()
    rows = tuple(
        DevicePlan(id=i, state=DeviceState.NOT_CAPABLE, device=devices.get(i), message="")
        for i in listed
    )
    problem = Problem(PASSTHROUGH_UNSUPPORTED, f"Host {host.name}: {UNSUPPORTED_MESSAGE}")
    return HostPlan(
        host=host,
        passthrough_supported=False,
        devices=rows + not_found,
        problems=(problem,),
        message=UNSUPPORTED_MESSAGE,
    )


def _want(draft: _Draft, pci_id: str, enabled: bool, label: str | None) -> None:
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


def _may_enable(draft: _Draft, pci_id: str) -> bool:
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


def _exclusive(draft: _Draft, selected: set[str]) -> list[str]:
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
        _want(draft, pci_id, False, None)
    return touched


def _expand_groups(draft: _Draft, groups: Mapping[str, frozenset[str]]) -> None:
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


def _enable_group(draft: _Draft, pci_id: str, members: frozenset[str]) -> None:
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


def _any_attached(draft: _Draft, members: frozenset[str]) -> bool:
    return any(draft.host.attached_to_vms.get(m) for m in members)


def _changes(draft: _Draft, apply_now: bool) -> tuple[PassthruChange, ...]:
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


def _project(
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


def _row(
    draft: _Draft,
    projected: Mapping[str, HostPciPassthruInfo],
    groups: Mapping[str, frozenset[str]],
    pci_id: str,
) -> DevicePlan:
    info = projected.get(pci_id)
    refused = draft.refused.get(pci_id)
    if refused is not None:
        state, message = refused
    elif info is None or not info.passthru_capable:
        state, message = DeviceState.NOT_CAPABLE, "Device is not passthrough capable"
    else:
        state, message = device_state(info), draft.notes.get(pci_id, "")
    return DevicePlan(
        id=pci_id,
        state=state,
        device=draft.devices.get(pci_id),
        info=info,
        dependent_devices=tuple(sorted(groups.get(pci_id, frozenset()) - {pci_id})),
        attached_to=draft.host.attached_to_vms.get(pci_id, ()),
        message=message,
    )
