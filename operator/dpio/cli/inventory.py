"""`dpio inventory`: per host, the PCI devices and their passthrough state, as the vSphere Client
shows them under Host > Configure > Hardware > PCI Devices.

One `RetrievePropertiesEx` through the operator's own `HostAdapter.read_inventory`; the rows are
computed from the same `ObservedInventory` the planner sees, with the planner's own rules for the
state (`device_state`, Broadcom KB 309986) and dependent devices (`dependent_groups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dpio.api.policy import DeviceState
from dpio.cli.output import Format, dump, table
from dpio.planner.host.dependents import dependent_groups
from dpio.planner.host.host_plan import device_state
from dpio.planner.mmio import device_mmio
from dpio.planner.observed import (
    HostPciDevice,
    HostPciPassthruInfo,
    ObservedHost,
    ObservedInventory,
    format_pci_id,
)

HEADERS = (
    "host",
    "address",
    "id",
    "name",
    "capable",
    "enabled",
    "active",
    "state",
    "label",
    "mmio GB",
    "in use by",
    "dependent",
)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One PCI device of one host, in the API's words (status.hosts[].devices[])."""

    host: str
    address: str
    vendor_id: str
    device_id: str
    name: str
    vendor_name: str
    capable: bool
    enabled: bool
    active: bool
    state: DeviceState
    hardware_label: str
    in_use_by_host: str  # why ESXi needs it (vmkernel NIC, storage HBA); "" when free
    attached_to: tuple[str, ...]  # VMs with a VirtualPCIPassthrough backed by it
    dependent_devices: tuple[str, ...]
    # What the device maps, from the table of well-known devices (planner/known_devices.py;
    # a policy's selector can say otherwise, its status shows the value it uses). None: unknown.
    mmio_size_gb: int | None = None

    @property
    def used_by(self) -> str:
        if self.in_use_by_host:
            return f"ESXi: {self.in_use_by_host}"
        return ",".join(self.attached_to)

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "vendorID": self.vendor_id,
            "deviceID": self.device_id,
            "name": self.name,
            "vendorName": self.vendor_name,
            "capable": self.capable,
            "enabled": self.enabled,
            "active": self.active,
            "state": str(self.state),
            "hardwareLabel": self.hardware_label,
            "inUseByHost": self.in_use_by_host,
            "attachedTo": list(self.attached_to),
            "dependentDevices": list(self.dependent_devices),
            "mmioSizeGB": self.mmio_size_gb,
        }


def _state(info: HostPciPassthruInfo | None) -> DeviceState:
    if info is None or not info.passthru_capable:
        return DeviceState.NOT_CAPABLE
    return device_state(info)


def host_rows(host: ObservedHost) -> list[DeviceRow]:
    """Every PCI device of `host`, by address; passthrough info joined by PCI id."""
    infos = host.passthru_info()
    groups = dependent_groups(infos.values())
    devices = dict(host.pci_device())
    for pci_id in infos.keys() - devices.keys():  # passthrough info for a device not listed
        devices[pci_id] = HostPciDevice(id=pci_id, vendor_id=0, device_id=0)
    rows = []
    for pci_id in sorted(devices):
        device, info = devices[pci_id], infos.get(pci_id)
        rows.append(
            DeviceRow(
                host=host.name,
                address=pci_id,
                vendor_id=format_pci_id(device.vendor_id),
                device_id=format_pci_id(device.device_id),
                name=device.device_name,
                vendor_name=device.vendor_name,
                capable=bool(info and info.passthru_capable),
                enabled=bool(info and info.passthru_enabled),
                active=bool(info and info.passthru_active),
                state=_state(info),
                hardware_label=info.hardware_label if info else "",
                in_use_by_host=host.in_use_by_host.get(pci_id, ""),
                attached_to=tuple(host.attached_to_vms.get(pci_id, ())),
                dependent_devices=tuple(sorted(groups.get(pci_id, frozenset()) - {pci_id})),
                mmio_size_gb=size.gb if (size := device_mmio((), device)) is not None else None,
            )
        )
    return rows


def host_dict(host: ObservedHost) -> dict[str, Any]:
    rows = host_rows(host)
    return {
        "name": host.name,
        "cluster": host.cluster,
        "version": host.version,
        "connectionState": host.connection_state,
        "inMaintenanceMode": host.in_maintenance_mode,
        "passthroughSupported": any(r.capable for r in rows),
        "rebootRequired": any(r.enabled != r.active for r in rows),
        "deviceRebindWithoutRebootSupported": host.device_rebind_without_reboot_supported,
        "devices": [r.as_dict() for r in rows],
    }


def selected(inventory: ObservedInventory, names: Sequence[str]) -> list[ObservedHost]:
    hosts = [h for h in inventory.hosts if not names or h.name in names]
    return sorted(hosts, key=lambda h: h.name)


def table_row(r: DeviceRow) -> tuple[object, ...]:
    ids = f"{r.vendor_id}:{r.device_id}"
    return (
        r.host,
        r.address,
        ids,
        r.name,
        r.capable,
        r.enabled,
        r.active,
        r.state,
        r.hardware_label,
        "" if r.mmio_size_gb is None else r.mmio_size_gb,
        r.used_by,
        r.dependent_devices,
    )


def render(inventory: ObservedInventory, fmt: Format, names: Sequence[str] = ()) -> str:
    hosts = selected(inventory, names)
    if fmt is not Format.TABLE:
        return dump({"hosts": [host_dict(h) for h in hosts]}, fmt)
    rows = [table_row(r) for h in hosts for r in host_rows(h)]
    return table(HEADERS, rows) if rows else "No hosts found.\n"


def missing(inventory: ObservedInventory, names: Sequence[str]) -> list[str]:
    """Host names asked for with --host that vCenter does not know."""
    known = {h.name for h in inventory.hosts}
    return [n for n in names if n not in known]
