"""Pure mapping of the EnvironmentBrowser's answers: ConfigTarget and VirtualMachineConfigOption.

`QueryConfigTarget(host)` lists what the host offers a VM right now: `pciPassthrough[]`
(VirtualMachinePciPassthroughInfo, ACTIVE passthrough devices only) and `dynamicPassthrough[]`
(VirtualMachineDynamicPassthroughInfo, 7.0+). `QueryConfigOption(key, host)` carries the per-VM
passthrough maximum on the PCI controller option (vSphere API reference,
VirtualPCIControllerOption.numPCIPassthroughDevices; docs/design.md, "VM side: device limit").
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from dpio.planner.vm.observed import ConfigTarget, ConfigTargetDynamic, ConfigTargetPci


def _list(value: Any) -> list[Any]:
    return list(value) if value else []


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def target_pci(info: Any) -> ConfigTargetPci:
    """Ids arrive as the host's signed int16 (govmomi #2248); the planner type masks them."""
    device = info.pciDevice
    return ConfigTargetPci(
        id=_str(device.id),
        system_id=_str(info.systemId),
        vendor_id=int(device.vendorId or 0),
        device_id=int(device.deviceId or 0),
        name=_str(getattr(info, "name", "") or getattr(device, "deviceName", "")),
    )


def target_dynamic(info: Any) -> ConfigTargetDynamic:
    return ConfigTargetDynamic(
        vendor_id=int(info.vendorId or 0),
        device_id=int(info.deviceId or 0),
        custom_label=_str(getattr(info, "customLabel", "")),
        name=_str(getattr(info, "name", "") or getattr(info, "deviceName", "")),
    )


def config_target(target: Any) -> ConfigTarget:
    """`vim.vm.ConfigTarget` (or None: the host offers nothing) -> the planner's view."""
    if target is None:
        return ConfigTarget()
    pci = tuple(
        target_pci(i)
        for i in _list(getattr(target, "pciPassthrough", None))
        if getattr(i, "pciDevice", None) is not None
    )
    dynamic = tuple(target_dynamic(i) for i in _list(getattr(target, "dynamicPassthrough", None)))
    return ConfigTarget(pci_passthrough=pci, dynamic_passthrough=dynamic)


def passthrough_limit(option: Any) -> int | None:
    """`numPCIPassthroughDevices.max` of the PCI controller option; None when not reported
    (the planner then falls back to its version table, planner/vm/rules.py)."""
    hardware = getattr(option, "hardwareOptions", None)
    for device_option in _list(getattr(hardware, "virtualDeviceOption", None)):
        if isinstance(device_option, vim.vm.device.VirtualPCIControllerOption):
            limit = getattr(device_option, "numPCIPassthroughDevices", None)
            if limit is not None and limit.max is not None:
                return int(limit.max)
    return None
