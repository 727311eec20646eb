"""Large-BAR devices and hardware versions: what a VM needs so that it powers on with its devices.

vSphere facts (the simulator enforces the same, sandbox/vcsim/VM-RULES.md):
- A VM gets a 32 GB MMIO window by default. A passthrough device that maps more than 16 GB (its
  PCI BARs; on a GPU about its framebuffer or more), or devices mapping more than 32 GB together,
  need `pciPassthru.use64bitMMIO = "TRUE"` and `pciPassthru.64bitMMIOSizeGB = N` in the VM's
  advanced settings, N at least their sum and by VMware's advice a power of two, and the VM must
  boot with EFI. Otherwise power-on fails: "Module 'DevicePowerOn' power on failed", logged as
  "PCIPassthru: total number of pages needed ... exceeds limit". (VMware blog "How to Enable
  Nvidia V100 GPU in Passthrough mode on vSphere", 2018-10; Frank Denneman, "vSphere ML
  Accelerator Spectrum Deep Dive - ESXi Host BIOS, VM, and vCenter Settings", 2023-05;
  Dell KB 000199172.) vm-operator sets the same keys for GPU VMs of Tanzu Kubernetes Grid.
- The firmware is never changed: a guest installed with BIOS does not boot with EFI.
- Dynamic DirectPath I/O needs virtual hardware version 17 (vSphere 7.0) or later; the BOSH
  vSphere CPI upgrades the VM for it (cloudfoundry/bosh-vsphere-cpi-release PR #370).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dpio.api.assignment import DeviceKind
from dpio.api.conditions import FIRMWARE_NOT_EFI, HARDWARE_VERSION_TOO_OLD
from dpio.planner.conditions import Problem
from dpio.planner.mmio import device_mmio, ids_mmio
from dpio.planner.observed import HostPciDevice, parse_pci_id
from dpio.planner.selection import DeviceMatcher, InvalidSpecError, compile_device_selectors
from dpio.planner.vm.devices import DesiredDevice
from dpio.planner.vm.observed import Backing, ObservedVM, StaticBacking, VMObservation

DEFAULT_WINDOW_GB = 32
SINGLE_DEVICE_LIMIT_GB = 16
USE_64BIT_MMIO = "pciPassthru.use64bitMMIO"
MMIO_SIZE_GB = "pciPassthru.64bitMMIOSizeGB"
EFI = "efi"
DYNAMIC_MIN_VERSION = 17
DYNAMIC_UPGRADE_TARGET = "vmx-17"  # the least upgrade that allows Dynamic DirectPath


@dataclass(frozen=True, slots=True)
class MmioNeed:
    """The memory a VM's passthrough devices map together, and the largest one."""

    total_gb: int = 0
    largest_gb: int = 0

    @property
    def needs_64bit(self) -> bool:
        return self.largest_gb > SINGLE_DEVICE_LIMIT_GB or self.total_gb > DEFAULT_WINDOW_GB

    @property
    def window_gb(self) -> int:
        """`64bitMMIOSizeGB` to set: the sum rounded up to a power of two (VMware's advice)."""
        size = 1
        while size < self.total_gb:
            size *= 2
        return size


def _matchers(observed: VMObservation) -> tuple[DeviceMatcher, ...]:
    if observed.policy is None:
        return ()
    try:
        return compile_device_selectors(observed.policy.spec.devices)
    except InvalidSpecError:
        return ()  # the policy reports its own bad spec; the table still applies


def backing_gb(
    backing: Backing | None, observed: VMObservation, matchers: tuple[DeviceMatcher, ...]
) -> int:
    """The memory one device maps; 0 when neither the policy nor the table knows it."""
    if backing is None:
        return 0
    if isinstance(backing, StaticBacking):
        target = observed.config_target.pci(backing.id)
        device_id = parse_pci_id(backing.device_id) or 0
        name = target.name if target is not None else ""
        device = HostPciDevice(backing.id, backing.vendor_id, device_id, device_name=name)
        size = device_mmio(matchers, device)
        return size.gb if size is not None else 0
    sizes = [ids_mmio(matchers, v, d) for v, d in backing.allowed_devices]
    return max((s.gb for s in sizes if s is not None), default=0)


