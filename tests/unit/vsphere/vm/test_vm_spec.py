"""ReconfigVM / ReconfigureCluster -> pyVmomi specs, checked as objects and as the SOAP vCenter
receives (pyVmomi's own serializer, no server)."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import SoapAdapter, vim

from dpio.planner.vm.changes import NicEdit, ReconfigureCluster, ReconfigVM
from dpio.planner.vm.conflicts import DasOverrideChange, DrsOverrideChange
from dpio.planner.vm.devices import DeviceAdd, DeviceRemove
from dpio.planner.vm.observed import DynamicBacking, StaticBacking
from dpio.vsphere.errors import InvalidRequest
from dpio.vsphere.vm.spec import cluster_spec, config_spec

V: Any = vim
A100 = StaticBacking("0000:3b:00.0", "20b5", "sys-1", 0x10DE)
X710 = StaticBacking("0000:18:00.1", "1572", "sys-1", 0x8086)
A100_DYNAMIC = DynamicBacking(((0x10DE, 0x20B5),), "a100")
INTEL_DYNAMIC = DynamicBacking(((0x8086, 0x1572),), "")


SERIALIZE: Any = SoapAdapter.Serialize  # untyped


def _soap(obj: Any) -> str:
    return str(SERIALIZE(obj, version="vim.version.v8_0_3_0"))


def test_removes_come_before_adds_with_temporary_keys() -> None:
    change = ReconfigVM(
        "vm-1",
        "cv-1",
        removes=(DeviceRemove(13001, "PCI device 1"),),
        adds=(DeviceAdd(-100, "gpu0", A100), DeviceAdd(-101, "gpu1", A100_DYNAMIC)),
    )
    spec = config_spec(change)
    assert [(c.operation, c.device.key) for c in spec.deviceChange] == [
        ("remove", 13001),
        ("add", -100),
        ("add", -101),
    ]
    assert all(isinstance(c.device, V.vm.device.VirtualPCIPassthrough) for c in spec.deviceChange)
    assert spec.changeVersion == "cv-1"


@pytest.mark.parametrize(
    ("backing", "fragments"),
    [
        pytest.param(
            A100,
            [
                "<id>0000:3b:00.0</id>",
                "<deviceId>20b5</deviceId>",
                "<systemId>sys-1</systemId>",
                "<vendorId>4318</vendorId>",
            ],
            id="static-hex-device-id",
        ),
        pytest.param(
            # vendorId is xsd:short: 0x8086 goes as -32634 (WSDL; govmomi #2248).
            X710,
            ["<deviceId>1572</deviceId>", "<vendorId>-32634</vendorId>"],
            id="static-vendor-as-int16",
        ),
        pytest.param(
            A100_DYNAMIC,
            [
                "<allowedDevice><vendorId>4318</vendorId><deviceId>8373</deviceId></allowedDevice>",
                "<customLabel>a100</customLabel>",
            ],
            id="dynamic-label",
        ),
        pytest.param(
            INTEL_DYNAMIC,
            ["<vendorId>32902</vendorId><deviceId>5490</deviceId>", "<customLabel></customLabel>"],
            id="dynamic-unsigned-ids",
        ),
    ],
)
def test_backing_on_the_wire(backing: Any, fragments: list[str]) -> None:
    xml = _soap(config_spec(ReconfigVM("vm-1", "cv", adds=(DeviceAdd(-100, "d", backing),))))
    for fragment in fragments:
        assert fragment in xml


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param({}, {}, id="none-left-unset"),
        pytest.param(
            {"memory_reservation_locked_to_max": True},
            {"memoryReservationLockedToMax": True},
            id="reservation-lock",
        ),
        pytest.param(
            {
                "memory_reservation_locked_to_max": False,
                "cpu_hot_add_enabled": False,
                "memory_hot_add_enabled": False,
                "nested_hv_enabled": False,
            },
            {
                "memoryReservationLockedToMax": False,
                "cpuHotAddEnabled": False,
                "memoryHotAddEnabled": False,
                "nestedHVEnabled": False,
            },
            id="false-is-sent",
        ),
    ],
)
def test_flags_only_when_planned(flags: dict[str, Any], expected: dict[str, bool]) -> None:
    spec = config_spec(ReconfigVM("vm-1", "cv", **flags))
    names = ("memoryReservationLockedToMax", "cpuHotAddEnabled", "memoryHotAddEnabled")
    found = {n: getattr(spec, n) for n in (*names, "nestedHVEnabled")}
    assert {n: v for n, v in found.items() if v is not None} == expected
    assert not spec.deviceChange


def _vmxnet3(key: int) -> Any:
    port = V.dvs.PortConnection(switchUuid="50 1a", portgroupKey="dvportgroup-12")
    return V.vm.device.VirtualVmxnet3(
        key=key,
        macAddress="00:50:56:aa:bb:cc",
        backing=V.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port),
        uptCompatibilityEnabled=False,
    )


def test_nic_edit_sends_the_whole_adapter_with_upt_on() -> None:
    current = {4000: _vmxnet3(4000)}
    spec = config_spec(
        ReconfigVM("vm-1", "cv", nic_edits=(NicEdit(4000, "Network adapter 1"),)), current
    )
    (edit,) = spec.deviceChange
    assert edit.operation == "edit"
    assert edit.device.uptCompatibilityEnabled is True
    assert edit.device.macAddress == "00:50:56:aa:bb:cc"
    assert edit.device.backing.port.portgroupKey == "dvportgroup-12"
    assert current[4000].uptCompatibilityEnabled is False  # the cached device is not changed


def test_nic_edit_of_an_unknown_adapter_fails() -> None:
    with pytest.raises(InvalidRequest, match="4001"):
        config_spec(ReconfigVM("vm-1", "cv", nic_edits=(NicEdit(4001, "Network adapter 2"),)))


VM_REF = V.VirtualMachine("vm-1")


@pytest.mark.parametrize(
    ("drs", "das", "expected_drs", "expected_das"),
    [
        pytest.param(
            DrsOverrideChange("add", enabled=True, behavior="manual"),
            DasOverrideChange("add", "disabled"),
            ("add", True, "manual", None),
            ("add", "disabled", None),
            id="add-both",
        ),
        pytest.param(
            DrsOverrideChange("edit", enabled=False, behavior=None),
            None,
            ("edit", False, None, None),
            None,
            id="edit-drs-only",
        ),
        pytest.param(
            DrsOverrideChange("remove"),
            DasOverrideChange("remove"),
            ("remove", None, None, "vm-1"),
            ("remove", None, "vm-1"),
            id="remove-by-key",
        ),
    ],
)
def test_cluster_spec(
    drs: DrsOverrideChange | None,
    das: DasOverrideChange | None,
    expected_drs: tuple[Any, ...],
    expected_das: tuple[Any, ...] | None,
) -> None:
    spec = cluster_spec(ReconfigureCluster("domain-c7", "vm-1", drs, das), VM_REF)
    (d,) = spec.drsVmConfigSpec
    info = d.info
    assert (
        d.operation,
        info.enabled if info else None,
        info.behavior if info else None,
        d.removeKey._moId if d.removeKey is not None else None,
    ) == expected_drs
    if info is not None:
        assert info.key._moId == "vm-1"
    if expected_das is None:
        assert not spec.dasVmConfigSpec
        return
    (a,) = spec.dasVmConfigSpec
    priority = a.info.dasSettings.restartPriority if a.info else None
    removed = a.removeKey._moId if a.removeKey is not None else None
    assert (a.operation, priority, removed) == expected_das
    assert "<removeKey" in _soap(spec) or a.operation != "remove"


def test_extra_config_goes_out_as_option_values_and_empty_removes() -> None:
    change = ReconfigVM(
        "vm-1",
        "cv-1",
        extra_config=(("pciPassthru.use64bitMMIO", "TRUE"), ("pciPassthru.64bitMMIOSizeGB", "")),
    )
    assert change.needs_power_off  # read at power-on: goes with the VM off
    spec = config_spec(change)
    assert [(o.key, o.value) for o in spec.extraConfig] == [
        ("pciPassthru.use64bitMMIO", "TRUE"),
        ("pciPassthru.64bitMMIOSizeGB", ""),
    ]
    soap = _soap(spec)
    assert "<key>pciPassthru.use64bitMMIO</key>" in soap
    assert '<value xsi:type="xsd:string">TRUE</value>' in soap


def test_no_extra_config_leaves_the_field_unset() -> None:
    spec = config_spec(ReconfigVM("vm-1", "cv-1", memory_reservation_locked_to_max=True))
    assert spec.extraConfig == []
    assert "extraConfig" not in _soap(spec)
