"""Pure builders: the planner's `ReconfigVM` / `ReconfigureCluster` -> pyVmomi specs (no calls).

docs/design.md, "VM side: device changes": one `VirtualMachineConfigSpec` per change with every
device change, removes before adds (vm-operator configspec_pci_devices.go), negative temporary
keys for new devices (vSphere API reference, VirtualDevice.key), `memoryReservationLockedToMax`
and `changeVersion` so that a concurrent edit fails with ConcurrentAccess instead of being
overwritten.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pyVmomi import vim

from dpio.planner.vm.changes import NicEdit, ReconfigureCluster, ReconfigVM
from dpio.planner.vm.conflicts import DasOverrideChange, DrsOverrideChange
from dpio.planner.vm.devices import DeviceAdd, DeviceRemove
from dpio.planner.vm.observed import Backing, StaticBacking
from dpio.vsphere.errors import InvalidRequest

# pyVmomi data object constructors take untyped keyword arguments: used as Any on purpose.
V: Any = vim
ADD, EDIT, REMOVE = (
    "add",
    "edit",
    "remove",
)  # VirtualDeviceConfigSpecOperation / ArrayUpdateOperation


def backing_info(backing: Backing) -> Any:
    """Static: `VirtualPCIPassthroughDeviceBackingInfo{id, deviceId, systemId, vendorId}` with
    `deviceId` the lower-case hex string (a decimal string makes power-on fail, govmomi
    #2248/#2249) and `vendorId` the signed int16 the WSDL declares (xsd:short, govmomi #2248).

    Dynamic (7.0+): `VirtualPCIPassthroughDynamicBackingInfo{allowedDevice[], customLabel}`;
    `allowedDevice` ids are xsd:int and take the unsigned value ConfigTarget.dynamicPassthrough
    reports (vSphere API reference, VirtualPCIPassthroughAllowedDevice; packer-plugin-vsphere
    #263). `deviceName` is required by the WSDL and ignored by vCenter for both.
    """
    if isinstance(backing, StaticBacking):
        return V.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(
            deviceName="",
            id=backing.id,
            deviceId=backing.device_id,
            systemId=backing.system_id,
            vendorId=backing.vendor_id_short,
        )
    allowed = [
        V.vm.device.VirtualPCIPassthrough.AllowedDevice(vendorId=vendor, deviceId=device)
        for vendor, device in backing.allowed_devices
    ]
    return V.vm.device.VirtualPCIPassthrough.DynamicBackingInfo(
        deviceName="", allowedDevice=allowed, customLabel=backing.custom_label
    )


def add_device(add: DeviceAdd) -> Any:
    """vCenter picks the PCI controller and the label ("PCI device N") itself."""
    device = V.vm.device.VirtualPCIPassthrough(key=add.key, backing=backing_info(add.backing))
    return V.vm.device.VirtualDeviceSpec(operation=ADD, device=device)


def remove_device(remove: DeviceRemove) -> Any:
    """vCenter finds the device to remove by its key (vSphere API reference, VirtualDevice.key)."""
    device = V.vm.device.VirtualPCIPassthrough(key=remove.key)
    return V.vm.device.VirtualDeviceSpec(operation=REMOVE, device=device)


def edit_nic(edit: NicEdit, current: Mapping[int, Any]) -> Any:
    """An edit replaces the device with the one sent, so the adapter as read goes back whole,
    with only `uptCompatibilityEnabled` changed (vSphere API reference, VirtualDeviceConfigSpec)."""
    found = current.get(edit.key)
    if found is None:
        raise InvalidRequest(f"no device with key {edit.key} ({edit.label}) on the VM")
    device = copy.deepcopy(found)
    device.uptCompatibilityEnabled = edit.upt_compatibility_enabled
    return V.vm.device.VirtualDeviceSpec(operation=EDIT, device=device)


def config_spec(change: ReconfigVM, current_devices: Mapping[int, Any] | None = None) -> Any:
    """The `VirtualMachineConfigSpec` for `change`; fields the change leaves None stay unset.

    `current_devices` (key -> device as read) is needed only for NIC edits.
    """
    device_changes = [
        *(remove_device(r) for r in change.removes),
        *(add_device(a) for a in change.adds),
        *(edit_nic(e, current_devices or {}) for e in change.nic_edits),
    ]
    spec = V.vm.ConfigSpec(changeVersion=change.change_version or None)
    if device_changes:
        spec.deviceChange = device_changes
    flags = {
        "memoryReservationLockedToMax": change.memory_reservation_locked_to_max,
        "cpuHotAddEnabled": change.cpu_hot_add_enabled,
        "memoryHotAddEnabled": change.memory_hot_add_enabled,
        "nestedHVEnabled": change.nested_hv_enabled,
    }
    for name, value in flags.items():
        if value is not None:
            setattr(spec, name, value)
    if change.extra_config:
        # An empty value removes the key (vSphere API reference, ConfigSpec.extraConfig).
        spec.extraConfig = [V.option.OptionValue(key=k, value=v) for k, v in change.extra_config]
    return spec


def drs_vm_spec(change: DrsOverrideChange, vm: Any) -> Any:
    """`ClusterDrsVmConfigSpec`: remove by `removeKey` (the VM), add/edit with the info."""
    if change.operation == REMOVE:
        return V.cluster.DrsVmConfigSpec(operation=REMOVE, removeKey=vm)
    info = V.cluster.DrsVmConfigInfo(key=vm, enabled=change.enabled, behavior=change.behavior)
    return V.cluster.DrsVmConfigSpec(operation=change.operation, info=info)


def das_vm_spec(change: DasOverrideChange, vm: Any) -> Any:
    """`ClusterDasVmConfigSpec` with `dasSettings.restartPriority` (e.g. `disabled`)."""
    if change.operation == REMOVE:
        return V.cluster.DasVmConfigSpec(operation=REMOVE, removeKey=vm)
    settings = V.cluster.DasVmSettings(restartPriority=change.restart_priority)
    info = V.cluster.DasVmConfigInfo(key=vm, dasSettings=settings)
    return V.cluster.DasVmConfigSpec(operation=change.operation, info=info)


def cluster_spec(change: ReconfigureCluster, vm: Any) -> Any:
    """`ClusterConfigSpecEx` for `ReconfigureComputeResource_Task(spec, modify=True)`; `vm` is
    the VirtualMachine reference the overrides are keyed by."""
    spec = V.cluster.ConfigSpecEx()
    if change.drs is not None:
        spec.drsVmConfigSpec = [drs_vm_spec(change.drs, vm)]
    if change.das is not None:
        spec.dasVmConfigSpec = [das_vm_spec(change.das, vm)]
    return spec
