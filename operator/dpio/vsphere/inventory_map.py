"""Pure mapping from PropertyCollector results to the planner's `ObservedInventory`.

No calls here: values are pyVmomi data objects already in memory (reading their attributes is
local; only managed-object properties cost a round trip). Every property may be missing (a
disconnected host reports almost nothing, simulators leave gaps): missing means empty or None,
never an exception.

Which PCI functions ESXi itself uses (the vSphere Client warns before taking them away;
docs/design.md, "Host side: passthrough rules"):
- a physical NIC that is an uplink of the switch carrying a vmkernel port. Resolved
  vnic -> switch -> uplink pnic keys -> pnic.pci: a vmknic on a standard switch names its port
  group (`HostVirtualNic.portgroup`), the port group names its vSwitch (`spec.vswitchName`), and
  the vSwitch lists its uplinks (`HostVirtualSwitch.pnic`, keys of `HostPhysicalNic`); a vmknic on
  a distributed switch names the switch (`spec.distributedVirtualPort.switchUuid`) and the host's
  proxy switch of that uuid lists the uplinks (`HostProxySwitch.pnic`). We flag every uplink of
  that switch, since any of them may carry the vmkernel traffic after a failover.
- every storage HBA (`config.storageDevice.hostBusAdapter[].pci`): the boot device may sit
  behind any of them and ESXi does not say which.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dpio.planner.observed import (
    CONNECTED,
    DynamicPassthrough,
    HostPciDevice,
    HostPciPassthruInfo,
    ObservedHost,
    ObservedInventory,
    ObservedVM,
    normalize_pci_address,
)
from dpio.vsphere.properties import ObjectProps, moref_id, moref_kind

HOST, VM, CLUSTER = "HostSystem", "VirtualMachine", "ClusterComputeResource"

HOST_PATHS: tuple[str, ...] = (
    "name",
    "parent",
    "config.product.version",
    "config.product.apiVersion",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "runtime.bootTime",
    "summary.rebootRequired",
    "capability.deviceRebindWithoutRebootSupported",
    "capability.vmDirectPathGen2Supported",
    "hardware.pciDevice",
    "config.pciPassthruInfo",
    "config.network.pnic",
    "config.network.vnic",
    "config.network.portgroup",
    "config.network.vswitch",
    "config.network.proxySwitch",
    "config.storageDevice.hostBusAdapter",
    "configManager.pciPassthruSystem",
)
VM_PATHS: tuple[str, ...] = (
    "name",
    "runtime.host",
    "runtime.powerState",
    "runtime.faultToleranceState",
    "config.hardware.device",
)
CLUSTER_PATHS: tuple[str, ...] = ("name", "configurationEx")
_DEVICES = "config.hardware.device"
_PASSTHROUGH = "VirtualPCIPassthrough"


def host_side_view(obj: ObjectProps) -> ObjectProps:
    """What the host side keeps of an object as read: of a VM's devices only its
    `VirtualPCIPassthrough` ones (all that `observed_vm` and `attached_by_host` look at).
    A VM has a dozen devices (controllers, disks, NICs, video), each parsed into a tree of
    pyVmomi objects; kept until the whole read was mapped, 5,000 VMs' were the largest
    passing peak of a read (docs/benchmarks.md, finding 33)."""
    if obj.kind != VM:
        return obj
    devices = _list(obj.get(_DEVICES))
    kept = [d for d in devices if moref_kind(d) == _PASSTHROUGH]
    if len(kept) == len(devices):
        return obj
    return replace(obj, props={**obj.props, _DEVICES: kept})


def _list(value: Any) -> list[Any]:
    return list(value) if value else []


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def pci_device(device: Any) -> HostPciDevice:
    """`HostPciDevice`; ids are masked to 16 bits by the planner type (govmomi #2248)."""
    return HostPciDevice(
        id=_str(getattr(device, "id", "")),
        vendor_id=int(getattr(device, "vendorId", 0) or 0),
        device_id=int(getattr(device, "deviceId", 0) or 0),
        class_id=int(getattr(device, "classId", 0) or 0),
        vendor_name=_str(getattr(device, "vendorName", "")),
        device_name=_str(getattr(device, "deviceName", "")),
    )


def passthru_info(info: Any) -> HostPciPassthruInfo:
    """`HostPciPassthruInfo` (or its `HostSriovInfo` subtype); hardwareLabel is 7.0.2+."""
    return HostPciPassthruInfo(
        id=_str(getattr(info, "id", "")),
        dependent_device=_str(getattr(info, "dependentDevice", "")),
        passthru_enabled=bool(getattr(info, "passthruEnabled", False)),
        passthru_capable=bool(getattr(info, "passthruCapable", False)),
        passthru_active=bool(getattr(info, "passthruActive", False)),
        hardware_label=_str(getattr(info, "hardwareLabel", "")),
    )


def _uplinks_by_switch(host: ObjectProps) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Standard vSwitch name -> uplink pnic keys; distributed switch uuid -> uplink pnic keys."""
    standard = {
        _str(vs.name): [_str(k) for k in _list(getattr(vs, "pnic", None))]
        for vs in _list(host.get("config.network.vswitch"))
    }
    distributed = {
        _str(ps.dvsUuid): [_str(k) for k in _list(getattr(ps, "pnic", None))]
        for ps in _list(host.get("config.network.proxySwitch"))
    }
    return standard, distributed


def _vmknic_uplinks(host: ObjectProps) -> list[tuple[str, str]]:
    """(vmknic device, pnic key) for every uplink of a switch that carries a vmknic."""
    standard, distributed = _uplinks_by_switch(host)
    vswitch_of = {
        _str(getattr(pg.spec, "name", "")): _str(getattr(pg.spec, "vswitchName", ""))
        for pg in _list(host.get("config.network.portgroup"))
        if getattr(pg, "spec", None) is not None
    }
    pairs: list[tuple[str, str]] = []
    for vnic in _list(host.get("config.network.vnic")):
        port = getattr(getattr(vnic, "spec", None), "distributedVirtualPort", None)
        if port is not None:
            keys = distributed.get(_str(port.switchUuid), [])
        else:
            keys = standard.get(vswitch_of.get(_str(getattr(vnic, "portgroup", "")), ""), [])
        pairs.extend((_str(vnic.device), key) for key in keys)
    return pairs


def in_use_by_host(host: ObjectProps) -> dict[str, str]:
    """PCI id -> why ESXi needs it ("vmnic0 carries vmkernel port vmk0")."""
    reasons: dict[str, list[str]] = defaultdict(list)
    pnics = {_str(p.key): p for p in _list(host.get("config.network.pnic"))}
    for vmknic, key in _vmknic_uplinks(host):
        pnic = pnics.get(key)
        if pnic is not None and getattr(pnic, "pci", None):
            reason = f"{pnic.device} carries vmkernel port {vmknic}"
            reasons[normalize_pci_address(pnic.pci)].append(reason)
    for hba in _list(host.get("config.storageDevice.hostBusAdapter")):
        if getattr(hba, "pci", None):
            model = _str(getattr(hba, "model", ""))
            suffix = f" ({model})" if model else ""
            reasons[normalize_pci_address(hba.pci)].append(
                f"{hba.device} is a storage adapter{suffix}"
            )
    return {pci: "; ".join(dict.fromkeys(r)) for pci, r in reasons.items()}


def passthrough_backing_ids(devices: Iterable[Any]) -> list[str]:
    """Host PCI ids behind a VM's `VirtualPCIPassthrough` devices.

    Static backing: `VirtualPCIPassthroughDeviceBackingInfo.id`; dynamic backing:
    `VirtualPCIPassthroughDynamicBackingInfo.assignedId`, set while the VM runs (vSphere API ref.).
    """
    ids: list[str] = []
    for device in devices:
        if moref_kind(device) != _PASSTHROUGH:
            continue
        backing = getattr(device, "backing", None)
        pci = getattr(backing, "id", None) or getattr(backing, "assignedId", None)
        if pci:
            ids.append(normalize_pci_address(str(pci)))
    return ids


def dynamic_backings(devices: Iterable[Any]) -> tuple[DynamicPassthrough, ...]:
    """A VM's `VirtualPCIPassthroughDynamicBackingInfo`s (vSphere API reference)."""
    found = []
    for device in devices:
        backing = getattr(device, "backing", None)
        if moref_kind(device) != _PASSTHROUGH or not hasattr(backing, "allowedDevice"):
            continue
        allowed = tuple(
            (int(getattr(a, "vendorId", 0) or 0), int(getattr(a, "deviceId", 0) or 0))
            for a in _list(getattr(backing, "allowedDevice", None))
        )
        found.append(
            DynamicPassthrough(
                allowed=allowed,
                label=_str(getattr(backing, "customLabel", "")),
                assigned_id=_str(getattr(backing, "assignedId", "")),
            )
        )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class ClusterDrs:
    """`ClusterConfigInfoEx.drsConfig` and its `drsVmConfig` overrides, per VM moref."""

    enabled: bool = False
    default_behavior: str = ""
    overrides: Mapping[str, str] = field(default_factory=dict)

    def behavior(self, vm_moref: str) -> str:
        """The automation level in effect for the VM; "disabled" when DRS leaves it alone."""
        if not self.enabled:
            return "disabled"
        return self.overrides.get(vm_moref, self.default_behavior)


def cluster_drs(objects: Iterable[ObjectProps]) -> dict[str, ClusterDrs]:
    """Cluster moref -> DRS settings. vSphere API reference: ClusterDrsVmConfigInfo.enabled unset
    means true; overrides count only while drsConfig.enableVmBehaviorOverrides (unset: true)."""
    result = {}
    for obj in objects:
        if obj.kind != CLUSTER:
            continue
        config = obj.get("configurationEx")
        drs = getattr(config, "drsConfig", None)
        overrides: dict[str, str] = {}
        if getattr(drs, "enableVmBehaviorOverrides", True) is not False:
            for entry in _list(getattr(config, "drsVmConfig", None)):
                enabled = getattr(entry, "enabled", None) is not False
                behavior = _str(getattr(entry, "behavior", "")) if enabled else "disabled"
                overrides[moref_id(entry.key)] = behavior or "disabled"
        result[obj.moref] = ClusterDrs(
            enabled=bool(getattr(drs, "enabled", False)),
            default_behavior=_str(getattr(drs, "defaultVmBehavior", "")) or "fullyAutomated",
            overrides=overrides,
        )
    return result


def observed_vm(vm: ObjectProps, drs: ClusterDrs | None) -> ObservedVM:
    devices = _list(vm.get(_DEVICES))
    ft = _str(vm.get("runtime.faultToleranceState", ""))
    return ObservedVM(
        name=_str(vm.get("name", vm.moref)),
        power_state=_str(vm.get("runtime.powerState", "")),
        passthrough=any(moref_kind(d) == _PASSTHROUGH for d in devices),
        fault_tolerance=ft not in ("", "notConfigured"),
        drs_behavior=None if drs is None else drs.behavior(vm.moref),
        dynamic=dynamic_backings(devices),
    )


def vms_by_host(
    objects: Iterable[ObjectProps], host_cluster: Mapping[str, str], drs: Mapping[str, ClusterDrs]
) -> dict[str, list[ObservedVM]]:
    """Host moref -> its VMs; `host_cluster` maps host moref -> cluster moref."""
    result: dict[str, list[ObservedVM]] = defaultdict(list)
    for vm in objects:
        host = moref_id(vm.get("runtime.host"))
        if vm.kind == VM and host:
            cluster = host_cluster.get(host)
            result[host].append(observed_vm(vm, drs.get(cluster) if cluster else None))
    return result


def attached_by_host(vms: Iterable[ObjectProps]) -> dict[str, dict[str, list[str]]]:
    """Host moref -> PCI id -> names of the VMs holding it, sorted."""
    result: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for vm in vms:
        host = moref_id(vm.get("runtime.host"))
        if not host:
            continue
        for pci in passthrough_backing_ids(_list(vm.get(_DEVICES))):
            result[host][pci].append(_str(vm.get("name", vm.moref)))
    return {h: {p: sorted(n) for p, n in pcis.items()} for h, pcis in result.items()}


def observed_host(
    host: ObjectProps,
    clusters: Mapping[str, str],
    attached: Mapping[str, Sequence[str]],
    vms: Sequence[ObservedVM] = (),
) -> ObservedHost:
    parent = host.get("parent")
    return ObservedHost(
        moref=host.moref,
        name=_str(host.get("name", host.moref)),
        cluster=clusters.get(moref_id(parent)) if moref_kind(parent) == CLUSTER else None,
        version=_str(host.get("config.product.version", "")),
        api_version=_str(host.get("config.product.apiVersion", "")),
        connection_state=_str(host.get("runtime.connectionState", CONNECTED)),
        in_maintenance_mode=bool(host.get("runtime.inMaintenanceMode", False)),
        reboot_required=bool(host.get("summary.rebootRequired", False)),
        boot_time=host.get("runtime.bootTime"),
        device_rebind_without_reboot_supported=bool(
            host.get("capability.deviceRebindWithoutRebootSupported", False)
        ),
        pci_devices=tuple(pci_device(d) for d in _list(host.get("hardware.pciDevice"))),
        pci_passthru_info=tuple(
            passthru_info(i) for i in _list(host.get("config.pciPassthruInfo"))
        ),
        in_use_by_host=in_use_by_host(host),
        attached_to_vms={pci: tuple(names) for pci, names in attached.items()},
        vms=tuple(sorted(vms, key=lambda v: v.name)),
    )


def cluster_names(objects: Iterable[ObjectProps]) -> dict[str, str]:
    """Cluster moref -> name."""
    return {o.moref: _str(o.get("name", o.moref)) for o in objects if o.kind == CLUSTER}


def observed_inventory(
    objects: Sequence[ObjectProps],
    clusters: Mapping[str, str] | None = None,
    drs: Mapping[str, ClusterDrs] | None = None,
) -> ObservedInventory:
    """Every host of the read, ordered by name, with cluster membership, VMs and attachments.

    `clusters` (moref -> name) and `drs` when the read had no cluster objects (some hosts)."""
    names = cluster_names(objects) if clusters is None else clusters
    settings = cluster_drs(objects) if drs is None else drs
    attached = attached_by_host(o for o in objects if o.kind == VM)
    host_cluster = {
        o.moref: moref_id(o.get("parent"))
        for o in objects
        if o.kind == HOST and moref_kind(o.get("parent")) == CLUSTER
    }
    vms = vms_by_host(objects, host_cluster, settings)
    hosts = [
        observed_host(o, names, attached.get(o.moref, {}), vms.get(o.moref, ()))
        for o in objects
        if o.kind == HOST
    ]
    return inventory_of(hosts, names.values())


def inventory_of(hosts: Iterable[ObservedHost], clusters: Iterable[str]) -> ObservedInventory:
    """Hosts ordered by name; every cluster named, with its hosts' names (maybe none)."""
    ordered = sorted(hosts, key=lambda h: h.name)
    members: dict[str, list[str]] = {name: [] for name in clusters}
    for host in ordered:
        if host.cluster is not None:
            members.setdefault(host.cluster, []).append(host.name)
    return ObservedInventory(
        hosts=tuple(ordered), clusters={name: tuple(m) for name, m in members.items()}
    )


def with_hosts(base: ObservedInventory, fresh: ObservedInventory) -> ObservedInventory:
    """`base` with the hosts of `fresh` in place of its hosts of the same morefs."""
    replaced = {h.moref for h in fresh.hosts}
    kept = (h for h in base.hosts if h.moref not in replaced)
    return inventory_of([*kept, *fresh.hosts], [*base.clusters, *fresh.clusters])


def passthru_systems(objects: Iterable[ObjectProps]) -> dict[str, tuple[str, str]]:
    """Host moref -> (its `HostPciPassthruSystem` moref, `config.product.apiVersion`)."""
    result: dict[str, tuple[str, str]] = {}
    for obj in objects:
        system = moref_id(obj.get("configManager.pciPassthruSystem"))
        if obj.kind == HOST and system:
            result[obj.moref] = (system, _str(obj.get("config.product.apiVersion", "")))
    return result
