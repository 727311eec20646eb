"""How much memory well-known passthrough devices map: the default of a selector's `mmioSizeGB`.

vSphere does not report a device's BAR sizes (`HostPciDevice` has no such field), yet they decide
whether a VM powers on (vm/mmio.py). The figures below are the device's largest BAR (on a GPU the
framebuffer aperture, BAR1) plus its small BARs, rounded up to whole GB, as the vendor documents
them or `nvidia-smi -q` / `lspci -vv` print them on the card in its default (compute) mode. A card
flashed to another BAR mode, or a device not listed, needs `mmioSizeGB` in the policy's selector,
which always wins. docs/mmio.md prints this table; a test keeps the two the same.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KnownDevice:
    vendor_id: int
    device_id: int
    name: str
    mmio_size_gb: int
    source: str


NVIDIA, AMD = 0x10DE, 0x1002

KNOWN_DEVICES: tuple[KnownDevice, ...] = (
    KnownDevice(NVIDIA, 0x20F1, "NVIDIA A100 PCIe 40GB", 64, "NVIDIA product brief PB-10137"),
    KnownDevice(NVIDIA, 0x20B5, "NVIDIA A100 PCIe 80GB", 128, "NVIDIA product brief PB-10577"),
    KnownDevice(NVIDIA, 0x20B7, "NVIDIA A30", 32, "NVIDIA A30 product brief"),
    KnownDevice(NVIDIA, 0x2331, "NVIDIA H100 PCIe", 128, "NVIDIA H100 PCIe product brief"),
    KnownDevice(NVIDIA, 0x2321, "NVIDIA H100 NVL", 128, "NVIDIA H100 NVL product brief"),
    KnownDevice(NVIDIA, 0x26B9, "NVIDIA L40S", 64, "NVIDIA L40S product brief"),
    KnownDevice(NVIDIA, 0x26B5, "NVIDIA L40", 64, "NVIDIA L40 product brief"),
    KnownDevice(NVIDIA, 0x2235, "NVIDIA A40", 64, "NVIDIA product brief PB-09976"),
    KnownDevice(NVIDIA, 0x2236, "NVIDIA A10", 32, "NVIDIA A10 product brief"),
    KnownDevice(NVIDIA, 0x27B8, "NVIDIA L4", 32, "NVIDIA L4 product brief"),
    # The V100s are the cards of VMware's 2018 blog that first documented 64-bit MMIO for GPUs.
    KnownDevice(NVIDIA, 0x1DB6, "NVIDIA V100 PCIe 32GB", 32, "VMware blog, 2018-10"),
    KnownDevice(NVIDIA, 0x1DB4, "NVIDIA V100 PCIe 16GB", 16, "VMware blog, 2018-10"),
    KnownDevice(NVIDIA, 0x1EB8, "NVIDIA T4", 1, "NVIDIA T4 product brief (BAR1 256 MiB)"),
    KnownDevice(AMD, 0x740F, "AMD Instinct MI210", 64, "AMD ROCm docs, BAR access"),
)

_BY_ID = {(d.vendor_id, d.device_id): d for d in KNOWN_DEVICES}


def known_device(vendor_id: int, device_id: int) -> KnownDevice | None:
    """The table's entry for a PCI vendor:device id (16-bit values), if any."""
    return _BY_ID.get((vendor_id & 0xFFFF, device_id & 0xFFFF))
