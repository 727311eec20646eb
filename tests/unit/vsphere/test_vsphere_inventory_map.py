"""PropertyCollector results (real pyVmomi data objects, no server) -> ObservedInventory."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from dpio.vsphere.inventory_map import (
    CLUSTER,
    HOST,
    VM,
    attached_by_host,
    host_side_view,
    in_use_by_host,
    observed_inventory,
    passthrough_backing_ids,
    passthru_systems,
)
from dpio.vsphere.properties import ObjectProps

V: Any = vim  # pyVmomi data object constructors are untyped


def _pnic(device: str, pci: str) -> Any:
    return V.host.PhysicalNic(key=f"key-vim.host.PhysicalNic-{device}", device=device, pci=pci)


def _vswitch(name: str, *pnics: str) -> Any:
    return V.host.VirtualSwitch(
        name=name, key=f"key-vim.host.VirtualSwitch-{name}", pnic=list(pnics)
    )


def _portgroup(name: str, vswitch: str) -> Any:
    return V.host.PortGroup(spec=V.host.PortGroup.Specification(name=name, vswitchName=vswitch))


def _vmknic(device: str, portgroup: str = "", dvs: str = "") -> Any:
    spec = V.host.VirtualNic.Specification()
    if dvs:
        spec.distributedVirtualPort = V.dvs.PortConnection(switchUuid=dvs)
    return V.host.VirtualNic(device=device, portgroup=portgroup, spec=spec)


def _host(moref: str = "host-1", **props: Any) -> ObjectProps:
    return ObjectProps(kind=HOST, moref=moref, props={"name": f"{moref}.lab", **props})


NICS = [_pnic("vmnic0", "0000:18:00.0"), _pnic("vmnic1", "0000:18:00.1"), _pnic("vmnic2", "")]


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        pytest.param(
            {
                "config.network.vswitch": [_vswitch("vSwitch0", NICS[0].key)],
                "config.network.portgroup": [_portgroup("Management Network", "vSwitch0")],
                "config.network.vnic": [_vmknic("vmk0", "Management Network")],
            },
            {"0000:18:00.0": "vmnic0 carries vmkernel port vmk0"},
            id="standard-switch",
        ),
        pytest.param(
            {
                "config.network.vswitch": [_vswitch("vSwitch1", NICS[0].key, NICS[1].key)],
                "config.network.portgroup": [_portgroup("vMotion", "vSwitch1")],
                "config.network.vnic": [_vmknic("vmk1", "vMotion")],
            },
            {
                "0000:18:00.0": "vmnic0 carries vmkernel port vmk1",
                "0000:18:00.1": "vmnic1 carries vmkernel port vmk1",
            },
            id="every-uplink-of-the-switch",
        ),
        pytest.param(
            {
                "config.network.proxySwitch": [
                    V.host.HostProxySwitch(dvsUuid="50 1a", pnic=[NICS[1].key])
                ],
                "config.network.vnic": [_vmknic("vmk2", dvs="50 1a")],
            },
            {"0000:18:00.1": "vmnic1 carries vmkernel port vmk2"},
            id="distributed-switch",
        ),
        pytest.param(
            {
                "config.network.vswitch": [_vswitch("vSwitch0", NICS[0].key)],
                "config.network.portgroup": [_portgroup("VM Network", "vSwitch0")],
                "config.network.vnic": [],
            },
            {},
            id="uplink-without-vmknic-is-free",
        ),
        pytest.param(
            {
                "config.network.vswitch": [_vswitch("vSwitch0", NICS[2].key, "key-unknown")],
                "config.network.portgroup": [_portgroup("Management Network", "vSwitch0")],
                "config.network.vnic": [_vmknic("vmk0", "Management Network")],
            },
            {},
            id="virtual-or-unknown-pnic-has-no-pci",
        ),
        pytest.param({}, {}, id="nothing-reported"),
    ],
)
def test_in_use_by_host_vmknic(network: dict[str, Any], expected: dict[str, str]) -> None:
    host = _host(**{"config.network.pnic": NICS, **network})
    assert in_use_by_host(host) == expected


def test_in_use_by_host_hbas_and_merged_reasons() -> None:
    hbas = [
        V.host.BlockHba(device="vmhba0", pci="0000:00:17.0", model="AHCI"),
        V.host.BlockHba(device="vmhba1", pci="0000:00:07.1", model=""),
        V.host.BlockHba(device="vmhba64", pci="0000:00:07.1", model=""),
        V.host.InternetScsiHba(device="vmhba65", pci=None),  # software iSCSI: no PCI function
    ]
    host = _host(**{"config.storageDevice.hostBusAdapter": hbas})
    assert in_use_by_host(host) == {
        "0000:00:17.0": "vmhba0 is a storage adapter (AHCI)",
        "0000:00:07.1": "vmhba1 is a storage adapter; vmhba64 is a storage adapter",
    }


def _static(pci: str) -> Any:
    backing = V.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(id=pci, deviceId="20b5")
    return V.vm.device.VirtualPCIPassthrough(key=13000, backing=backing)


def _dynamic(assigned: str | None) -> Any:
    backing = V.vm.device.VirtualPCIPassthrough.DynamicBackingInfo(assignedId=assigned)
    return V.vm.device.VirtualPCIPassthrough(key=13001, backing=backing)


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([_static("0000:3B:00.0")], ["0000:3b:00.0"]),
        ([_dynamic("0000:af:00.0")], ["0000:af:00.0"]),
        ([_dynamic(None)], []),  # powered off: no device assigned yet
        ([V.vm.device.VirtualVmxnet3(key=4000), V.vm.device.VirtualDisk(key=2000)], []),
        ([], []),
    ],
)
def test_passthrough_backing_ids(devices: list[Any], expected: list[str]) -> None:
    assert passthrough_backing_ids(devices) == expected


def _vm(name: str, host: str | None, *devices: Any) -> ObjectProps:
    props = {"name": name, "config.hardware.device": list(devices)}
    if host is not None:
        props["runtime.host"] = V.HostSystem(host)
    return ObjectProps(kind=VM, moref=f"vm-{name}", props=props)


def test_attached_by_host_groups_by_host_and_sorts_names() -> None:
    vms = [
        _vm("b", "host-1", _static("0000:3b:00.0")),
        _vm("a", "host-1", _static("0000:3b:00.0"), _dynamic("0000:af:00.0")),
        _vm("c", "host-2", _static("0000:3b:00.0")),
        _vm("orphan", None, _static("0000:3b:00.0")),
        _vm("plain", "host-2"),
    ]
    assert attached_by_host(vms) == {
        "host-1": {"0000:3b:00.0": ["a", "b"], "0000:af:00.0": ["a"]},
        "host-2": {"0000:3b:00.0": ["c"]},
    }


def test_the_host_side_keeps_only_a_vms_passthrough_devices() -> None:
    disk, nic = V.vm.device.VirtualDisk(key=2000), V.vm.device.VirtualVmxnet3(key=4000)
    vm = _vm("ml", "host-1", disk, _static("0000:3b:00.0"), nic, _dynamic("0000:af:00.0"))
    kept = host_side_view(vm)

    kinds = [type(d).__name__ for d in kept.get("config.hardware.device")]
    assert kinds == ["vim.vm.device.VirtualPCIPassthrough"] * 2
    assert kept.get("name") == "ml"
    # Everything the host side reads of a VM answers the same from what is kept.
    inventory = observed_inventory([_host("host-1"), vm])
    assert observed_inventory([_host("host-1"), kept]) == inventory
    plain = _vm("plain", "host-1", disk)
    assert host_side_view(plain).get("config.hardware.device") == []
    host = _host("host-1")
    assert host_side_view(host) is host  # hosts as read
    only = _vm("only", "host-1", _static("0000:3b:00.0"))
    assert host_side_view(only) is only  # nothing to leave out: no copy


def test_observed_inventory_full_host() -> None:
    host = _host(
        "host-9",
        parent=V.ClusterComputeResource("domain-c7"),
        **{
            "config.product.version": "8.0.2",
            "config.product.apiVersion": "8.0.2.0",
            "runtime.connectionState": "connected",
            "runtime.inMaintenanceMode": True,
            "summary.rebootRequired": True,
            "capability.deviceRebindWithoutRebootSupported": True,
            "hardware.pciDevice": [
                V.host.PciDevice(id="0000:18:00.0", vendorId=-32634, deviceId=0x1572, classId=512)
            ],
            "config.pciPassthruInfo": [
                V.host.PciPassthruInfo(
                    id="0000:18:00.0",
                    dependentDevice="0000:18:00.0",
                    passthruEnabled=True,
                    passthruCapable=True,
                    passthruActive=False,
                )
            ],
            "configManager.pciPassthruSystem": V.host.PciPassthruSystem("pts-9"),
        },
    )
    cluster = ObjectProps(kind=CLUSTER, moref="domain-c7", props={"name": "GPU-Cluster"})
    empty = ObjectProps(kind=CLUSTER, moref="domain-c8", props={"name": "Empty"})
    vm = _vm("ml", "host-9", _static("0000:18:00.0"))
    inventory = observed_inventory([vm, host, cluster, empty])

    (observed,) = inventory.hosts
    assert (observed.moref, observed.name, observed.cluster) == (
        "host-9",
        "host-9.lab",
        "GPU-Cluster",
    )
    assert (observed.version, observed.api_version) == ("8.0.2", "8.0.2.0")
    assert observed.in_maintenance_mode
    assert observed.reboot_required
    assert observed.device_rebind_without_reboot_supported
    assert observed.pci_devices[0].vendor_id == 0x8086  # -32634 masked (govmomi #2248)
    assert observed.passthru_info()["0000:18:00.0"].passthru_enabled
    assert observed.attached_to_vms == {"0000:18:00.0": ("ml",)}
    assert dict(inventory.clusters) == {"GPU-Cluster": ("host-9.lab",), "Empty": ()}
    assert passthru_systems([host, vm]) == {"host-9": ("pts-9", "8.0.2.0")}


def test_disconnected_host_with_nothing_but_a_name_does_not_crash() -> None:
    host = ObjectProps(
        kind=HOST,
        moref="host-3",
        props={"name": "esx-down", "runtime.connectionState": "disconnected"},
        missing=frozenset({"config.pciPassthruInfo", "hardware.pciDevice"}),
    )
    standalone = _host("host-4", parent=V.ComputeResource("domain-s1"))
    inventory = observed_inventory([host, standalone])
    down = inventory.host("esx-down")
    assert down is not None
    assert not down.connected
    assert down.unavailable
    assert (down.pci_devices, down.pci_passthru_info, down.cluster) == ((), (), None)
    assert dict(down.in_use_by_host) == {}
    assert inventory.host("host-4.lab").cluster is None  # type: ignore[union-attr]
    assert passthru_systems([host]) == {}


def _cluster(moref: str, drs: Any, *overrides: Any) -> ObjectProps:
    config = V.cluster.ConfigInfoEx(drsConfig=drs, drsVmConfig=list(overrides))
    return ObjectProps(kind=CLUSTER, moref=moref, props={"name": moref, "configurationEx": config})


def _override(vm: str, behavior: str | None = None, enabled: bool | None = None) -> Any:
    return V.cluster.DrsVmConfigInfo(key=V.VirtualMachine(vm), behavior=behavior, enabled=enabled)


def _running(name: str, host: str, *devices: Any, **props: Any) -> ObjectProps:
    vm = _vm(name, host, *devices)
    vm.props.update({"runtime.powerState": "poweredOn", **props})
    return vm


def test_vms_carry_what_decides_whether_maintenance_mode_can_evacuate_them() -> None:
    drs = V.cluster.DrsConfigInfo(enabled=True, defaultVmBehavior="fullyAutomated")
    objects = [
        _cluster(
            "domain-c1", drs, _override("vm-manual", "manual"), _override("vm-off", enabled=False)
        ),
        _cluster("domain-c2", V.cluster.DrsConfigInfo(enabled=False)),
        _host("host-1", parent=V.ClusterComputeResource("domain-c1")),
        _host("host-2", parent=V.ClusterComputeResource("domain-c2")),
        _host("host-3", parent=V.Folder("group-h4")),
        _running("web", "host-1"),
        _running("manual", "host-1"),
        _running("off", "host-1"),
        _running("ft", "host-1", **{"runtime.faultToleranceState": "running"}),
        _running("gpu", "host-1", _static("0000:3b:00.0")),
        _running("nodrs", "host-2"),
        _running("alone", "host-3"),
    ]
    vms = {vm.name: vm for h in observed_inventory(objects).hosts for vm in h.vms}
    assert {n: v.drs_behavior for n, v in vms.items()} == {
        "web": "fullyAutomated", "manual": "manual", "off": "disabled", "ft": "fullyAutomated",
        "gpu": "fullyAutomated", "nodrs": "disabled", "alone": None,
    }  # fmt: skip
    assert [n for n, v in vms.items() if v.fault_tolerance] == ["ft"]
    assert [n for n, v in vms.items() if v.passthrough] == ["gpu"]
    assert all(v.powered_on for v in vms.values())


def test_a_powered_off_vm_keeps_its_dynamic_directpath_demand() -> None:
    backing = V.vm.device.VirtualPCIPassthrough.DynamicBackingInfo(
        allowedDevice=[
            V.vm.device.VirtualPCIPassthrough.AllowedDevice(vendorId=0x10DE, deviceId=0x20B5)
        ],
        customLabel="a100",
    )
    device = V.vm.device.VirtualPCIPassthrough(key=13000, backing=backing)
    vm = _vm("trainer", "host-1", device)
    vm.props["runtime.powerState"] = "poweredOff"
    (host,) = observed_inventory([_host("host-1"), vm]).hosts
    assert host.attached_to_vms == {}  # no assignedId while off: nothing reads as attached
    (observed,) = host.vms
    assert observed.passthrough
    assert not observed.powered_on
    (dynamic,) = observed.dynamic
    assert (dynamic.allowed, dynamic.label, dynamic.assigned_id) == (
        ((0x10DE, 0x20B5),),
        "a100",
        "",
    )
