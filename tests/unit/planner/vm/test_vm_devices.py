"""Device diffing: identity matching, removes before adds, negative unique keys, hex device ids."""

from __future__ import annotations

import pytest
from tests.unit.planner.vm.builders import A100_VENDOR, GPU, GPU2, attached

from dpio.api.assignment import AssignedDevice, DeviceKind
from dpio.planner.selection import InvalidSpecError
from dpio.planner.vm.devices import (
    DesiredDevice,
    desired_devices,
    diff_devices,
    match_devices,
    removal,
)
from dpio.planner.vm.observed import (
    ConfigTargetPci,
    DynamicBacking,
    ObservedPciDevice,
    StaticBacking,
)

STATIC = DesiredDevice("gpu0", DeviceKind.PCI, address=GPU)
STATIC2 = DesiredDevice("gpu1", DeviceKind.PCI, address=GPU2)
DYN = DesiredDevice("dyn0", DeviceKind.DYNAMIC, vendor_id=0x10DE, device_id=0x20B5, label="a100")
DYN_BACKING = DynamicBacking(((0x10DE, 0x20B5),), "a100")


def dynamic(key: int, label: str = "a100") -> ObservedPciDevice:
    return ObservedPciDevice(key, f"PCI device {key}", DynamicBacking(((0x10DE, 0x20B5),), label))


@pytest.mark.parametrize(
    ("device_id", "expected"),
    [
        # govmomi #2248/#2249: the backing's deviceId is hex; 0x20b5 is "8373" in decimal.
        (0x20B5, "20b5"),
        (0x1EB8, "1eb8"),
        (-0x7FFF, "8001"),  # a signed int16 from the wire is masked first
        (0x00FF, "ff"),
    ],
)
def test_static_backing_device_id_is_lower_case_hex(device_id: int, expected: str) -> None:
    backing = ConfigTargetPci(GPU, "sys-1", 0x10DE, device_id).backing()
    assert backing.device_id == expected
    assert backing.device_id != str(device_id & 0xFFFF)


@pytest.mark.parametrize(
    ("vendor", "short"), [(0x10DE, 0x10DE), (0x8086, -32634), (-32634, -32634)]
)
def test_static_backing_vendor_id_is_a_signed_short_on_the_wire(vendor: int, short: int) -> None:
    assert StaticBacking(GPU, "20b5", "s", vendor).vendor_id_short == short


@pytest.mark.parametrize(
    ("desired", "current", "removed", "added"),
    [
        # Converged: nothing.
        ((STATIC,), (attached(13000),), (), ()),
        ((DYN,), (dynamic(13001),), (), ()),
        # Matched by identity, not position: the order of current devices does not matter.
        ((STATIC, STATIC2), (attached(13001, GPU2), attached(13000)), (), ()),
        # A managed device the spec no longer names is removed; the new one added.
        ((STATIC2,), (attached(13000),), (13000,), ("gpu1",)),
        # A dynamic device with another label is not the same device.
        ((DYN,), (dynamic(13000, "t4"),), (13000,), ("dyn0",)),
        # Two identical dynamic devices are two devices: one attached, one to add.
        (
            (DYN, DesiredDevice("dyn1", DeviceKind.DYNAMIC, 0, 0x10DE, 0x20B5, "a100")),
            (dynamic(13000),),
            (),
            ("dyn1",),
        ),
    ],
)
def test_diff_by_backing_identity(
    desired: tuple[DesiredDevice, ...],
    current: tuple[ObservedPciDevice, ...],
    removed: tuple[int, ...],
    added: tuple[str, ...],
) -> None:
    backings = {
        d.name: (
            ConfigTargetPci(d.address, "s", 0x10DE, 0x20B5).backing() if d.address else DYN_BACKING
        )
        for d in desired
    }
    diff = diff_devices(desired, current, backings, frozenset(d.key for d in current))
    assert tuple(r.key for r in diff.removes) == removed
    assert tuple(a.name for a in diff.adds) == added


def test_adds_get_unique_negative_temporary_keys() -> None:
    desired = tuple(
        DesiredDevice(f"gpu{i}", DeviceKind.PCI, address=f"0000:0{i}:00.0") for i in range(4)
    )
    backings = {d.name: StaticBacking(d.address or "", "20b5", "s", A100_VENDOR) for d in desired}
    diff = diff_devices(desired, (), backings)
    keys = [a.key for a in diff.adds]
    assert keys == [-100, -101, -102, -103]
    assert len(set(keys)) == len(keys)


def test_hand_added_devices_are_reported_not_removed() -> None:
    by_hand = attached(13005, GPU2)
    diff = diff_devices((STATIC,), (attached(13000), by_hand), {}, frozenset({13000}))
    assert diff.removes == ()
    assert diff.unmanaged == (by_hand,)


def test_a_device_without_a_backing_is_not_added() -> None:
    diff = diff_devices((STATIC, STATIC2), (), {"gpu0": attached().backing})  # type: ignore[dict-item]
    assert [a.name for a in diff.adds] == ["gpu0"]


def test_deletion_removes_spec_and_recorded_devices_only() -> None:
    current = (attached(13000), attached(13001, GPU2), dynamic(13002))
    removes = removal((STATIC,), current, frozenset({13002}))
    assert [r.key for r in removes] == [13000, 13002]


def test_each_current_device_matches_once() -> None:
    matched, leftovers = match_devices((STATIC, STATIC), (attached(13000),))
    assert list(matched) == ["gpu0"]
    assert leftovers == ()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "d", "dynamic": {"vendorID": "10de", "deviceID": "20b5"}}, None),
        ({"name": "d", "pci": {"address": "0000:3B:00.0"}}, None),
    ],
)
def test_desired_devices_normalise(body: dict[str, object], error: str | None) -> None:
    (want,) = desired_devices([AssignedDevice.model_validate(body)])
    if want.kind is DeviceKind.PCI:
        assert want.address == GPU
    else:
        assert (want.vendor_id, want.device_id, want.label) == (0x10DE, 0x20B5, None)


def test_desired_devices_refuse_a_device_with_neither_backing() -> None:
    bad = AssignedDevice.model_construct(name="d", pci=None, dynamic=None)
    with pytest.raises(InvalidSpecError):
        desired_devices([bad])
