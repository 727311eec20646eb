"""One watch report, two speeds: hosts whose VMs changed reach their policies after a short
settle (PolicyTriggers.vm_hosts_changed); changes of the hosts themselves, and reports that may
concern any host, at once (app/wiring.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dpio.app.wiring import VCenters
from dpio.vsphere.session import SessionCache
from dpio.vsphere.watch import Change

VM_HOSTS = {"vm-1": "host-1", "vm-2": "host-2"}


class FakeAdapter:
    """`changed_hosts` as the host adapter answers it: a VM's host, None for a new object."""

    class client:  # noqa: N801 - stands for the adapter's VCenterClient
        server = "vc"

    def changed_hosts(self, changes: Sequence[Change]) -> frozenset[str] | None:
        found: set[str] = set()
        for c in changes:
            if c.operation != "modify":
                return None
            found.add(VM_HOSTS[c.moref] if c.kind == "VirtualMachine" else c.moref)
        return frozenset(found)


def vm(moref: str, operation: str = "modify") -> Change:
    return Change("VirtualMachine", moref, operation, frozenset({"config.hardware.device"}))


def host(moref: str) -> Change:
    return Change("HostSystem", moref, "modify", frozenset({"config.pciPassthruInfo"}))


def _reports(changes: list[Change], *, split: bool) -> list[tuple[str, Any]]:
    told: list[tuple[str, Any]] = []
    vcenters = VCenters(None, SessionCache(), "dpio-system", "vc")  # type: ignore[arg-type]
    vcenters.on_change = lambda _a, hosts: told.append(("now", hosts))
    if split:
        vcenters.on_vm_hosts = lambda _a, hosts: told.append(("settle", hosts))
    vcenters._changed(FakeAdapter(), changes)  # type: ignore[arg-type]
    return told


@pytest.mark.parametrize(
    ("changes", "told"),
    [
        pytest.param([vm("vm-1"), vm("vm-2")], [("settle", frozenset({"host-1", "host-2"}))],
                     id="vms-only-settle"),
        pytest.param([host("host-3")], [("now", frozenset({"host-3"}))], id="a-host-at-once"),
        pytest.param([host("host-3"), vm("vm-1")],
                     [("now", frozenset({"host-3"})), ("settle", frozenset({"host-1"}))],
                     id="both"),
        pytest.param([vm("vm-1"), vm("vm-9", "enter")], [("now", None)],
                     id="a-new-vm-concerns-any-host-at-once"),
        pytest.param([], [("now", frozenset())], id="nothing"),
    ],
)  # fmt: skip
def test_vm_changes_settle_and_host_changes_do_not(
    changes: list[Change], told: list[tuple[str, Any]]
) -> None:
    assert _reports(changes, split=True) == told


def test_without_a_settle_callback_every_change_goes_at_once_in_one_report() -> None:
    assert _reports([host("host-3"), vm("vm-1")], split=False) == [
        ("now", frozenset({"host-1", "host-3"}))
    ]


def test_answers_read_ahead_hear_of_every_report_first_by_server() -> None:
    """What was read ahead for VMs (vsphere/vm/read_ahead.py) is dropped before any trigger can
    queue a reconcile that would take it."""
    told: list[tuple[str, Any]] = []
    vcenters = VCenters(None, SessionCache(), "dpio-system", "vc")  # type: ignore[arg-type]
    vcenters.on_changes = lambda server, changes: told.append(("stale", (server, len(changes))))
    vcenters.on_change = lambda _a, hosts: told.append(("now", hosts))
    vcenters.on_vm_change = lambda vms: told.append(("vms", vms))
    vcenters._changed(FakeAdapter(), [host("host-3"), vm("vm-1")])  # type: ignore[arg-type]
    assert told[0] == ("stale", ("vc", 2))
    assert [kind for kind, _ in told[1:]] == ["now", "vms"]
