"""What goes on the wire: PciPassthruConfig fields per API version, version negotiation, updates."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim, vmodl

from dpio.planner.host.host_plan import PassthruChange
from dpio.vsphere.connect import pick_version, supported_versions
from dpio.vsphere.host.ops import passthru_configs
from dpio.vsphere.watch import Change, changes_of, merged_paths

V: Any = vim
PC: Any = vmodl.query.PropertyCollector


@pytest.mark.parametrize(
    ("api_version", "apply_now", "label"),
    [
        ("6.7", None, None),  # neither field exists before 7.0
        ("7.0.0.0", True, None),  # applyNow since 7.0, hardwareLabel since 7.0.2
        ("7.0.2.0", True, "a100"),
        ("8.0.3.0", True, "a100"),
        ("", None, None),  # unknown: send only what every version understands
    ],
)
def test_passthru_configs_follow_the_host_api(
    api_version: str, apply_now: bool | None, label: str | None
) -> None:
    change = PassthruChange("0000:3b:00.0", True, apply_now=True, hardware_label="a100")
    (config,) = passthru_configs([change], api_version)
    assert (config.id, config.passthruEnabled) == ("0000:3b:00.0", True)
    assert (config.applyNow, config.hardwareLabel) == (apply_now, label)


def test_passthru_configs_leave_an_unchanged_label_unset() -> None:
    changes = [PassthruChange("0000:3b:00.0", False, apply_now=False)]
    (config,) = passthru_configs(changes, "8.0.2.0")
    assert (config.passthruEnabled, config.applyNow, config.hardwareLabel) == (False, False, None)


VERSIONS_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<namespaces version="1.0">
 <namespace><name>urn:vim25</name><version>8.0.3.0</version>
  <priorVersions><version>8.0.2.0</version><version>7.0</version></priorVersions></namespace>
 <namespace><name>urn:sms</name><version>9.9</version></namespace>
</namespaces>"""


def test_supported_versions_reads_only_vim25() -> None:
    assert supported_versions(VERSIONS_XML) == {"8.0.3.0", "8.0.2.0", "7.0"}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({"8.0.3.0", "8.0.2.0"}, "vim.version.v8_0_3_0"),
        ({"7.0.3.0", "7.0"}, "vim.version.v7_0_3_0"),
        ({"6.5", "6.0"}, "vim.version.version11"),
        ({"99.0"}, None),
        (set(), None),
    ],
)
def test_pick_version_takes_the_newest_both_speak(server: set[str], expected: str | None) -> None:
    assert pick_version(server) == expected


def _update(obj: Any, kind: str, *paths: str) -> Any:
    changes = [PC.Change(name=p, op="assign") for p in paths]
    return PC.ObjectUpdate(kind=kind, obj=obj, changeSet=changes)


def test_changes_of_lists_objects_and_paths() -> None:
    update_set = PC.UpdateSet(
        version="2",
        filterSet=[
            PC.FilterUpdate(
                objectSet=[
                    _update(V.HostSystem("host-1"), "modify", "config.pciPassthruInfo"),
                    _update(V.VirtualMachine("vm-7"), "leave"),
                ]
            )
        ],
    )
    assert changes_of(update_set) == [
        Change("HostSystem", "host-1", "modify", frozenset({"config.pciPassthruInfo"})),
        Change("VirtualMachine", "vm-7", "leave", frozenset()),
    ]
    assert changes_of(PC.UpdateSet(version="3")) == []
    assert {c.startup for c in changes_of(update_set, startup=True)} == {True}


def test_one_watch_covers_every_path_each_reader_needs_once() -> None:
    merged = merged_paths(
        {V.HostSystem: ("name", "config.pciPassthruInfo"), V.VirtualMachine: ("name",)},
        {V.VirtualMachine: ("name", "runtime.powerState"), V.ClusterComputeResource: ("name",)},
    )
    assert merged == {
        V.HostSystem: ("name", "config.pciPassthruInfo"),
        V.VirtualMachine: ("name", "runtime.powerState"),
        V.ClusterComputeResource: ("name",),
    }
