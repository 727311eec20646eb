"""Pure mapping from PropertyCollector results to the VM planner's `ObservedVM` (no calls here).

Values are pyVmomi data objects already in memory; every property may be missing (an
inaccessible VM, a disconnected host, a simulator gap) and missing means empty or None, never an
exception. Names follow the vSphere API reference of each type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyVmomi import vim

from dpio.planner.observed import normalize_pci_address
from dpio.planner.vm.mmio import MMIO_SIZE_GB, USE_64BIT_MMIO
from dpio.planner.vm.observed import (
    POWERED_OFF,
    Backing,
    DynamicBacking,
    ObservedCluster,
    ObservedNic,
    ObservedPciDevice,
    ObservedVM,
    StaticBacking,
)
from dpio.vsphere.inventory_map import passthrough_backing_ids
from dpio.vsphere.properties import ObjectProps, moref_id, moref_kind

VM, HOST, CLUSTER, PORTGROUP = (
    "VirtualMachine",
    "HostSystem",
    "ClusterComputeResource",
    "DistributedVirtualPortgroup",
)
PCI_PASSTHROUGH = "VirtualPCIPassthrough"
# ClusterDasVmSettingsRestartPriority: an override that leaves the priority to the cluster.
CLUSTER_RESTART_PRIORITY = "clusterRestartPriority"

# The VM an assignment names: everything the VM planner reads, nothing more (the call budget in
# docs/design.md, "vCenter access").
VM_PATHS: tuple[str, ...] = (
    "name",
    "config.instanceUuid",
    "config.version",
    "config.changeVersion",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.memoryAllocation.reservation",
    "config.memoryReservationLockedToMax",
    "config.cpuHotAddEnabled",
    "config.memoryHotAddEnabled",
    "config.nestedHVEnabled",
    "config.ftInfo",
    "config.firmware",
    "config.extraConfig",  # only pciPassthru.use64bitMMIO / 64bitMMIOSizeGB are kept (vm.mmio)
    "snapshot",
    "runtime.powerState",
    "runtime.host",
    "runtime.device",
    "environmentBrowser",
    "parent",  # its folder, and
    "resourcePool",  # its pool: where tenancy scopes it (placement.py)
)
# The other VMs of its host: only which host PCI devices they hold.
OTHER_VM_PATHS: tuple[str, ...] = ("name", "config.hardware.device")
HOST_PATHS: tuple[str, ...] = (
    "name",
    "parent",
    "vm",  # which of the VMs read are this host's (a batched read holds others too: batch.py)
    "config.product.version",
    "hardware.systemInfo.uuid",
    "capability.vmDirectPathGen2Supported",
    "capability.vmDirectPathGen2UnsupportedReason",
    "capability.vmDirectPathGen2UnsupportedReasonExtended",
    "config.pciPassthruInfo",  # only to know when QueryConfigTarget may answer differently
)
CLUSTER_PATHS: tuple[str, ...] = ("name", "configurationEx")
PORTGROUP_PATHS: tuple[str, ...] = ("name", "key", "config.defaultPortConfig")


def _list(value: Any) -> list[Any]:
    return list(value) if value else []


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def backing(device: Any) -> Backing | None:
    """The planner's backing of a `VirtualPCIPassthrough`; None for others (vGPU `vmiop`)."""
    info: Any = getattr(device, "backing", None)
    kind = moref_kind(info)
    if kind == "VirtualPCIPassthroughDeviceBackingInfo":
        return StaticBacking(
            id=_str(info.id),
            device_id=_str(info.deviceId),
            system_id=_str(info.systemId),
            vendor_id=int(info.vendorId or 0),
        )
    if kind == "VirtualPCIPassthroughDynamicBackingInfo":
        allowed = tuple(
            (int(a.vendorId or 0), int(a.deviceId or 0)) for a in _list(info.allowedDevice)
        )
        return DynamicBacking(allowed, _str(info.customLabel))
    return None


def pci_device(device: Any) -> ObservedPciDevice:
    found = backing(device)
    assigned = getattr(device.backing, "assignedId", None) if found is not None else None
    return ObservedPciDevice(
        key=int(device.key),
        label=_str(getattr(getattr(device, "deviceInfo", None), "label", "")),
        backing=found,
        assigned_id=normalize_pci_address(assigned) if assigned else None,
    )


def pci_devices(devices: Iterable[Any]) -> tuple[ObservedPciDevice, ...]:
    return tuple(pci_device(d) for d in devices if moref_kind(d) == PCI_PASSTHROUGH)