def desired_gb(
    want: DesiredDevice, observed: VMObservation, matchers: tuple[DeviceMatcher, ...]
) -> int:
    """A spec device not on the VM yet: static by the host device at its address (as the host's
    ConfigTarget or the policy's status lists it), dynamic by its vendor:device id."""
    if want.address is None:
        size = ids_mmio(matchers, want.vendor_id, want.device_id)
        return size.gb if size is not None else 0
    target = observed.config_target.pci(want.address)
    if target is not None:
        return backing_gb(target.backing(), observed, matchers)
    rows = observed.policy.host_devices if observed.policy is not None else ()
    found = next((r for r in rows if r.address == want.address), None)
    if found is None or found.vendor_id is None or found.device_id is None:
        return 0
    device = HostPciDevice(
        want.address,
        parse_pci_id(found.vendor_id) or 0,
        parse_pci_id(found.device_id) or 0,
        device_name=found.name or "",
    )
    size = device_mmio(matchers, device)
    return size.gb if size is not None else 0


def need(backings: Iterable[Backing | None], observed: VMObservation) -> MmioNeed:
    """What the devices with these backings map together (all the VM will have)."""
    matchers = _matchers(observed)
    sizes = [backing_gb(b, observed, matchers) for b in backings]
    return MmioNeed(sum(sizes), max(sizes, default=0))


def planned_need(
    kept: Iterable[Backing | None],
    new: Iterable[DesiredDevice],
    observed: VMObservation,
) -> MmioNeed:
    """What the VM's devices will map once `new` spec devices join those it keeps."""
    matchers = _matchers(observed)
    sizes = [backing_gb(b, observed, matchers) for b in kept]
    sizes += [desired_gb(w, observed, matchers) for w in new]
    return MmioNeed(sum(sizes), max(sizes, default=0))


def power_on_problem(
    vm: ObservedVM, new: Sequence[DesiredDevice], mmio: MmioNeed, upgrade_allowed: bool
) -> Problem | None:
    """A rule that would keep the VM from powering on with `new` added: a reason to change
    nothing. A VM running with all its devices proves it powers on: nothing to say then."""
    if not new and vm.powered_on:
        return None
    refused = firmware_problem(vm, mmio)
    if refused is not None:
        return refused
    dynamic = any(w.kind is DeviceKind.DYNAMIC for w in new)
    if dynamic and needs_upgrade(vm) and not upgrade_allowed:
        return hardware_problem(vm)
    return None


def _enabled(vm: ObservedVM) -> bool:
    return (vm.use64bit_mmio or "").strip().upper() == "TRUE"


def _size(vm: ObservedVM) -> int:
    text = (vm.mmio_size_gb or "").strip()
    return int(text) if text.isdigit() else 0


def settings_change(vm: ObservedVM, mmio: MmioNeed) -> tuple[tuple[str, str], ...]:
    """extraConfig to set so the devices fit: nothing when the VM already has enough (a larger
    window someone set is kept)."""
    if not mmio.needs_64bit or (_enabled(vm) and _size(vm) >= mmio.total_gb):
        return ()
    size = max(mmio.window_gb, _size(vm))
    return ((USE_64BIT_MMIO, "TRUE"), (MMIO_SIZE_GB, str(size)))


def firmware_problem(vm: ObservedVM, mmio: MmioNeed) -> Problem | None:
    """A BIOS VM can't map large BARs: refused, the VM left as it is."""
    if not mmio.needs_64bit or vm.firmware.lower() == EFI:
        return None
    firmware = vm.firmware or "unknown"
    message = (
        f"VM {vm.name} boots with {firmware} firmware, but its passthrough devices map "
        f"{mmio.total_gb} GB (largest {mmio.largest_gb} GB): above the default MMIO window, "
        "which needs EFI firmware and 64-bit MMIO. The operator does not change firmware (the "
        "guest would no longer boot): use a VM installed with EFI, or smaller devices"
    )
    return Problem(FIRMWARE_NOT_EFI, message)


def hardware_version(vm: ObservedVM) -> int:
    """`config.version` "vmx-19" -> 19; 0 when unreadable."""
    digits = vm.hardware_version.removeprefix("vmx-")
    return int(digits) if digits.isdigit() else 0


def needs_upgrade(vm: ObservedVM) -> bool:
    return hardware_version(vm) < DYNAMIC_MIN_VERSION


def hardware_problem(vm: ObservedVM) -> Problem:
    message = (
        f"VM {vm.name} has hardware version {vm.hardware_version or 'unknown'}; Dynamic "
        f"DirectPath needs vmx-{DYNAMIC_MIN_VERSION} or later. Upgrade the VM's compatibility, "
        "or set spec.upgradeHardwareVersion: true to let the operator upgrade it while it is "
        "powered off (not undone on delete)"
    )
    return Problem(HARDWARE_VERSION_TOO_OLD, message)
