"""The last-read NICs a NIC edit sends back (VMReader.current_nics): kept for the VMs observed
most recently, read again for the others."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pyVmomi import vim

from dpio.vsphere.errors import ConcurrentModification
from dpio.vsphere.properties import ObjectProps
from dpio.vsphere.vm.reader import VMReader

V: Any = vim


def _vm(moref: str, version: str) -> ObjectProps:
    devices = [V.vm.device.VirtualVmxnet3(key=4000), V.vm.device.VirtualDisk(key=2000)]
    props = {"config.hardware.device": devices, "config.changeVersion": version}
    return ObjectProps(kind="VirtualMachine", moref=moref, props=props)


class _Conn:
    """Answers a read of one VM's devices; counts the reads."""

    def __init__(self, version: str) -> None:
        self.reads = 0
        self.version = version
        self.content = self

    @property
    def propertyCollector(self) -> _Conn:
        return self

    def ref(self, kind: type, moref: str) -> Any:
        return V.VirtualMachine(moref)

    def RetrievePropertiesEx(self, specs: list[Any], options: Any) -> Any:
        self.reads += 1
        moref = specs[0].objectSet[0].obj._moId
        vm = _vm(moref, self.version)
        # Plain stand-ins for ObjectContent / DynamicProperty: flattening reads only these.
        props = [SimpleNamespace(name=k, val=v) for k, v in vm.props.items()]
        content = SimpleNamespace(obj=V.VirtualMachine(moref), propSet=props, missingSet=[])
        return SimpleNamespace(objects=[content], token=None)


def test_nics_are_kept_for_the_vms_observed_last_and_read_again_for_the_others() -> None:
    reader = VMReader()
    for i in range(VMReader.KEEP_NICS + 10):
        reader._remember_nics(_vm(f"vm-{i}", "v1"))
    conn: Any = _Conn("v1")

    recent = reader.current_nics(conn, f"vm-{VMReader.KEEP_NICS + 9}", "v1")
    assert list(recent) == [4000]  # the vmxnet3 only
    assert conn.reads == 0
    evicted = reader.current_nics(conn, "vm-0", "v1")
    assert list(evicted) == [4000]
    assert conn.reads == 1
    assert len(reader._nics) == VMReader.KEEP_NICS


def test_a_vm_edited_since_it_was_planned_is_refused() -> None:
    reader = VMReader()
    reader._remember_nics(_vm("vm-1", "v1"))
    conn: Any = _Conn("v2")  # someone edited it: vCenter has v2
    with pytest.raises(ConcurrentModification):
        reader.current_nics(conn, "vm-1", "v2-planned")
    assert conn.reads == 1
