"""PCI device diffing for one VM: desired (the spec) vs current (config.hardware.device).

Modelled on vm-operator's `pkg/util/resize/configspec_pci_devices.go`: a pure function, devices
matched by backing identity (static: host PCI id; dynamic: vendor/device + label), never by list
position; removes come before adds; every add gets a unique NEGATIVE temporary key (vSphere API
reference, VirtualDevice.key: "negative keys are temporary ... for new devices").

Only devices this assignment manages are removed: those matching its spec, and those it attached
before (their keys are in `status.devices`). A passthrough device someone added by hand and the
spec does not name is reported (`DeviceDiff.unmanaged`), never removed: the operator does not
know who needs it, and taking a GPU from a VM is not something to do on a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dpio.api.assignment import AssignedDevice, DeviceKind
from dpio.planner.observed import normalize_pci_address, parse_pci_id
from dpio.planner.selection import InvalidSpecError
from dpio.planner.vm.observed import Backing, DynamicBacking, ObservedPciDevice, StaticBacking

FIRST_TEMPORARY_KEY = -100


@dataclass(frozen=True, slots=True)
class DesiredDevice:
    """One `spec.devices[]` entry, checked once: what identity a matching device has."""

    name: str
    kind: DeviceKind
    address: str | None = None  # static
    vendor_id: int = 0  # dynamic only
    device_id: int = 0
    label: str | None = None

    def matches(self, backing: Backing | None) -> bool:
        if isinstance(backing, StaticBacking):
            return self.kind is DeviceKind.PCI and backing.id == self.address
        if isinstance(backing, DynamicBacking):
            return (
                self.kind is DeviceKind.DYNAMIC
                and (self.vendor_id, self.device_id) in backing.allowed_devices
                and backing.custom_label == (self.label or "")
            )
        return False

    def dynamic_backing(self) -> DynamicBacking:
        """`allowedDevice[{vendorId, deviceId}]` + `customLabel` (vSphere API reference, 7.0)."""
        return DynamicBacking(((self.vendor_id, self.device_id),), self.label or "")


def _hex(text: str, what: str) -> int:
    value = parse_pci_id(text)
    if value is None:
        raise InvalidSpecError(f"{what} {text!r} is not 4 hex digits")
    return value


def desired_devices(devices: Sequence[AssignedDevice]) -> tuple[DesiredDevice, ...]:
    """Raises InvalidSpecError for what admission could not reject."""
    result = []
    for index, device in enumerate(devices):
        where = f"devices[{index}]"
        if device.pci is not None:
            address = normalize_pci_address(device.pci.address)
            result.append(DesiredDevice(device.name, DeviceKind.PCI, address=address))
        elif device.dynamic is not None:
            dyn = device.dynamic
            result.append(
                DesiredDevice(
                    device.name,
                    DeviceKind.DYNAMIC,
                    vendor_id=_hex(dyn.vendor_id, f"{where}.dynamic.vendorID"),
                    device_id=_hex(dyn.device_id, f"{where}.dynamic.deviceID"),
                    label=dyn.label or None,
                )
            )
        else:
            raise InvalidSpecError(f"{where}: a device needs exactly one of pci or dynamic")
    return tuple(result)


def match_devices(
    desired: Iterable[DesiredDevice], current: Iterable[ObservedPciDevice]
) -> tuple[dict[str, ObservedPciDevice], tuple[ObservedPciDevice, ...]]:
    """Desired name -> the current device that is it, and the current devices nobody matched.

    Each current device matches at most one desired entry (two identical dynamic GPUs are two
    devices); candidates are taken in key order so the result does not depend on list order.
    """
    free = sorted(current, key=lambda d: d.key)
    matched: dict[str, ObservedPciDevice] = {}
    for want in desired:
        found = next((d for d in free if want.matches(d.backing)), None)
        if found is not None:
            matched[want.name] = found
            free.remove(found)
    return matched, tuple(free)


@dataclass(frozen=True, slots=True)
class DeviceAdd:
    """`VirtualDeviceConfigSpec` operation add of a `VirtualPCIPassthrough`."""

    key: int  # temporary, negative, unique within the ConfigSpec
    name: str  # the spec's device name
    backing: Backing


@dataclass(frozen=True, slots=True)
class DeviceRemove:
    """`VirtualDeviceConfigSpec` operation remove."""

    key: int
    label: str


@dataclass(frozen=True, slots=True)
class DeviceDiff:
    removes: tuple[DeviceRemove, ...] = ()
    adds: tuple[DeviceAdd, ...] = ()
    matched: Mapping[str, ObservedPciDevice] | None = None
    unmanaged: tuple[ObservedPciDevice, ...] = ()  # hand-added devices the spec doesn't name

    @property
    def empty(self) -> bool:
        return not self.removes and not self.adds


def diff_devices(
    desired: Sequence[DesiredDevice],
    current: Sequence[ObservedPciDevice],
    backings: Mapping[str, Backing],
    managed_keys: frozenset[int] = frozenset(),
) -> DeviceDiff:
    """The device changes that take `current` to `desired`.

    `backings`: desired name -> backing for each device that may be added now (the rules decide
    which; a device left out is neither added nor counted as missing here). `managed_keys`: keys
    of devices this assignment attached earlier (`status.devices[].key`).
    """
    matched, leftovers = match_devices(desired, current)
    removes = tuple(DeviceRemove(d.key, d.label) for d in leftovers if d.key in managed_keys)
    unmanaged = tuple(d for d in leftovers if d.key not in managed_keys)
    adds: list[DeviceAdd] = []
    for want in desired:
        backing = backings.get(want.name)
        if want.name not in matched and backing is not None:
            adds.append(DeviceAdd(FIRST_TEMPORARY_KEY - len(adds), want.name, backing))
    return DeviceDiff(removes, tuple(adds), matched, unmanaged)


def removal(
    desired: Sequence[DesiredDevice],
    current: Sequence[ObservedPciDevice],
    managed_keys: frozenset[int],
) -> tuple[DeviceRemove, ...]:
    """On delete: every device the assignment manages (spec identity or a key it recorded)."""
    matched, _ = match_devices(desired, current)
    keys = managed_keys | {d.key for d in matched.values()}
    return tuple(
        DeviceRemove(d.key, d.label) for d in sorted(current, key=lambda d: d.key) if d.key in keys
    )
