"""What the vSphere adapter reads from vCenter for the host planner, in vSphere's own words.

One PropertyCollector call fills an `ObservedInventory`; the planner never reads vSphere itself.
Everything here is frozen and normalised on construction (PCI addresses lower case, PCI ids
masked to 16 bits), so the planner can compare values without caring where they came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TypeVar

# HostSystem.runtime.connectionState values (vSphere API reference, HostSystemConnectionState).
CONNECTED = "connected"

_PCI_ADDRESS = re.compile(r"^(?:([0-9a-f]{1,8}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$")
_VERSION_PART = re.compile(r"\d+")


@lru_cache(maxsize=8192)
def normalize_pci_address(address: str) -> str:
    """`0000:3B:00.0` -> `0000:3b:00.0`; `3b:00.0` -> `0000:3b:00.0`.

    ESXi reports `HostPciDevice.id` as `domain:bus:slot.function` in lower-case hex; users may type
    upper case or leave out the domain. Text that is not a PCI address is only lower-cased, so it
    can never match a real device by accident.

    Memoized: every read of a host normalizes all of its device ids again, and a vCenter has a
    bounded set of them (4.3% of the operator's CPU at 500 VMs on 64 hosts before the cache).
    """
    text = address.strip().lower()
    match = _PCI_ADDRESS.match(text)
    if match is None:
        return text
    domain, bus, slot, function = match.groups()
    return f"{int(domain or '0', 16):04x}:{int(bus, 16):02x}:{int(slot, 16):02x}.{function}"


def mask_pci_id(value: int) -> int:
    """Vendor and device ids are signed int16 on the wire (0x10de reads as 4318, 0x8086 as -32634).

    Source: vSphere WSDL `HostPciDevice.vendorId: xsd:short`; govmomi issue #2248.
    """
    return value & 0xFFFF


def format_pci_id(value: int) -> str:
    """The 4-digit lower-case hex form used in the API (`vendorID: "10de"`)."""
    return f"{mask_pci_id(value):04x}"


def parse_pci_id(text: str) -> int | None:
    """`"10de"` -> 0x10de; None for text that is not 1-4 hex digits."""
    cleaned = text.strip().lower().removeprefix("0x")
    if not 0 < len(cleaned) <= 4 or any(c not in "0123456789abcdef" for c in cleaned):
        return None
    return int(cleaned, 16)


def parse_version(version: str) -> tuple[int, ...]:
    """`"8.0.2"` -> (8, 0, 2); unknown or empty text -> () which sorts before every version."""
    return tuple(int(part) for part in _VERSION_PART.findall(version)[:3])


@dataclass(frozen=True, slots=True)
class HostPciDevice:
    """`HostSystem.hardware.pciDevice[]` (vSphere API reference, HostPciDevice)."""

    id: str
    vendor_id: int
    device_id: int
    class_id: int = 0
    vendor_name: str = ""
    device_name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", normalize_pci_address(self.id))
        object.__setattr__(self, "vendor_id", mask_pci_id(self.vendor_id))
        object.__setattr__(self, "device_id", mask_pci_id(self.device_id))
        object.__setattr__(self, "class_id", mask_pci_id(self.class_id))


@dataclass(frozen=True, slots=True)
class HostPciPassthruInfo:
    """`HostSystem.config.pciPassthruInfo[]` (vSphere API reference, HostPciPassthruInfo).

    `passthru_active` means "enabled and the host rebooted since" (Broadcom KB 309986);
    `hardware_label` exists from vSphere 7.0.2 on.
    """

    id: str
    dependent_device: str = ""
    passthru_enabled: bool = False
    passthru_capable: bool = False
    passthru_active: bool = False
    hardware_label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", normalize_pci_address(self.id))
        object.__setattr__(self, "dependent_device", normalize_pci_address(self.dependent_device))


# VirtualMachine.runtime.powerState (vSphere API reference, VirtualMachinePowerState).
POWERED_ON = "poweredOn"
# DrsBehavior (vSphere API reference): the only one under which DRS migrates a VM by itself,
# and so the only one under which EnterMaintenanceMode evacuates it.
FULLY_AUTOMATED = "fullyAutomated"


@dataclass(frozen=True, slots=True)
class DynamicPassthrough:
    """One `VirtualPCIPassthroughDynamicBackingInfo` of a VM (vSphere 7.0, Dynamic DirectPath).

    `allowed` holds the (vendor, device) ids of `allowedDevice[]`; `label` is `customLabel`;
    `assigned_id` is `assignedId`, the host device vSphere picked, set only while the VM runs
    (vSphere API reference).
    """

    allowed: tuple[tuple[int, int], ...]
    label: str = ""
    assigned_id: str = ""

    def __post_init__(self) -> None:
        allowed = tuple((mask_pci_id(v), mask_pci_id(d)) for v, d in self.allowed)
        object.__setattr__(self, "allowed", allowed)
        object.__setattr__(self, "assigned_id", normalize_pci_address(self.assigned_id))

    def can_use(self, device: HostPciDevice, info: HostPciPassthruInfo) -> bool:
        """Whether vSphere could back this device with `device` at power-on."""
        if (device.vendor_id, device.device_id) not in self.allowed:
            return False
        return not self.label or self.label == info.hardware_label


@dataclass(frozen=True, slots=True)
class ObservedVM:
    """A VM registered on a host, with what decides whether maintenance mode can evacuate it.

    `drs_behavior` is the DRS automation level in effect for the VM: its cluster override
    (`ClusterDrsVmConfigInfo`), else the cluster's `defaultVmBehavior`; "disabled" when DRS is
    off for it; None when the host is in no cluster (no DRS at all).
    """

    name: str
    power_state: str = ""
    passthrough: bool = False  # has a VirtualPCIPassthrough device (static or dynamic)
    fault_tolerance: bool = False  # runtime.faultToleranceState is not notConfigured
    drs_behavior: str | None = None
    dynamic: tuple[DynamicPassthrough, ...] = ()

    @property
    def powered_on(self) -> bool:
        return self.power_state == POWERED_ON


_K = TypeVar("_K")
_V = TypeVar("_V")


def _frozen_mapping(value: Mapping[_K, _V]) -> Mapping[_K, _V]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class ObservedHost:
    """One `HostSystem`, with exactly the properties the host planner needs.

    `in_use_by_host` maps a PCI id to why ESXi itself needs it (a physical NIC that carries a
    vmkernel port, a storage HBA); `attached_to_vms` maps a PCI id to the VMs whose
    `VirtualPCIPassthrough` devices are backed by it; `vms` are the VMs registered on it.
    """

    moref: str
    name: str
    cluster: str | None = None
    version: str = ""
    api_version: str = ""
    connection_state: str = CONNECTED
    in_maintenance_mode: bool = False
    reboot_required: bool = False
    boot_time: datetime | None = None
    device_rebind_without_reboot_supported: bool = False
    pci_devices: tuple[HostPciDevice, ...] = ()
    pci_passthru_info: tuple[HostPciPassthruInfo, ...] = ()
    in_use_by_host: Mapping[str, str] = field(default_factory=dict)
    attached_to_vms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    vms: tuple[ObservedVM, ...] = ()  # registered on the host (VirtualMachine.runtime.host)

    def __post_init__(self) -> None:
        in_use = {normalize_pci_address(k): v for k, v in self.in_use_by_host.items()}
        attached = {normalize_pci_address(k): tuple(v) for k, v in self.attached_to_vms.items()}
        object.__setattr__(self, "in_use_by_host", _frozen_mapping(in_use))
        object.__setattr__(self, "attached_to_vms", _frozen_mapping(attached))

    @property
    def connected(self) -> bool:
        return self.connection_state == CONNECTED

    @property
    def unavailable(self) -> bool:
        """Counts against `reboot.maxUnavailable`: in maintenance mode or not connected."""
        return self.in_maintenance_mode or not self.connected

    def version_at_least(self, *minimum: int) -> bool:
        return parse_version(self.version) >= minimum

    def passthru_info(self) -> Mapping[str, HostPciPassthruInfo]:
        """By PCI id; the first entry wins if vCenter ever reports an id twice."""
        result: dict[str, HostPciPassthruInfo] = {}
        for info in self.pci_passthru_info:
            result.setdefault(info.id, info)
        return result

    def pci_device(self) -> Mapping[str, HostPciDevice]:
        result: dict[str, HostPciDevice] = {}
        for device in self.pci_devices:
            result.setdefault(device.id, device)
        return result


@dataclass(frozen=True, slots=True)
class ObservedInventory:
    """All hosts the adapter read in one call, and cluster name -> host names."""

    hosts: tuple[ObservedHost, ...] = ()
    clusters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clusters = {name: tuple(hosts) for name, hosts in self.clusters.items()}
        object.__setattr__(self, "clusters", _frozen_mapping(clusters))

    def host(self, name: str) -> ObservedHost | None:
        return next((h for h in self.hosts if h.name == name), None)
