"""VMDirectPath Gen2 (Cisco UCS VM-FEX) and vMotion compatibility (docs/design.md,
"VM side: DirectPath Gen2 and vMotion").

Gen2 runs a vmxnet3 adapter with `uptCompatibilityEnabled` on a port group that allows it
(`DVPortSetting.vmDirectPathGen2Allowed`) on a host with `HostCapability.vmDirectPathGen2Supported`;
unlike a PCI passthrough device it keeps vMotion (vSphere API reference). Gen2 is deprecated as of
API 8.0, so on 8.0+ hosts the message says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dpio.api.assignment import DeviceKind, NetworkDirectPath, VMotionStatus
from dpio.api.conditions import (
    DIRECT_PATH_GEN2,
    DYNAMIC_PASSTHROUGH,
    GEN2_NOT_ALLOWED_BY_PORT_GROUP,
    GEN2_UNSUPPORTED_HOST,
    INVALID_NETWORK_ADAPTER,
    NO_NETWORK_DIRECT_PATH,
    STATIC_PASSTHROUGH,
)
from dpio.planner.conditions import Problem
from dpio.planner.observed import parse_version
from dpio.planner.vm.observed import VMXNET3, DynamicBacking, ObservedVM, VMObservation

GEN2_DEPRECATED_SINCE = (8, 0)
DEPRECATION = "VMDirectPath Gen2 is deprecated as of vSphere 8.0 (vSphere API reference)"


def adapter_problem(vm: ObservedVM, wanted: Sequence[NetworkDirectPath]) -> Problem | None:
    """Each networkDirectPath adapter must exist and be vmxnet3: only vmxnet3 has
    `uptCompatibilityEnabled` (VirtualVmxnet3, vSphere API reference)."""
    wrong = []
    for entry in wanted:
        nic = vm.nic(entry.adapter)
        if nic is None:
            wrong.append(f"{entry.adapter!r} does not exist on VM {vm.name}")
        elif nic.kind != VMXNET3:
            wrong.append(f"{entry.adapter!r} is {nic.kind}, Gen2 needs vmxnet3")
        # else fine
    if not wrong:
        return None
    return Problem(INVALID_NETWORK_ADAPTER, "networkDirectPath: " + "; ".join(wrong))


def upt_changes(vm: ObservedVM, wanted: Sequence[NetworkDirectPath]) -> tuple[int, ...]:
    """Keys of the adapters that still need `uptCompatibilityEnabled: true`."""
    keys = []
    for entry in wanted:
        nic = vm.nic(entry.adapter)
        if nic is not None and nic.kind == VMXNET3 and not nic.upt_compatibility_enabled:
            keys.append(nic.key)
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class PassthroughKinds:
    """Which kinds of PCI passthrough the VM has now or will have after the plan."""

    static: bool = False
    dynamic: bool = False


def kinds(vm: ObservedVM, planned: Sequence[DeviceKind]) -> PassthroughKinds:
    dynamic_now = any(isinstance(d.backing, DynamicBacking) for d in vm.pci_devices)
    static_now = any(not isinstance(d.backing, DynamicBacking) for d in vm.pci_devices)
    return PassthroughKinds(
        static=static_now or DeviceKind.PCI in planned,
        dynamic=dynamic_now or DeviceKind.DYNAMIC in planned,
    )


def vmotion_status(
    observed: VMObservation,
    vm: ObservedVM,
    wanted: Sequence[NetworkDirectPath],
    passthrough: PassthroughKinds,
) -> VMotionStatus:
    """True (DirectPathGen2) only with Gen2 possible on host and port group AND no PCI
    passthrough device present or planned; otherwise False with the first reason that applies."""
    nics = [n for n in (vm.nic(w.adapter) for w in wanted) if n is not None]
    active = any(n.gen2_active for n in nics) if nics else None
    inactive = sorted({r for n in nics for r in n.gen2_inactive_reasons})
    deprecated = parse_version(vm.host_version) >= GEN2_DEPRECATED_SINCE and bool(wanted)
    reason, message = _why(observed, wanted, nics, passthrough)
    if deprecated:
        message = f"{message}. {DEPRECATION}" if message else DEPRECATION
    return VMotionStatus(
        compatible=reason == DIRECT_PATH_GEN2,
        reason=reason,
        message=message or None,
        gen2_active=active,
        gen2_inactive_reasons=inactive,
    )


def _why(
    observed: VMObservation,
    wanted: Sequence[NetworkDirectPath],
    nics: Sequence[object],
    passthrough: PassthroughKinds,
) -> tuple[str, str]:
    if passthrough.static:
        return STATIC_PASSTHROUGH, "A static PCI passthrough device pins the VM to its host"
    if passthrough.dynamic:
        return DYNAMIC_PASSTHROUGH, "A Dynamic DirectPath device pins the VM while powered on"
    if not wanted:
        return NO_NETWORK_DIRECT_PATH, "No passthrough device; vMotion is not restricted"
    if not observed.gen2_supported:
        why = "; ".join(observed.gen2_unsupported_reasons)
        text = "Host does not support VMDirectPath Gen2" + (f": {why}" if why else "")
        return GEN2_UNSUPPORTED_HOST, text
    vm = observed.vm
    blocked = [w.adapter for w in wanted if vm is not None and not _allowed(vm, w.adapter)]
    if blocked or len(nics) != len(wanted):
        names = ", ".join(blocked) or "a missing adapter"
        return GEN2_NOT_ALLOWED_BY_PORT_GROUP, f"Port group of {names} does not allow Gen2"
    return DIRECT_PATH_GEN2, "VMDirectPath Gen2 keeps vMotion available"


def _allowed(vm: ObservedVM, adapter: str) -> bool:
    nic = vm.nic(adapter)
    return nic is not None and nic.gen2_allowed
