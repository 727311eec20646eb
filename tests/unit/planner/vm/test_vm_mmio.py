"""Ready means the VM powers on: 64-bit MMIO for large-BAR devices, EFI, hardware version 17."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.planner.vm.builders import (
    A100_DEVICE,
    A100_VENDOR,
    GPU,
    GPU2,
    NOW,
    NS,
    assignment,
    attached,
    observe,
    plan,
    policy,
    row,
    vm,
)

from dpio.api.assignment import VMDeviceAssignmentSpec, VMDeviceAssignmentStatus
from dpio.api.conditions import FIRMWARE_NOT_EFI, HARDWARE_VERSION_TOO_OLD
from dpio.api.policy import DeviceState
from dpio.api.vm_settings import PreviousMmio, PreviousSettings
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.mmio import MMIO_SIZE_GB, USE_64BIT_MMIO, MmioNeed
from dpio.planner.vm.observed import (
    POWERED_ON,
    ConfigTarget,
    ConfigTargetDynamic,
    ConfigTargetPci,
    DynamicBacking,
    ObservedPciDevice,
    PolicyView,
    StaticBacking,
)
from dpio.planner.vm.power import PowerAction, PowerTracking
from dpio.planner.vm.status import assignment_status

ON_64BIT = ((USE_64BIT_MMIO, "TRUE"), (MMIO_SIZE_GB, "128"))
T4 = 0x1EB8
RTX6000 = 0x1E30  # not in the table of well-known devices


def on_host(*devices: tuple[str, int], selectors: list[dict[str, Any]] | None = None) -> Any:
    """`observe` fields: a host offering these (address, NVIDIA device id) devices."""
    target = ConfigTarget(
        pci_passthrough=tuple(
            ConfigTargetPci(a, "sys-1", A100_VENDOR, d, f"dev {d:x}") for a, d in devices
        ),
        dynamic_passthrough=(ConfigTargetDynamic(A100_VENDOR, A100_DEVICE, "a100"),),
    )
    rows = tuple(row(a, deviceID=f"{d:04x}") for a, d in devices)
    spec = policy(devices=selectors) if selectors is not None else policy()
    return {"config_target": target, "policy": PolicyView("gpu-hosts", spec, rows)}


def gpus(*addresses: str) -> VMDeviceAssignmentSpec:
    return assignment(
        devices=[{"name": f"gpu{i}", "pci": {"address": a}} for i, a in enumerate(addresses)]
    )


@pytest.mark.parametrize(
    ("sizes", "needs", "window"),
    [
        ((16,), False, 16),  # one device up to 16 GB fits the default window
        ((17,), True, 32),
        ((16, 16), False, 32),  # 32 GB in all still fits
        ((16, 16, 1), True, 64),
        ((128,), True, 128),  # an A100 80GB: exactly a power of two
        ((128, 128), True, 256),
        ((64, 32, 1), True, 128),  # rounded up to a power of two (VMware's advice)
        ((), False, 1),
    ],
)
def test_what_the_default_mmio_window_holds(
    sizes: tuple[int, ...], needs: bool, window: int
) -> None:
    found = MmioNeed(sum(sizes), max(sizes, default=0))
    assert (found.needs_64bit, found.window_gb) == (needs, window)


def test_an_a100_gets_the_64bit_mmio_window_in_the_same_reconfigure() -> None:
    result = plan(observe())
    assert result.calls.reconfigure is not None
    assert [a.name for a in result.calls.reconfigure.adds] == ["gpu0"]
    assert result.calls.reconfigure.extra_config == ON_64BIT
    assert result.outcome.previous is not None
    assert result.outcome.previous.mmio == PreviousMmio()  # both keys were absent
    status = assignment_status(result, previous=None, generation=1, now=NOW)
    assert status.vm is not None
    assert (status.vm.mmio_size_gb, status.vm.firmware) == (128, "efi")


def test_two_a100s_need_a_256_gb_window() -> None:
    result = plan(observe(**on_host((GPU, A100_DEVICE), (GPU2, A100_DEVICE))), gpus(GPU, GPU2))
    assert result.calls.reconfigure is not None
    assert dict(result.calls.reconfigure.extra_config) == {
        USE_64BIT_MMIO: "TRUE",
        MMIO_SIZE_GB: "256",
    }


def test_a_small_device_changes_no_mmio_setting_even_on_a_bios_vm() -> None:
    result = plan(observe(vm(firmware="bios"), **on_host((GPU, T4))))
    assert result.outcome.stalled is None
    assert result.calls.reconfigure is not None
    assert result.calls.reconfigure.extra_config == ()
    assert result.outcome.previous is not None
    assert result.outcome.previous.mmio is None


@pytest.mark.parametrize(
    ("use64", "size", "change"),
    [
        ("TRUE", "128", ()),  # already enough
        ("true", "256", ()),  # the VMX reads the value case-insensitively; a bigger window stays
        ("TRUE", "64", ON_64BIT),  # too small
        ("FALSE", "128", ON_64BIT),
        (None, "512", ((USE_64BIT_MMIO, "TRUE"), (MMIO_SIZE_GB, "512"))),  # keeps the larger size
        ("TRUE", "lots", ON_64BIT),  # not a number: as if unset
    ],
)
def test_existing_mmio_settings_are_kept_when_they_suffice(
    use64: str | None, size: str, change: tuple[tuple[str, str], ...]
) -> None:
    result = plan(observe(vm(use64bit_mmio=use64, mmio_size_gb=size)))
    assert result.calls.reconfigure is not None
    assert result.calls.reconfigure.extra_config == change


def test_a_bios_vm_is_refused_and_left_untouched() -> None:
    result = plan(observe(vm(firmware="bios")))
    assert result.outcome.stalled is not None
    assert result.outcome.stalled.reason == FIRMWARE_NOT_EFI
    assert "128 GB" in result.outcome.stalled.message
    assert "EFI" in result.outcome.stalled.message
    assert result.empty  # no reconfigure, no power action, no reservation lock
    status = assignment_status(result, previous=None, generation=1, now=NOW)
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert (stalled.status, stalled.reason, ready.status) == ("True", FIRMWARE_NOT_EFI, "False")


def test_a_bios_vm_that_runs_with_its_devices_already_is_not_stalled() -> None:
    # vSphere powered it on: whatever the table says, its devices fit. No false alarm.
    running = vm(firmware="bios", power_state=POWERED_ON, pci_devices=(attached(),))
    result = plan(observe(running))
    assert result.outcome.stalled is None


def test_a_bios_vm_with_the_device_already_attached_but_off_is_stalled() -> None:
    # It could not power on: Ready would be a lie.
    stopped = vm(firmware="bios", pci_devices=(attached(),), memory_reservation_locked_to_max=True)
    result = plan(observe(stopped))
    assert result.outcome.stalled is not None
    assert result.outcome.stalled.reason == FIRMWARE_NOT_EFI


def test_a_powered_off_vm_with_its_devices_gets_the_missing_window() -> None:
    stopped = vm(pci_devices=(attached(),), memory_reservation_locked_to_max=True)
    result = plan(observe(stopped))
    assert result.calls.reconfigure is not None
    assert (result.calls.reconfigure.adds, result.calls.reconfigure.extra_config) == ((), ON_64BIT)
    assert result.calls.power_before is None  # it is off: no power cycle


def test_a_running_vm_that_already_has_its_devices_is_not_power_cycled_for_mmio() -> None:
    running = vm(
        power_state=POWERED_ON, pci_devices=(attached(),), memory_reservation_locked_to_max=True
    )
    result = plan(observe(running))
    assert result.empty


def test_the_selector_states_what_the_table_does_not_know() -> None:
    unknown = on_host((GPU, RTX6000))
    assert plan(observe(**unknown)).calls.reconfigure.extra_config == ()  # type: ignore[union-attr]
    stated = on_host(
        (GPU, RTX6000), selectors=[{"vendorID": "10de", "deviceID": "1e30", "mmioSizeGB": 32}]
    )
    result = plan(observe(**stated))
    assert result.calls.reconfigure is not None
    assert dict(result.calls.reconfigure.extra_config) == {
        USE_64BIT_MMIO: "TRUE",
        MMIO_SIZE_GB: "32",
    }
    bios = plan(observe(vm(firmware="bios"), **stated))
    assert bios.outcome.stalled is not None
    assert bios.outcome.stalled.reason == FIRMWARE_NOT_EFI


def test_the_selector_wins_over_the_table() -> None:
    small = on_host((GPU, A100_DEVICE), selectors=[{"address": GPU, "mmioSizeGB": 8}])
    result = plan(observe(**small))
    assert result.calls.reconfigure is not None
    assert result.calls.reconfigure.extra_config == ()


def test_devices_already_on_the_vm_count_too() -> None:
    # Someone's A100 is on the VM already (window 128); ours makes 256 together.
    other = ObservedPciDevice(
        13001, "PCI device 1", StaticBacking(GPU2, "20b5", "sys-1", A100_VENDOR)
    )
    the_vm = vm(pci_devices=(other,), use64bit_mmio="TRUE", mmio_size_gb="128")
    result = plan(observe(the_vm, **on_host((GPU, A100_DEVICE), (GPU2, A100_DEVICE))))
    assert result.calls.reconfigure is not None
    assert dict(result.calls.reconfigure.extra_config)[MMIO_SIZE_GB] == "256"
    assert result.outcome.previous is not None
    assert result.outcome.previous.mmio == PreviousMmio(use64bit_mmio="TRUE", size_gb="128")


DYNAMIC = [{"name": "gpu0", "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}}]


def test_a_dynamic_device_counts_by_its_ids() -> None:
    result = plan(observe(), assignment(devices=DYNAMIC))
    assert result.calls.reconfigure is not None
    assert isinstance(result.calls.reconfigure.adds[0].backing, DynamicBacking)
    assert result.calls.reconfigure.extra_config == ON_64BIT


@pytest.mark.parametrize("version", ["vmx-14", "vmx-16", ""])
def test_dynamic_directpath_below_vmx17_is_refused(version: str) -> None:
    result = plan(observe(vm(hardware_version=version)), assignment(devices=DYNAMIC))
    assert result.outcome.stalled is not None
    assert result.outcome.stalled.reason == HARDWARE_VERSION_TOO_OLD
    assert "upgradeHardwareVersion" in result.outcome.stalled.message
    assert result.empty


def test_a_static_device_needs_no_hardware_upgrade() -> None:
    result = plan(observe(vm(hardware_version="vmx-14")))
    assert result.outcome.stalled is None
    assert result.calls.upgrade is None


def test_opted_in_the_vm_is_upgraded_alone_while_off_then_reconfigured() -> None:
    spec = assignment(devices=DYNAMIC, upgradeHardwareVersion=True)
    first = plan(observe(vm(hardware_version="vmx-15")), spec)
    assert first.calls.upgrade is not None
    assert (first.calls.upgrade.version, first.calls.upgrade.previous) == ("vmx-17", "vmx-15")
    assert first.calls.reconfigure is None
    assert first.calls.power_after is None
    assert first.outcome.previous == PreviousSettings(hardware_version="vmx-15")
    assert first.outcome.requeue_after is not None
    status = VMDeviceAssignmentStatus(previous=first.outcome.previous)
    second = plan(observe(vm(hardware_version="vmx-17")), spec, previous=status)
    assert second.calls.upgrade is None
    assert second.calls.reconfigure is not None
    assert len(second.calls.reconfigure.adds) == 1
    assert second.outcome.previous is not None
    assert second.outcome.previous.hardware_version == "vmx-15"


def test_opted_in_a_running_vm_is_not_upgraded_before_it_is_off() -> None:
    spec = assignment(devices=DYNAMIC, upgradeHardwareVersion=True)
    running = plan(observe(vm(hardware_version="vmx-15", power_state=POWERED_ON)), spec)
    assert running.calls.upgrade is None
    assert running.outcome.change_pending
    forced = plan(
        observe(vm(hardware_version="vmx-15", power_state=POWERED_ON)),
        assignment(devices=DYNAMIC, upgradeHardwareVersion=True, powerPolicy="PowerOff"),
    )
    assert forced.calls.upgrade is None
    assert forced.calls.power_before is PowerAction.POWER_OFF


def test_after_the_upgrade_the_vm_powered_off_by_the_operator_comes_back() -> None:
    spec = assignment(devices=DYNAMIC, upgradeHardwareVersion=True, powerPolicy="PowerOff")
    tracking = PowerTracking(powered_off_by_operator=True)
    upgraded = plan(observe(vm(hardware_version="vmx-15")), spec, tracking=tracking)
    assert upgraded.calls.upgrade is not None
    assert upgraded.calls.power_after is None
    assert upgraded.outcome.tracking == tracking  # the promise to power it back on is kept


def deletion(the_vm: Any, previous: dict[str, Any], **observed: Any) -> Any:
    status = VMDeviceAssignmentStatus.model_validate(previous)
    return plan_assignment_deletion(
        namespace=NS,
        spec=assignment(),
        observed=observe(the_vm, **observed),
        now=NOW,
        previous=status,
    )


OURS = {"name": "gpu0", "kind": "pci", "attached": True, "key": 13000, "added": True}


def test_delete_puts_the_mmio_settings_back_when_no_device_is_left() -> None:
    the_vm = vm(
        pci_devices=(attached(),),
        memory_reservation_locked_to_max=True,
        use64bit_mmio="TRUE",
        mmio_size_gb="128",
    )
    previous = {"devices": [OURS], "previous": {"memoryReservationLockedToMax": False, "mmio": {}}}
    result = deletion(the_vm, previous)
    assert result.calls.reconfigure is not None
    assert [r.key for r in result.calls.reconfigure.removes] == [13000]
    # "" removes a key that was absent before (ConfigSpec.extraConfig)
    assert result.calls.reconfigure.extra_config == ((USE_64BIT_MMIO, ""), (MMIO_SIZE_GB, ""))
    assert result.calls.reconfigure.memory_reservation_locked_to_max is False


def test_delete_restores_recorded_values() -> None:
    the_vm = vm(pci_devices=(attached(),), use64bit_mmio="TRUE", mmio_size_gb="128")
    recorded = {"mmio": {"use64bitMMIO": "FALSE", "sizeGB": "64"}}
    result = deletion(the_vm, {"devices": [OURS], "previous": recorded})
    assert result.calls.reconfigure is not None
    assert result.calls.reconfigure.extra_config == (
        (USE_64BIT_MMIO, "FALSE"),
        (MMIO_SIZE_GB, "64"),
    )


def test_delete_keeps_what_the_devices_left_on_the_vm_need() -> None:
    other = ObservedPciDevice(
        13001, "PCI device 1", StaticBacking(GPU2, "20b5", "sys-1", A100_VENDOR)
    )
    the_vm = vm(
        pci_devices=(attached(), other),
        memory_reservation_locked_to_max=True,
        use64bit_mmio="TRUE",
        mmio_size_gb="256",
    )
    previous = {"devices": [OURS], "previous": {"memoryReservationLockedToMax": False, "mmio": {}}}
    result = deletion(the_vm, previous, **on_host((GPU, A100_DEVICE), (GPU2, A100_DEVICE)))
    assert result.calls.reconfigure is not None
    assert [r.key for r in result.calls.reconfigure.removes] == [13000]
    assert result.calls.reconfigure.extra_config == ()  # the other A100 still needs its window
    assert result.calls.reconfigure.memory_reservation_locked_to_max is None  # and the lock


def test_the_hardware_version_is_not_restored_on_delete() -> None:
    the_vm = vm(
        hardware_version="vmx-17",
        pci_devices=(attached(),),
        use64bit_mmio="TRUE",
        mmio_size_gb="128",
    )
    recorded = {"hardwareVersion": "vmx-15", "mmio": {}}
    result = deletion(the_vm, {"devices": [OURS], "previous": recorded})
    assert result.calls.upgrade is None
    assert result.calls.reconfigure is not None
    assert result.calls.reconfigure.removes


def test_a_bios_vm_is_refused_even_while_its_gpu_is_busy_elsewhere() -> None:
    # Waiting for the GPU would end in a VM that can't power on: say so now.
    busy = observe(vm(firmware="bios"), attached_to_vms={GPU: ("other-vm",)})
    result = plan(busy)
    assert result.outcome.stalled is not None
    assert result.outcome.stalled.reason == FIRMWARE_NOT_EFI
    assert [c.name for c in result.outcome.unavailable] == ["gpu0"]
    assert result.empty


def test_a_static_device_not_active_yet_is_sized_from_the_policy_status() -> None:
    # Not in ConfigTarget (pending a host reboot): the policy's row names its ids.
    pending = observe(
        vm(firmware="bios"),
        config_target=ConfigTarget(),
        policy=PolicyView("gpu-hosts", policy(), (row(GPU, state=DeviceState.PENDING_REBOOT),)),
    )
    result = plan(pending)
    assert result.outcome.stalled is not None
    assert result.outcome.stalled.reason == FIRMWARE_NOT_EFI