def is_ethernet_card(device: Any) -> bool:
    """`VirtualEthernetCard` or a subtype (vmxnet3, e1000e, ...)."""
    return isinstance(device, vim.vm.device.VirtualEthernetCard)


def nic_kind(device: Any) -> str:
    """`VirtualVmxnet3` -> `vmxnet3` (the subtype name, as the vSphere Client shows it)."""
    return moref_kind(device).removeprefix("Virtual").lower()


def gen2_allowed_by_portgroup(portgroups: Iterable[ObjectProps]) -> dict[str, tuple[str, bool]]:
    """Port group key -> (name, `DVPortSetting.vmDirectPathGen2Allowed.value`)."""
    result: dict[str, tuple[str, bool]] = {}
    for pg in portgroups:
        setting = pg.get("config.defaultPortConfig")
        allowed = getattr(getattr(setting, "vmDirectPathGen2Allowed", None), "value", False)
        result[_str(pg.get("key", pg.moref))] = (_str(pg.get("name", pg.moref)), bool(allowed))
    return result


def _runtime_states(vm: ObjectProps) -> dict[int, Any]:
    """Device key -> `VirtualEthernetCardRuntimeState` (set while the VM runs)."""
    return {int(r.key): r.runtimeState for r in _list(vm.get("runtime.device"))}


def gen2_inactive_reasons(state: Any) -> tuple[str, ...]:
    """VM reasons, other (host, network) reasons, then the extended text, in vSphere's words."""
    if state is None:
        return ()
    reasons = [
        *(_str(r) for r in _list(getattr(state, "vmDirectPathGen2InactiveReasonVm", None))),
        *(_str(r) for r in _list(getattr(state, "vmDirectPathGen2InactiveReasonOther", None))),
    ]
    extended = getattr(state, "vmDirectPathGen2InactiveReasonExtended", None)
    if extended:
        reasons.append(_str(extended))
    return tuple(reasons)


def nic(device: Any, portgroups: Mapping[str, tuple[str, bool]], state: Any) -> ObservedNic:
    """A NIC on a distributed port group (`port.portgroupKey`) or a standard network
    (`deviceName`); Gen2 is possible only on a distributed port (vSphere API reference)."""
    info = getattr(device, "backing", None)
    port = getattr(info, "port", None)
    if port is not None:
        name, allowed = portgroups.get(_str(port.portgroupKey), (_str(port.portgroupKey), False))
    else:
        name, allowed = _str(getattr(info, "deviceName", "")), False
    return ObservedNic(
        key=int(device.key),
        label=_str(getattr(getattr(device, "deviceInfo", None), "label", "")),
        kind=nic_kind(device),
        upt_compatibility_enabled=bool(getattr(device, "uptCompatibilityEnabled", False)),
        portgroup=name,
        gen2_allowed=allowed,
        gen2_active=bool(getattr(state, "vmDirectPathGen2Active", False)),
        gen2_inactive_reasons=gen2_inactive_reasons(state),
    )


def snapshot_count(info: Any) -> int:
    """All snapshots in `VirtualMachineSnapshotInfo.rootSnapshotList`, children included."""
    pending = _list(getattr(info, "rootSnapshotList", None))
    count = 0
    while pending:
        tree = pending.pop()
        count += 1
        pending.extend(_list(getattr(tree, "childSnapshotList", None)))
    return count


def observed_cluster(cluster: ObjectProps, vm_moref: str) -> ObservedCluster:
    """`ClusterConfigInfoEx` and this VM's `drsVmConfig` / `dasVmConfig` entries.

    An HA override without settings keeps the cluster's restart priority, so it reads as
    `clusterRestartPriority`; a DRS override without `enabled` is enabled (vSphere API
    reference, ClusterDrsVmConfigInfo.enabled: "unset means true").
    """
    config = cluster.get("configurationEx")
    das, drs = getattr(config, "dasConfig", None), getattr(config, "drsConfig", None)
    drs_vm = next(
        (c for c in _list(getattr(config, "drsVmConfig", None)) if moref_id(c.key) == vm_moref),
        None,
    )
    das_vm = next(
        (c for c in _list(getattr(config, "dasVmConfig", None)) if moref_id(c.key) == vm_moref),
        None,
    )
    restart = None
    if das_vm is not None:
        settings = getattr(das_vm, "dasSettings", None)
        # restartPriority on the info itself is the pre-4.0 field, still filled by some servers.
        restart = _str(
            getattr(settings, "restartPriority", None)
            or getattr(das_vm, "restartPriority", None)
            or CLUSTER_RESTART_PRIORITY
        )
    return ObservedCluster(
        name=_str(cluster.get("name", cluster.moref)),
        moref=cluster.moref,
        ha_enabled=bool(getattr(das, "enabled", False)),
        drs_enabled=bool(getattr(drs, "enabled", False)),
        drs_automation=_str(getattr(drs, "defaultVmBehavior", None) or "fullyAutomated"),
        vm_das_restart_priority=restart,
        vm_drs_enabled=None if drs_vm is None else drs_vm.enabled is not False,
        vm_drs_behavior=None if drs_vm is None else (_str(drs_vm.behavior) or None),
    )


