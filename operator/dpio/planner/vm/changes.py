"""The vSphere calls a VM plan makes, as data: one `ReconfigVM_Task` carrying every VM change,
one `ReconfigureComputeResource_Task` for the cluster overrides, and `status.previous`.

docs/design.md, "VM side: device changes": one ReconfigVM per change with every device change,
`memoryReservationLockedToMax: true` (a passthrough VM needs its full memory reserved, else
power-on fails "memory reservation (sched.mem.min) should be equal to memsize", BOSH vSphere CPI
PR #372), unique negative temporary keys and `changeVersion`, so a concurrent edit in vCenter
fails instead of being overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpio.api.vm_settings import DasVmOverride, DrsVmOverride, PreviousMmio, PreviousSettings
from dpio.planner.vm.conflicts import DasOverrideChange, DrsOverrideChange
from dpio.planner.vm.devices import DeviceAdd, DeviceRemove
from dpio.planner.vm.mmio import MMIO_SIZE_GB, USE_64BIT_MMIO
from dpio.planner.vm.observed import ObservedCluster, ObservedVM


@dataclass(frozen=True, slots=True)
class NicEdit:
    """`VirtualDeviceConfigSpec` operation edit of a vmxnet3 adapter: Gen2 on."""

    key: int
    label: str
    upt_compatibility_enabled: bool = True


@dataclass(frozen=True, slots=True)
class ReconfigVM:
    """One `VirtualMachine.ReconfigVM_Task(spec)`; None fields are left out of the ConfigSpec.

    `removes` go before `adds` in `deviceChange` (vm-operator configspec_pci_devices.go).
    """

    moref: str
    change_version: str
    removes: tuple[DeviceRemove, ...] = ()
    adds: tuple[DeviceAdd, ...] = ()
    nic_edits: tuple[NicEdit, ...] = ()
    memory_reservation_locked_to_max: bool | None = None
    cpu_hot_add_enabled: bool | None = None
    memory_hot_add_enabled: bool | None = None
    nested_hv_enabled: bool | None = None
    # config.extraConfig to set (key, value); "" removes the key (vSphere API reference,
    # VirtualMachineConfigSpec.extraConfig). Only the 64-bit MMIO keys (vm.mmio).
    extra_config: tuple[tuple[str, str], ...] = ()

    @property
    def needs_power_off(self) -> bool:
        """PCI devices, hot add and nested HV change only while the VM is powered off
        (vSphere Virtual Machine Administration); the reservation lock and a NIC edit do not.
        The MMIO settings are read at power-on: they go with the devices, VM off."""
        return bool(
            self.removes
            or self.adds
            or self.cpu_hot_add_enabled is not None
            or self.memory_hot_add_enabled is not None
            or self.nested_hv_enabled is not None
            or self.extra_config
        )

    @property
    def empty(self) -> bool:
        return not (
            self.needs_power_off
            or self.nic_edits
            or self.memory_reservation_locked_to_max is not None
        )


@dataclass(frozen=True, slots=True)
class UpgradeVM:
    """`VirtualMachine.UpgradeVM_Task(version)`, VM powered off; `previous` is what it was."""

    moref: str
    version: str
    previous: str


@dataclass(frozen=True, slots=True)
class ReconfigureCluster:
    """`ClusterComputeResource.ReconfigureComputeResource_Task(spec, modify=True)` with this VM's
    `drsVmConfigSpec` / `dasVmConfigSpec` (vSphere API reference)."""

    cluster_moref: str
    vm_moref: str
    drs: DrsOverrideChange | None = None
    das: DasOverrideChange | None = None


def vm_settings(vm: ObservedVM, change: ReconfigVM) -> PreviousSettings:
    """The VM's current value of every setting `change` touches, before it does."""
    return PreviousSettings(
        memory_reservation_locked_to_max=vm.memory_reservation_locked_to_max
        if change.memory_reservation_locked_to_max is not None
        else None,
        cpu_hot_add_enabled=vm.cpu_hot_add_enabled
        if change.cpu_hot_add_enabled is not None
        else None,
        memory_hot_add_enabled=vm.memory_hot_add_enabled
        if change.memory_hot_add_enabled is not None
        else None,
        nested_hv_enabled=vm.nested_hv_enabled if change.nested_hv_enabled is not None else None,
        mmio=PreviousMmio(use64bit_mmio=vm.use64bit_mmio, size_gb=vm.mmio_size_gb)
        if change.extra_config
        else None,
    )


