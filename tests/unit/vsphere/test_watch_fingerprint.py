"""The fingerprint a watch recovery compares VMs by: equal values, equal fingerprints; any field
that differs, at any depth, a different one (pyVmomi's objects compare by identity)."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from dpio.vsphere.watch import fingerprint


def _devices(backing_id: str = "0000:3b:00.0", host: str = "host-1") -> list[Any]:
    backing = vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(
        id=backing_id, deviceId="20b5", systemId="abc", vendorId=0x10DE, deviceName="A100"
    )
    device = vim.vm.device.VirtualPCIPassthrough(
        key=13000, deviceInfo=vim.Description(label="PCI device 0", summary="A100"), backing=backing
    )
    return [device, vim.HostSystem(host)]


def test_equal_values_have_equal_fingerprints() -> None:
    assert fingerprint(_devices()) == fingerprint(_devices())
    assert fingerprint("poweredOn") == fingerprint("poweredOn")
    assert fingerprint(None) == fingerprint(None)


def test_a_field_that_differs_at_any_depth_changes_the_fingerprint() -> None:
    assert fingerprint(_devices()) != fingerprint(_devices(backing_id="0000:3c:00.0"))
    assert fingerprint(_devices()) != fingerprint(_devices(host="host-2"))
    assert fingerprint(_devices()) != fingerprint(_devices()[:1])
    assert fingerprint(vim.HostSystem("host-1")) != fingerprint(vim.VirtualMachine("host-1"))