def observed_vm(
    vm: ObjectProps,
    host: ObjectProps | None,
    cluster: ObjectProps | None,
    portgroups: Sequence[ObjectProps] = (),
) -> ObservedVM:
    devices = _list(vm.get("config.hardware.device"))
    states = _runtime_states(vm)
    by_key = gen2_allowed_by_portgroup(portgroups)
    ft = vm.get("config.ftInfo")
    extra = mmio_settings(vm.get("config.extraConfig"))
    return ObservedVM(
        moref=vm.moref,
        name=_str(vm.get("name", vm.moref)),
        host=_str(host.get("name", host.moref)) if host is not None else "",
        instance_uuid=_str(vm.get("config.instanceUuid", "")),
        host_moref=moref_id(vm.get("runtime.host")),
        host_version=_str(host.get("config.product.version", "")) if host is not None else "",
        host_system_id=_str(host.get("hardware.systemInfo.uuid", "")) if host else "",
        power_state=_str(vm.get("runtime.powerState", POWERED_OFF)),
        memory_mb=int(vm.get("config.hardware.memoryMB", 0)),
        memory_reservation_mb=int(vm.get("config.memoryAllocation.reservation", 0)),
        memory_reservation_locked_to_max=bool(vm.get("config.memoryReservationLockedToMax", False)),
        cpu_hot_add_enabled=bool(vm.get("config.cpuHotAddEnabled", False)),
        memory_hot_add_enabled=bool(vm.get("config.memoryHotAddEnabled", False)),
        nested_hv_enabled=bool(vm.get("config.nestedHVEnabled", False)),
        ft_configured=ft is not None,
        ft_role=int(ft.role) if getattr(ft, "role", None) is not None else None,
        snapshot_count=snapshot_count(vm.get("snapshot")),
        hardware_version=_str(vm.get("config.version", "")),
        change_version=_str(vm.get("config.changeVersion", "")),
        pci_devices=pci_devices(devices),
        nics=tuple(nic(d, by_key, states.get(int(d.key))) for d in devices if is_ethernet_card(d)),
        cluster=observed_cluster(cluster, vm.moref) if cluster is not None else None,
        firmware=_str(vm.get("config.firmware", "")),
        use64bit_mmio=extra.get(USE_64BIT_MMIO.lower()),
        mmio_size_gb=extra.get(MMIO_SIZE_GB.lower()),
    )


def mmio_settings(options: Any) -> dict[str, str]:
    """The 64-bit MMIO keys of `config.extraConfig` (OptionValue[]), by lower-case key: the VMX
    reads its keys case-insensitively, so `pciPassthru.use64bitMMIO` may come in any case."""
    wanted = {USE_64BIT_MMIO.lower(), MMIO_SIZE_GB.lower()}
    found = {}
    for option in _list(options):
        key = _str(getattr(option, "key", "")).lower()
        if key in wanted:
            found[key] = _str(getattr(option, "value", ""))
    return found


def attached_to_vms(vm_moref: str, others: Iterable[ObjectProps]) -> dict[str, tuple[str, ...]]:
    """Host PCI id -> names of the OTHER VMs holding it: a static backing's `id`, or a running
    dynamic device's `assignedId` (inventory_map.passthrough_backing_ids)."""
    result: dict[str, list[str]] = {}
    for other in others:
        if other.moref == vm_moref:
            continue
        for pci in passthrough_backing_ids(_list(other.get("config.hardware.device"))):
            result.setdefault(pci, []).append(_str(other.get("name", other.moref)))
    return {pci: tuple(sorted(names)) for pci, names in result.items()}


def gen2_support(host: ObjectProps | None) -> tuple[bool, tuple[str, ...]]:
    """`HostCapability.vmDirectPathGen2Supported`, and why not (reasons + extended text)."""
    if host is None:
        return False, ()
    reasons = [_str(r) for r in _list(host.get("capability.vmDirectPathGen2UnsupportedReason"))]
    extended = host.get("capability.vmDirectPathGen2UnsupportedReasonExtended")
    if extended:
        reasons.append(_str(extended))
    return bool(host.get("capability.vmDirectPathGen2Supported", False)), tuple(reasons)
