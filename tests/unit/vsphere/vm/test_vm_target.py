"""EnvironmentBrowser answers -> ConfigTarget and the per-VM passthrough limit (no server)."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from dpio.planner.vm.observed import ConfigTarget, ConfigTargetDynamic, ConfigTargetPci
from dpio.vsphere.vm.target import config_target, passthrough_limit

V: Any = vim


def _pci(address: str, vendor: int, device: int, name: str = "") -> Any:
    pci = V.host.PciDevice(id=address, vendorId=vendor, deviceId=device, deviceName=name)
    return V.vm.PciPassthroughInfo(name=name, pciDevice=pci, systemId="sys-1")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(None, ConfigTarget(), id="nothing"),
        pytest.param(V.vm.ConfigTarget(), ConfigTarget(), id="no-devices"),
        pytest.param(
            V.vm.ConfigTarget(
                pciPassthrough=[
                    _pci("0000:3B:00.0", 0x10DE, 0x20B5, "GA100"),
                    _pci("0000:18:00.1", -32634, 0x1572),  # int16 on the wire (govmomi #2248)
                ],
                dynamicPassthrough=[
                    V.vm.DynamicPassthroughInfo(
                        name="GA100", vendorId=0x10DE, deviceId=0x20B5, customLabel="a100"
                    )
                ],
            ),
            ConfigTarget(
                pci_passthrough=(
                    ConfigTargetPci("0000:3b:00.0", "sys-1", 0x10DE, 0x20B5, "GA100"),
                    ConfigTargetPci("0000:18:00.1", "sys-1", 0x8086, 0x1572, ""),
                ),
                dynamic_passthrough=(ConfigTargetDynamic(0x10DE, 0x20B5, "a100", "GA100"),),
            ),
            id="static-and-dynamic",
        ),
    ],
)
def test_config_target(target: Any, expected: ConfigTarget) -> None:
    assert config_target(target) == expected


def test_config_target_backing_is_lower_hex() -> None:
    found = config_target(V.vm.ConfigTarget(pciPassthrough=[_pci("0000:3b:00.0", 0x10DE, -24145)]))
    assert found.pci_passthrough[0].backing().device_id == "a1af"


def _option(*device_options: Any) -> Any:
    hardware = V.vm.VirtualHardwareOption()
    if device_options:
        hardware.virtualDeviceOption = list(device_options)
    return V.vm.ConfigOption(hardwareOptions=hardware)


def _pci_controller(limit: int | None) -> Any:
    option = V.vm.device.VirtualPCIControllerOption(type=V.vm.device.VirtualPCIController)
    if limit is not None:
        option.numPCIPassthroughDevices = V.option.IntOption(min=0, max=limit, defaultValue=0)
    return option


@pytest.mark.parametrize(
    ("option", "limit"),
    [
        pytest.param(_option(_pci_controller(16)), 16, id="7.x"),
        pytest.param(
            _option(
                V.vm.device.VirtualSIOControllerOption(type=V.vm.device.VirtualSIOController),
                _pci_controller(128),
            ),
            128,
            id="among-other-options",
        ),
        pytest.param(_option(_pci_controller(None)), None, id="not-reported"),
        pytest.param(_option(), None, id="no-pci-controller"),
        pytest.param(None, None, id="no-option"),
    ],
)
def test_passthrough_limit(option: Any, limit: int | None) -> None:
    assert passthrough_limit(option) == limit
