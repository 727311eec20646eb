"""How much memory (PCI BAR space) a passthrough device maps, as the policy or the table says.

A device selector's `mmioSizeGB` wins; else the table of well-known devices (known_devices.py);
else the size is unknown (None) and counts as small. The policy's status shows the value per
device (`mmioSizeGB`, `mmioSizeSource`); the VM planner sums them (planner/vm/mmio.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dpio.api.policy import MmioSource
from dpio.planner.known_devices import known_device
from dpio.planner.observed import HostPciDevice
from dpio.planner.selection import DeviceMatcher


@dataclass(frozen=True, slots=True)
class MmioSize:
    gb: int
    source: MmioSource


def _sized(
    matchers: Sequence[DeviceMatcher], picks: Callable[[DeviceMatcher], bool], ids: tuple[int, int]
) -> MmioSize | None:
    stated = next((m for m in matchers if m.mmio_size_gb is not None and picks(m)), None)
    if stated is not None and stated.mmio_size_gb is not None:
        return MmioSize(stated.mmio_size_gb, MmioSource.SPEC)
    known = known_device(*ids)
    return MmioSize(known.mmio_size_gb, MmioSource.KNOWN_DEVICES) if known is not None else None


def device_mmio(matchers: Sequence[DeviceMatcher], device: HostPciDevice) -> MmioSize | None:
    """A host PCI device: the first selector that matches it and states `mmioSizeGB`, else the
    table by vendor:device id."""
    return _sized(matchers, lambda m: m.matches(device), (device.vendor_id, device.device_id))


def ids_mmio(matchers: Sequence[DeviceMatcher], vendor_id: int, device_id: int) -> MmioSize | None:
    """A Dynamic DirectPath device, known only by vendor:device id until it runs: the first
    vendorID+deviceID selector with those ids that states `mmioSizeGB`, else the table."""

    def picks(m: DeviceMatcher) -> bool:
        return (m.vendor_id, m.device_id) == (vendor_id, device_id)

    return _sized(matchers, picks, (vendor_id, device_id))
