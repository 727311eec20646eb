"""The VM lookup index, merging of results from two filter specs, typed task errors."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim, vmodl

from dpio.vsphere import errors
from dpio.vsphere.properties import ObjectProps
from dpio.vsphere.vm.lookup import AmbiguousVMName, VMIndex
from dpio.vsphere.vm.ops import typed_task_error
from dpio.vsphere.vm.reader import merged

V: Any = vim
PC: Any = vmodl.query.PropertyCollector
PROPERTY: Any = vmodl.DynamicProperty


def _entry(moref: str, name: str, uuid: str, host: str) -> ObjectProps:
    props = {"name": name, "config.instanceUuid": uuid, "runtime.host": V.HostSystem(host)}
    return ObjectProps("VirtualMachine", moref, props)


def _index() -> VMIndex:
    index = VMIndex()
    index.fill(
        [
            _entry("vm-1", "trainer", "5029-AAAA", "host-1"),
            _entry("vm-2", "twin", "5029-bbbb", "host-1"),
            _entry("vm-3", "twin", "5029-cccc", "host-2"),
            _entry("vm-4", "template", "", "host-2"),
        ]
    )
    return index


@pytest.mark.parametrize(
    ("name", "uuid", "expected"),
    [
        ("trainer", "", ("vm-1", "host-1")),
        ("", "5029-aaaa", ("vm-1", "host-1")),  # UUIDs compare case-insensitively
        ("", "5029-CCCC", ("vm-3", "host-2")),
        ("missing", "", None),
        ("", "5029-dddd", None),
        ("twin", "5029-bbbb", ("vm-2", "host-1")),  # the UUID decides when both are given
    ],
)
def test_index_find(name: str, uuid: str, expected: tuple[str, str] | None) -> None:
    assert _index().find(name, uuid) == expected


def test_index_refuses_an_ambiguous_name() -> None:
    with pytest.raises(AmbiguousVMName, match=r"More than one VM .* named 'twin'") as info:
        _index().find("twin", "")
    assert not info.value.retryable
    assert "vm-2" not in str(info.value)  # other VMs (maybe other teams') are not named


def test_index_moved_and_generation() -> None:
    index = _index()
    assert index.generation == 1
    index.moved("vm-1", "host-9")
    assert index.find("trainer", "") == ("vm-1", "host-9")
    assert index.find("", "5029-aaaa") == ("vm-1", "host-9")
    index.fill([])
    assert (index.generation, index.find("trainer", "")) == (2, None)


def _content(obj: Any, **props: Any) -> Any:
    return PC.ObjectContent(obj=obj, propSet=[PROPERTY(name=k, val=v) for k, v in props.items()])


def test_merged_unions_an_object_met_by_both_specs() -> None:
    vm, host = V.VirtualMachine("vm-1"), V.HostSystem("host-1")
    found = merged(
        [
            _content(vm, name="a", **{"runtime.powerState": "poweredOn"}),
            _content(host, name="esx"),
            _content(vm, name="a", **{"config.hardware.device": []}),
        ]
    )
    assert set(found) == {("VirtualMachine", "vm-1"), ("HostSystem", "host-1")}
    assert set(found["VirtualMachine", "vm-1"].props) == {
        "name", "runtime.powerState", "config.hardware.device",
    }  # fmt: skip


def _task_failed(cause: BaseException | None) -> errors.TaskFailed:
    err = errors.TaskFailed("task ReconfigVM failed", fault="x")
    err.__cause__ = cause
    return err


@pytest.mark.parametrize(
    ("cause", "expected", "retryable"),
    [
        (V.fault.ConcurrentAccess(), errors.ConcurrentModification, True),
        (V.fault.InvalidPowerState(), errors.InvalidPowerState, True),
        (V.fault.NoPermission(), errors.NotPermitted, False),
        (V.fault.GenericVmConfigFault(), errors.TaskFailed, False),
        (None, errors.TaskFailed, False),
    ],
)
def test_typed_task_error(
    cause: BaseException | None, expected: type[errors.VSphereError], retryable: bool
) -> None:
    typed = typed_task_error(_task_failed(cause))
    assert type(typed) is expected
    assert typed.retryable is retryable
    assert typed.message == "task ReconfigVM failed"
