"""Normalising what vSphere reports: PCI addresses, signed int16 ids, versions."""

from __future__ import annotations

import pytest

from dpio.planner.observed import (
    HostPciDevice,
    ObservedHost,
    format_pci_id,
    mask_pci_id,
    normalize_pci_address,
    parse_pci_id,
    parse_version,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0000:3B:00.0", "0000:3b:00.0"),
        ("0000:3b:00.0", "0000:3b:00.0"),
        (" 3b:00.1 ", "0000:3b:00.1"),
        ("0001:af:1f.7", "0001:af:1f.7"),
        ("not-an-address", "not-an-address"),
        ("", ""),
    ],
)
def test_normalize_pci_address(given: str, expected: str) -> None:
    assert normalize_pci_address(given) == expected


@pytest.mark.parametrize(
    ("wire", "masked", "hex_form"),
    [
        (0x10DE, 0x10DE, "10de"),  # NVIDIA: positive as int16
        (-32634, 0x8086, "8086"),  # Intel: 0x8086 reads as -32634 (govmomi #2248)
        (-1, 0xFFFF, "ffff"),
        (0, 0, "0000"),
    ],
)
def test_pci_ids_are_masked_to_16_bits(wire: int, masked: int, hex_form: str) -> None:
    assert mask_pci_id(wire) == masked
    assert format_pci_id(wire) == hex_form
    device = HostPciDevice(id="0000:00:00.0", vendor_id=wire, device_id=wire)
    assert (device.vendor_id, device.device_id) == (masked, masked)


@pytest.mark.parametrize(
    ("text", "value"),
    [("10de", 0x10DE), ("0x8086", 0x8086), ("ABCD", 0xABCD), ("12345", None), ("zz", None)],
)
def test_parse_pci_id(text: str, value: int | None) -> None:
    assert parse_pci_id(text) == value


@pytest.mark.parametrize(
    ("version", "at_least_702"),
    [("8.0.2", True), ("7.0.2", True), ("7.0.1", False), ("6.7.0", False), ("", False)],
)
def test_version_gate(version: str, at_least_702: bool) -> None:
    assert ObservedHost(moref="h", name="h", version=version).version_at_least(7, 0, 2) is (
        at_least_702
    )
    assert parse_version("8.0.2") == (8, 0, 2)


def test_host_maps_are_normalised_and_read_only() -> None:
    observed = ObservedHost(moref="h", name="h", in_use_by_host={"0000:18:00.0".upper(): "vmk0"})
    assert observed.in_use_by_host == {"0000:18:00.0": "vmk0"}
    with pytest.raises(TypeError):
        observed.in_use_by_host["x"] = "y"  # type: ignore[index]
