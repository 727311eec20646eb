"""VM properties as the PropertyCollector returns them (real pyVmomi objects, no server) ->
ObservedVM, NICs with Gen2 state, cluster overrides, other VMs' devices, host Gen2 support."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pyVmomi import vim

from dpio.planner.vm.observed import DynamicBacking, ObservedCluster, StaticBacking
from dpio.vsphere.properties import ObjectProps
from dpio.vsphere.vm.map import (
    CLUSTER,
    HOST,
    PORTGROUP,
    VM,
    attached_to_vms,
    backing,
    gen2_support,
    nic,
    observed_cluster,
    observed_vm,
    pci_device,
    snapshot_count,
)

V: Any = vim  # pyVmomi data object constructors are untyped
PT = V.vm.device.VirtualPCIPassthrough


def _static(key: int, pci: str, *, vendor: int = 0x10DE, device: str = "20b5") -> Any:
    info = PT.DeviceBackingInfo(id=pci, deviceId=device, systemId="sys-1", vendorId=vendor)
    return PT(key=key, deviceInfo=V.Description(label=f"PCI device {key}"), backing=info)


def _dynamic(key: int, pairs: list[tuple[int, int]], label: str = "", assigned: str = "") -> Any:
    allowed = [PT.AllowedDevice(vendorId=v, deviceId=d) for v, d in pairs]
    info = PT.DynamicBackingInfo(
        allowedDevice=allowed, customLabel=label, assignedId=assigned or None
    )
    return PT(key=key, backing=info)


def _vm(moref: str = "vm-1", **props: Any) -> ObjectProps:
    return ObjectProps(kind=VM, moref=moref, props={"name": moref, **props})


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        pytest.param(
            _static(13000, "0000:3B:00.0"),
            StaticBacking("0000:3b:00.0", "20b5", "sys-1", 0x10DE),
            id="static",
        ),
        pytest.param(
            # Intel 8086 arrives as the signed int16 -32634 (govmomi #2248): masked back.
            _static(13000, "0000:18:00.1", vendor=-32634, device="1572"),
            StaticBacking("0000:18:00.1", "1572", "sys-1", 0x8086),
            id="static-negative-vendor",
        ),
        pytest.param(
            _dynamic(13001, [(0x10DE, 0x20B5), (-32634, -24145)], "a100"),
            DynamicBacking(((0x10DE, 0x20B5), (0x8086, 0xA1AF)), "a100"),
            id="dynamic-masked",
        ),
        pytest.param(
            PT(key=13002, backing=PT.VmiopBackingInfo(vgpu="grid_a100-4c")), None, id="vgpu"
        ),
        pytest.param(PT(key=13003), None, id="no-backing"),
    ],
)
def test_backing(device: Any, expected: Any) -> None:
    assert backing(device) == expected


@pytest.mark.parametrize(
    ("device", "assigned"),
    [
        (_dynamic(13001, [(0x10DE, 0x20B5)], assigned="0000:3B:00.0"), "0000:3b:00.0"),
        (_dynamic(13001, [(0x10DE, 0x20B5)]), None),
        (_static(13000, "0000:3b:00.0"), None),
    ],
)
def test_pci_device_assigned_id(device: Any, assigned: str | None) -> None:
    observed = pci_device(device)
    assert observed.key == device.key
    assert observed.assigned_id == assigned


def _dvs_nic(key: int, portgroup_key: str, upt: bool = True) -> Any:
    port = V.dvs.PortConnection(switchUuid="50 1a", portgroupKey=portgroup_key)
    return V.vm.device.VirtualVmxnet3(
        key=key,
        deviceInfo=V.Description(label=f"Network adapter {key - 3999}"),
        backing=V.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port),
        uptCompatibilityEnabled=upt,
    )


STATE = V.vm.DeviceRuntimeInfo.VirtualEthernetCardRuntimeState
PORTGROUPS = {"dvportgroup-12": ("vmfex-gen2", True), "dvportgroup-14": ("vmfex-standard", False)}


@pytest.mark.parametrize(
    ("device", "state", "expected"),
    [
        pytest.param(
            _dvs_nic(4000, "dvportgroup-12"),
            STATE(vmDirectPathGen2Active=True),
            ("vmxnet3", True, "vmfex-gen2", True, True, ()),
            id="gen2-active",
        ),
        pytest.param(
            _dvs_nic(4000, "dvportgroup-14", upt=False),
            STATE(
                vmDirectPathGen2Active=False,
                vmDirectPathGen2InactiveReasonVm=["vmNptInsufficientMemoryReservation"],
                vmDirectPathGen2InactiveReasonOther=["vmNptIncompatibleNetwork"],
                vmDirectPathGen2InactiveReasonExtended="UPT is disabled",
            ),
            (
                "vmxnet3",
                False,
                "vmfex-standard",
                False,
                False,
                (
                    "vmNptInsufficientMemoryReservation",
                    "vmNptIncompatibleNetwork",
                    "UPT is disabled",
                ),
            ),
            id="inactive-reasons-in-order",
        ),
        pytest.param(
            _dvs_nic(4000, "dvportgroup-99"),
            None,  # powered off: no runtime state
            ("vmxnet3", True, "dvportgroup-99", False, False, ()),
            id="unknown-portgroup-powered-off",
        ),
        pytest.param(
            V.vm.device.VirtualE1000e(
                key=4001,
                deviceInfo=V.Description(label="Network adapter 2"),
                backing=V.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
            ),
            None,
            ("e1000e", False, "VM Network", False, False, ()),
            id="standard-network-e1000e",
        ),
    ],
)
def test_nic(device: Any, state: Any, expected: tuple[Any, ...]) -> None:
    found = nic(device, PORTGROUPS, state)
    assert found.key == device.key
    assert found.label == device.deviceInfo.label
    assert (
        found.kind,
        found.upt_compatibility_enabled,
        found.portgroup,
        found.gen2_allowed,
        found.gen2_active,
        found.gen2_inactive_reasons,
    ) == expected


def _tree(*children: Any) -> Any:
    return V.vm.SnapshotTree(childSnapshotList=list(children))


@pytest.mark.parametrize(
    ("info", "count"),
    [
        (None, 0),
        (V.vm.SnapshotInfo(), 0),
        (V.vm.SnapshotInfo(rootSnapshotList=[_tree(_tree())]), 2),
        (V.vm.SnapshotInfo(rootSnapshotList=[_tree(_tree(), _tree(_tree())), _tree()]), 5),
    ],
)
def test_snapshot_count_includes_children(info: Any, count: int) -> None:
    assert snapshot_count(info) == count


VM_REF = V.VirtualMachine("vm-1")
OTHER_REF = V.VirtualMachine("vm-2")


def _cluster(drs_vm: Sequence[Any] = (), das_vm: Sequence[Any] = (), **flags: Any) -> ObjectProps:
    config = V.cluster.ConfigInfoEx(
        dasConfig=V.cluster.DasConfigInfo(enabled=flags.get("ha", True)),
        drsConfig=V.cluster.DrsConfigInfo(
            enabled=flags.get("drs", True), defaultVmBehavior=flags.get("behavior", "manual")
        ),
        drsVmConfig=list(drs_vm),
        dasVmConfig=list(das_vm),
    )
    return ObjectProps(CLUSTER, "domain-c7", {"name": "GPU-Cluster", "configurationEx": config})


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        pytest.param(
            _cluster(),
            ObservedCluster("GPU-Cluster", "domain-c7", True, True, "manual"),
            id="no-override",
        ),
        pytest.param(
            _cluster(
                [
                    V.cluster.DrsVmConfigInfo(key=OTHER_REF, enabled=False),
                    V.cluster.DrsVmConfigInfo(key=VM_REF, behavior="partiallyAutomated"),
                ],
                [
                    V.cluster.DasVmConfigInfo(
                        key=VM_REF, dasSettings=V.cluster.DasVmSettings(restartPriority="disabled")
                    )
                ],
            ),
            ObservedCluster(
                "GPU-Cluster",
                "domain-c7",
                ha_enabled=True,
                drs_enabled=True,
                drs_automation="manual",
                vm_das_restart_priority="disabled",
                vm_drs_enabled=True,
                vm_drs_behavior="partiallyAutomated",
            ),
            id="this-vms-overrides-only-enabled-unset-is-true",
        ),
        pytest.param(
            _cluster(
                [V.cluster.DrsVmConfigInfo(key=VM_REF, enabled=False)],
                [V.cluster.DasVmConfigInfo(key=VM_REF)],
                ha=False,
                drs=False,
                behavior=None,
            ),
            ObservedCluster(
                "GPU-Cluster",
                "domain-c7",
                ha_enabled=False,
                drs_enabled=False,
                drs_automation="fullyAutomated",
                vm_das_restart_priority="clusterRestartPriority",
                vm_drs_enabled=False,
            ),
            id="override-without-settings-keeps-cluster-priority",
        ),
        pytest.param(
            _cluster([], [V.cluster.DasVmConfigInfo(key=VM_REF, restartPriority="low")]),
            ObservedCluster("GPU-Cluster", "domain-c7", True, True, "manual", "low"),
            id="pre-4.0-restart-priority-field",
        ),
        pytest.param(
            ObjectProps(CLUSTER, "domain-c7", {}),
            ObservedCluster("domain-c7", "domain-c7"),
            id="nothing-readable",
        ),
    ],
)
def test_observed_cluster(cluster: ObjectProps, expected: ObservedCluster) -> None:
    assert observed_cluster(cluster, "vm-1") == expected


HOST_PROPS = ObjectProps(
    HOST,
    "host-31",
    {
        "name": "esx-gpu-01.lab.local",
        "config.product.version": "8.0.2",
        "hardware.systemInfo.uuid": "sys-1",
        "capability.vmDirectPathGen2Supported": False,
        "capability.vmDirectPathGen2UnsupportedReason": ["hostNptIncompatibleProduct"],
        "capability.vmDirectPathGen2UnsupportedReasonExtended": "deprecated in 8.0",
    },
)


def test_observed_vm_maps_every_field() -> None:
    devices = [
        V.vm.device.VirtualPCIController(key=100),
        _static(13000, "0000:3b:00.0"),
        _dvs_nic(4000, "dvportgroup-12"),
    ]
    vm = _vm(
        **{
            "name": "ml-trainer-01",
            "config.instanceUuid": "5029-abcd",
            "config.version": "vmx-19",
            "config.changeVersion": "2026-11-25T21:00:00.1Z",
            "config.hardware.memoryMB": 16384,
            "config.hardware.device": devices,
            "config.memoryAllocation.reservation": 16384,
            "config.memoryReservationLockedToMax": True,
            "config.cpuHotAddEnabled": True,
            "config.memoryHotAddEnabled": True,
            "config.nestedHVEnabled": True,
            "config.ftInfo": V.vm.FaultToleranceSecondaryConfigInfo(role=2),
            "config.firmware": "efi",
            # Keys in any case (the VMX reads them case-insensitively); others are not kept.
            "config.extraConfig": [
                V.option.OptionValue(key="pciPassthru.use64bitMMIO", value="TRUE"),
                V.option.OptionValue(key="PCIPASSTHRU.64BITMMIOSIZEGB", value="128"),
                V.option.OptionValue(key="guestinfo.secret", value="not kept"),
            ],
            "snapshot": V.vm.SnapshotInfo(rootSnapshotList=[_tree()]),
            "runtime.powerState": "poweredOn",
            "runtime.host": V.HostSystem("host-31"),
            "runtime.device": [
                V.vm.DeviceRuntimeInfo(key=4000, runtimeState=STATE(vmDirectPathGen2Active=True))
            ],
        }
    )
    portgroup = ObjectProps(
        PORTGROUP,
        "dvportgroup-12",
        {
            "name": "vmfex-gen2",
            "key": "dvportgroup-12",
            "config.defaultPortConfig": V.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
                vmDirectPathGen2Allowed=V.BoolPolicy(value=True)
            ),
        },
    )
    found = observed_vm(vm, HOST_PROPS, _cluster(), [portgroup])
    assert (found.moref, found.name, found.host, found.host_moref) == (
        "vm-1", "ml-trainer-01", "esx-gpu-01.lab.local", "host-31",
    )  # fmt: skip
    assert (found.instance_uuid, found.host_version, found.host_system_id) == (
        "5029-abcd", "8.0.2", "sys-1",
    )  # fmt: skip
    assert (found.power_state, found.memory_mb, found.memory_reservation_mb) == (
        "poweredOn", 16384, 16384,
    )  # fmt: skip
    assert found.memory_reservation_locked_to_max
    assert (found.cpu_hot_add_enabled, found.memory_hot_add_enabled) == (True, True)
    assert found.nested_hv_enabled
    assert (found.ft_configured, found.ft_role, found.snapshot_count) == (True, 2, 1)
    assert (found.hardware_version, found.change_version) == ("vmx-19", "2026-11-25T21:00:00.1Z")
    assert (found.firmware, found.use64bit_mmio, found.mmio_size_gb) == ("efi", "TRUE", "128")
    assert [d.key for d in found.pci_devices] == [13000]
    assert [(n.key, n.portgroup, n.gen2_allowed, n.gen2_active) for n in found.nics] == [
        (4000, "vmfex-gen2", True, True)
    ]
    assert found.cluster is not None
    assert found.cluster.name == "GPU-Cluster"


def test_observed_vm_with_nothing_readable() -> None:
    """An inaccessible VM on a disconnected host reports almost nothing: defaults, no error."""
    found = observed_vm(_vm("vm-9"), None, None)
    assert (found.name, found.host, found.power_state, found.hardware_version) == (
        "vm-9", "", "poweredOff", "",
    )  # fmt: skip
    assert (found.pci_devices, found.nics, found.cluster) == ((), (), None)
    assert (found.ft_configured, found.snapshot_count) == (False, 0)
    assert (found.firmware, found.use64bit_mmio, found.mmio_size_gb) == ("", None, None)


def test_attached_to_vms_other_vms_only_sorted() -> None:
    others = [
        _vm("vm-1", **{"config.hardware.device": [_static(13000, "0000:3b:00.0")]}),
        _vm("vm-3", name="zeta", **{"config.hardware.device": [_static(13000, "0000:3B:00.0")]}),
        _vm("vm-2", name="alpha", **{"config.hardware.device": [_static(13000, "0000:3b:00.0")]}),
        _vm(
            "vm-4",
            name="dyn-running",
            **{"config.hardware.device": [_dynamic(13000, [(1, 2)], assigned="0000:af:00.0")]},
        ),
        _vm("vm-5", name="dyn-off", **{"config.hardware.device": [_dynamic(13000, [(1, 2)])]}),
    ]
    assert attached_to_vms("vm-1", others) == {
        "0000:3b:00.0": ("alpha", "zeta"),
        "0000:af:00.0": ("dyn-running",),
    }


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (HOST_PROPS, (False, ("hostNptIncompatibleProduct", "deprecated in 8.0"))),
        (ObjectProps(HOST, "h", {"capability.vmDirectPathGen2Supported": True}), (True, ())),
        (None, (False, ())),
    ],
)
def test_gen2_support(host: ObjectProps | None, expected: tuple[bool, tuple[str, ...]]) -> None:
    assert gen2_support(host) == expected
