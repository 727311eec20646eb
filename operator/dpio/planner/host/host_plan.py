"""The passthrough plan for one host: desired state of each device and the changes that get there.

The rules (docs/design.md, "Host side: passthrough rules") live in `dpio.planner.host.passthru`;
this module runs them per host and turns the result into status rows. The output is a
`HostPlan`: the `PassthruChange`s for ONE `UpdatePassthruConfig` call (empty when the host is
already right, so no call is made), and one `DevicePlan` per device the policy has an opinion on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dpio.api.conditions import DEVICE_NOT_FOUND, PASSTHROUGH_UNSUPPORTED
from dpio.api.policy import DeviceState
from dpio.planner.conditions import Problem
from dpio.planner.host.dependents import dependent_groups
from dpio.planner.host.in_use import DeviceClaim
from dpio.planner.host.passthru import (
    Draft,
    PassthruChange,
    apply_exclusive,
    expand_groups,
    keep_in_use,
    passthru_changes,
    project_changes,
    want,
)
from dpio.planner.host.rules import PolicyRules, Rivals
from dpio.planner.mmio import MmioSize, device_mmio
from dpio.planner.observed import HostPciDevice, HostPciPassthruInfo, ObservedHost
from dpio.planner.selection import match_devices

# PassthruChange is re-exported: callers import the host plan's types from here.
__all__ = ["DevicePlan", "HostPlan", "PassthruChange", "device_state", "plan_host"]

UNSUPPORTED_MESSAGE = (
    "Host does not support passthrough configuration: no PCI device is passthrough capable. "
    "Enable the IOMMU in the BIOS (Intel VT-d or AMD-Vi) and reboot the host"
)


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
    mmio: MmioSize | None = None  # the memory it maps, if the selector or the table says


@dataclass(frozen=True, slots=True)
class HostPlan:
    host: ObservedHost
    passthrough_supported: bool
    changes: tuple[PassthruChange, ...] = ()
    devices: tuple[DevicePlan, ...] = ()
    reboot_required: bool = False  # some device has enabled != active after the changes
    problems: tuple[Problem, ...] = ()
    message: str = ""


def device_state(info: HostPciPassthruInfo) -> DeviceState:
    """Broadcom KB 309986: enabled != active means a reboot is pending, in either direction."""
    if info.passthru_enabled:
        return DeviceState.ACTIVE if info.passthru_active else DeviceState.PENDING_REBOOT
    return DeviceState.PENDING_DISABLE_REBOOT if info.passthru_active else DeviceState.DISABLED


def plan_host(
    host: ObservedHost,
    rules: PolicyRules,
    rivals: Rivals,
    claims: Sequence[DeviceClaim] = (),
    *,
    project: bool = True,
) -> HostPlan:
    """`project`: status rows show the devices as they will be once `changes` are made; False
    (suspended: nothing will be made) shows them as observed."""
    info = host.passthru_info()
    matches, absent = match_devices(rules.matchers, host)
    listed = [m.device.id for m in matches]
    not_found = tuple(_not_found(host, address) for address in absent)
    if not any(i.passthru_capable for i in info.values()):
        return _unsupported(host, listed, not_found)
    mine = tuple(c for c in claims if c.host == host.name)
    draft = Draft(host, info, host.pci_device(), rules, rivals, claims=mine)
    for match in matches:
        want(draft, match.device.id, True, match.matcher.hardware_label)
    if rules.exclusive:
        listed += apply_exclusive(draft, set(listed))
    groups = dependent_groups(info.values())
    expand_groups(draft, groups)
    keep_in_use(draft, groups)
    changes = passthru_changes(
        draft, rules.apply_now_auto and host.device_rebind_without_reboot_supported
    )
    if not host.connected:
        changes = ()  # vCenter can't reach the host: report what it last knew, change nothing
    projected = project_changes(info, changes if project else ())
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


def _row(
    draft: Draft,
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
    device = draft.devices.get(pci_id)
    return DevicePlan(
        id=pci_id,
        state=state,
        device=device,
        info=info,
        dependent_devices=tuple(sorted(groups.get(pci_id, frozenset()) - {pci_id})),
        attached_to=draft.host.attached_to_vms.get(pci_id, ()),
        message=message,
        mmio=device_mmio(draft.rules.matchers, device) if device is not None else None,
    )
