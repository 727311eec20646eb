"""Answers read ahead (read_ahead.py, batch.py): a VM named ahead is read in the caller's call and
its own reconcile takes the answer once; anything that may have made it stale drops it, so a
reconcile never plans on what a read of its own would not have said."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dpio.vsphere.errors import ObjectNotFound
from dpio.vsphere.properties import ObjectProps
from dpio.vsphere.vm.batch import BatchedReads
from dpio.vsphere.vm.read_ahead import ReadAhead, dropped_by
from dpio.vsphere.watch import Change

CONN: Any = object()


class Ref:
    """A managed object reference as pyVmomi gives it (`_moId`)."""

    def __init__(self, moref: str) -> None:
        self._moId = moref


def answer(targets: Sequence[tuple[str, str]], vms_of_host: dict[str, list[str]]) -> Any:
    objects: dict[tuple[str, str], ObjectProps] = {}
    for vm, host in targets:
        objects[("VirtualMachine", vm)] = ObjectProps("VirtualMachine", vm, {"name": vm})
        on_host = [Ref(m) for m in vms_of_host.get(host, [vm])]
        objects[("HostSystem", host)] = ObjectProps("HostSystem", host, {"vm": on_host})
    return objects


class FakeVCenter:
    def __init__(self, gone: frozenset[str] = frozenset()) -> None:
        self.gone = gone
        self.calls: list[list[str]] = []
        self.hosts: dict[str, list[str]] = {}
        self.during: Any = None  # called inside the next call (a change reported meanwhile)

    def read_many(self, conn: Any, targets: Sequence[tuple[str, str]]) -> Any:
        self.calls.append([vm for vm, _ in targets])
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if any(vm in self.gone for vm, _ in targets):
            raise ObjectNotFound("ManagedObjectNotFound")
        return answer(targets, self.hosts)


def vm_change(moref: str, *paths: str, operation: str = "modify") -> Change:
    return Change("VirtualMachine", moref, operation, frozenset(paths))


AHEAD = [("vm-2", "host-1"), ("vm-3", "host-2")]


def test_vms_named_ahead_are_read_in_the_same_call_and_taken_without_one() -> None:
    vc = FakeVCenter()
    batch = BatchedReads(vc.read_many)
    first = batch.read(CONN, "vm-1", "host-1", AHEAD)
    assert first is not None
    assert ("VirtualMachine", "vm-1") in first
    second = batch.read(CONN, "vm-2", "host-1")
    third = batch.read(CONN, "vm-3", "host-2")
    assert vc.calls == [["vm-1", "vm-2", "vm-3"]]
    assert second is not None
    assert ("VirtualMachine", "vm-2") in second
    assert third is not None
    assert ("VirtualMachine", "vm-3") in third
    assert batch.ahead.taken == 2


def test_an_answer_is_taken_once() -> None:
    vc = FakeVCenter()
    batch = BatchedReads(vc.read_many)
    batch.read(CONN, "vm-1", "host-1", AHEAD)
    batch.read(CONN, "vm-2", "host-1")
    batch.read(CONN, "vm-2", "host-1")  # a second reconcile of it reads again
    assert vc.calls == [["vm-1", "vm-2", "vm-3"], ["vm-2"]]


def test_a_read_ahead_reaches_at_most_the_batch_size_and_skips_what_is_kept() -> None:
    vc = FakeVCenter()
    batch = BatchedReads(vc.read_many, max_batch=3)
    named = [(f"vm-{i}", "host-1") for i in range(2, 10)]
    batch.read(CONN, "vm-1", "host-1", named)
    batch.read(CONN, "vm-9", "host-1", named)  # vm-2 and vm-3 kept: vm-4 and vm-5 next
    assert vc.calls == [["vm-1", "vm-2", "vm-3"], ["vm-9", "vm-4", "vm-5"]]


def test_another_host_or_connection_is_not_served_from_what_was_kept() -> None:
    vc = FakeVCenter()
    batch = BatchedReads(vc.read_many)
    batch.read(CONN, "vm-1", "host-1", AHEAD)
    batch.read(CONN, "vm-2", "host-9")  # it moved since the lookup: a read of its own
    batch.read(object(), "vm-3", "host-2")  # a new session
    assert len(vc.calls) == 3


def test_an_answer_expires() -> None:
    now = [0.0]
    ahead = ReadAhead(ttl=10, clock=lambda: now[0])
    token = ahead.begin()
    ahead.keep(token, CONN, [("vm-2", "host-1")], answer([("vm-2", "host-1")], {}))
    ahead.end()
    now[0] = 10.5
    assert ahead.take(CONN, "vm-2", "host-1") is None


def test_a_change_to_the_vm_its_host_or_a_vm_of_its_host_drops_it() -> None:
    for changed in ("vm-2", "host-1", "vm-7"):
        vc = FakeVCenter()
        vc.hosts = {"host-1": ["vm-1", "vm-2", "vm-7"], "host-2": ["vm-3"]}
        batch = BatchedReads(vc.read_many)
        batch.read(CONN, "vm-1", "host-1", AHEAD)
        batch.ahead.forget({changed})
        batch.read(CONN, "vm-2", "host-1")
        batch.read(CONN, "vm-3", "host-2")  # another host's answer stays
        assert vc.calls[1:] == [["vm-2"]], changed


def test_a_change_reported_while_the_read_was_in_flight_drops_its_answers() -> None:
    vc = FakeVCenter()
    batch = BatchedReads(vc.read_many)
    vc.during = lambda: batch.ahead.forget({"vm-2"})
    batch.read(CONN, "vm-1", "host-1", AHEAD)
    assert batch.ahead.take(CONN, "vm-2", "host-1") is None
    assert batch.ahead.take(CONN, "vm-3", "host-2") is not None


def test_everything_changed_while_in_flight_keeps_nothing() -> None:
    vc = FakeVCenter()
    batch = BatchedReads(vc.read_many)
    vc.during = lambda: batch.ahead.forget(None)
    batch.read(CONN, "vm-1", "host-1", AHEAD)
    assert len(batch.ahead) == 0


def test_a_vm_named_ahead_that_is_gone_costs_its_callers_nothing_but_one_call() -> None:
    vc = FakeVCenter(gone=frozenset({"vm-3"}))
    batch = BatchedReads(vc.read_many)
    first = batch.read(CONN, "vm-1", "host-1", AHEAD)
    assert first is not None
    assert ("VirtualMachine", "vm-1") in first
    assert vc.calls == [["vm-1", "vm-2", "vm-3"], ["vm-1"]]
    assert len(batch.ahead) == 0


def test_what_is_kept_is_bounded() -> None:
    ahead = ReadAhead(limit=4)
    targets = [(f"vm-{i}", "host-1") for i in range(10)]
    ahead.keep(ahead.begin(), CONN, targets, answer(targets, {}))
    ahead.end()
    assert len(ahead) == 4
    assert ahead.take(CONN, "vm-9", "host-1") is not None  # the newest are kept
    assert ahead.take(CONN, "vm-0", "host-1") is None


def test_which_changes_drop_what() -> None:
    startup = Change("VirtualMachine", "vm-1", "enter", frozenset({"name"}), startup=True)
    assert dropped_by([startup]) == frozenset()
    assert dropped_by([vm_change("vm-1", "config.hardware.device")]) == {"vm-1"}
    host = Change("HostSystem", "host-1", "modify", frozenset({"config.pciPassthruInfo"}))
    assert dropped_by([host, vm_change("vm-1", "runtime.powerState")]) == {"host-1", "vm-1"}
    # A VM appearing, leaving or moving changes some host's list of VMs: everything goes.
    assert dropped_by([vm_change("vm-1", "name", operation="enter")]) is None
    assert dropped_by([vm_change("vm-1", operation="leave")]) is None
    assert dropped_by([vm_change("vm-1", "runtime.host")]) is None
    assert dropped_by([Change("HostSystem", "host-9", "leave", frozenset())]) is None


def test_answers_of_at_most_a_few_calls_are_held() -> None:
    """An answer is held whole while one of its VMs waits: a VM left untaken in each of many
    calls must not hold all those calls' answers."""
    ahead = ReadAhead(calls=2)
    for call in range(4):
        targets = [(f"vm-{call}-{i}", "host-1") for i in range(3)]
        ahead.keep(ahead.begin(), CONN, targets, answer(targets, {}))
        ahead.end()
    assert len(ahead) == 6
    assert ahead.take(CONN, "vm-1-0", "host-1") is None  # the oldest calls' answers went
    assert ahead.take(CONN, "vm-3-0", "host-1") is not None


def test_expired_answers_go_at_the_next_take() -> None:
    now = [0.0]
    ahead = ReadAhead(ttl=10, clock=lambda: now[0])
    targets = [("vm-1", "host-1"), ("vm-2", "host-1")]
    ahead.keep(ahead.begin(), CONN, targets, answer(targets, {}))
    ahead.end()
    now[0] = 11
    assert ahead.take(CONN, "vm-3", "host-1") is None
    assert len(ahead) == 0