def cluster_settings(cluster: ObservedCluster, change: ReconfigureCluster) -> PreviousSettings:
    drs = das = None
    if change.drs is not None:
        existed = cluster.vm_drs_behavior is not None or cluster.vm_drs_enabled is not None
        drs = DrsVmOverride(
            existed=existed, enabled=cluster.vm_drs_enabled, behavior=cluster.vm_drs_behavior
        )
    if change.das is not None:
        existed = cluster.vm_das_restart_priority is not None
        das = DasVmOverride(existed=existed, restart_priority=cluster.vm_das_restart_priority)
    return PreviousSettings(drs_override=drs, das_override=das)


def merge_previous(
    kept: PreviousSettings | None, *found: PreviousSettings
) -> PreviousSettings | None:
    """Fill only the fields `kept` does not have yet: a value recorded before the first change is
    never overwritten (it would record the operator's own setting as the user's)."""
    values = kept.model_dump() if kept is not None else {}
    for settings in found:
        for name, value in settings.model_dump().items():
            if values.get(name) is None and value is not None:
                values[name] = value
    if not any(v is not None for v in values.values()):
        return kept
    return PreviousSettings.model_validate(values)


def restore_vm(vm: ObservedVM, previous: PreviousSettings | None) -> dict[str, bool]:
    """ReconfigVM fields that put back what `previous` recorded and the VM no longer has."""
    if previous is None:
        return {}
    pairs = {
        "memory_reservation_locked_to_max": (
            previous.memory_reservation_locked_to_max,
            vm.memory_reservation_locked_to_max,
        ),
        "cpu_hot_add_enabled": (previous.cpu_hot_add_enabled, vm.cpu_hot_add_enabled),
        "memory_hot_add_enabled": (previous.memory_hot_add_enabled, vm.memory_hot_add_enabled),
        "nested_hv_enabled": (previous.nested_hv_enabled, vm.nested_hv_enabled),
    }
    return {k: was for k, (was, now) in pairs.items() if was is not None and was != now}


def restore_mmio(vm: ObservedVM, previous: PreviousSettings | None) -> tuple[tuple[str, str], ...]:
    """extraConfig that puts back the 64-bit MMIO settings `previous` recorded ("" removes a key
    that was absent). The caller decides whether the devices left still need them."""
    if previous is None or previous.mmio is None:
        return ()
    pairs = (
        (USE_64BIT_MMIO, previous.mmio.use64bit_mmio, vm.use64bit_mmio),
        (MMIO_SIZE_GB, previous.mmio.size_gb, vm.mmio_size_gb),
    )
    return tuple((key, was or "") for key, was, now in pairs if (was or "") != (now or ""))


def restore_cluster(vm: ObservedVM, previous: PreviousSettings | None) -> ReconfigureCluster | None:
    """Put the VM's DRS/HA overrides back, or remove the ones the operator created."""
    cluster = vm.cluster
    if previous is None or cluster is None:
        return None
    drs = das = None
    if previous.drs_override is not None:
        old = previous.drs_override
        now = (cluster.vm_drs_enabled, cluster.vm_drs_behavior)
        if old.existed and now != (old.enabled, old.behavior):
            drs = DrsOverrideChange("edit", enabled=old.enabled, behavior=old.behavior)
        elif not old.existed and now != (None, None):
            drs = DrsOverrideChange("remove")
    if previous.das_override is not None:
        old_das = previous.das_override
        if old_das.existed and cluster.vm_das_restart_priority != old_das.restart_priority:
            das = DasOverrideChange("edit", old_das.restart_priority)
        elif not old_das.existed and cluster.vm_das_restart_priority is not None:
            das = DasOverrideChange("remove")
    if drs is None and das is None:
        return None
    return ReconfigureCluster(cluster.moref, vm.moref, drs, das)
