"""Concurrent VM reads share one call (batch.py): a lone read costs one call, reads asked for
while a call is in flight go together in the next, and one VM gone does not fail the others."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dpio.vsphere.errors import NotAuthenticated, ObjectNotFound
from dpio.vsphere.properties import ObjectProps
from dpio.vsphere.vm.batch import BatchedReads

CONN: Any = object()


class FakeVCenter:
    """Answers a batched read with one object per VM asked for; VMs in `gone` fail the call."""

    def __init__(self, gone: frozenset[str] = frozenset(), hold: threading.Event | None = None):
        self.gone = gone
        self.hold = hold  # the first call waits for it: others queue up meanwhile
        self.calls: list[list[str]] = []
        self.entered = threading.Event()

    def read_many(self, conn: Any, targets: Sequence[tuple[str, str]]) -> Any:
        self.calls.append([vm for vm, _ in targets])
        self.entered.set()
        if self.hold is not None and len(self.calls) == 1:
            assert self.hold.wait(5)
        if any(vm in self.gone for vm, _ in targets):
            raise ObjectNotFound("ManagedObjectNotFound")
        return {("VirtualMachine", vm): ObjectProps("VirtualMachine", vm, {}) for vm, _ in targets}


def test_a_lone_read_is_one_call() -> None:
    vc = FakeVCenter()
    objects = BatchedReads(vc.read_many).read(CONN, "vm-1", "host-1")
    assert objects is not None
    assert set(objects) == {("VirtualMachine", "vm-1")}
    assert vc.calls == [["vm-1"]]


def test_reads_asked_for_during_a_call_share_the_next() -> None:
    hold = threading.Event()
    vc = FakeVCenter(hold=hold)
    batch = BatchedReads(vc.read_many)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batch.read, CONN, "vm-0", "host-1")
        assert vc.entered.wait(5)
        rest = [pool.submit(batch.read, CONN, f"vm-{i}", "host-1") for i in range(1, 6)]
        while len(batch._pending) < 5:  # all five wait behind the call in flight
            threading.Event().wait(0.01)
        hold.set()
        answers = [first.result(5), *(f.result(5) for f in rest)]
    assert vc.calls[0] == ["vm-0"]
    assert sorted(vc.calls[1]) == [f"vm-{i}" for i in range(1, 6)]
    assert len(vc.calls) == 2
    for i, objects in enumerate(answers):
        assert objects is not None
        assert ("VirtualMachine", f"vm-{i}") in objects


def test_one_vm_gone_is_read_again_alone_and_only_its_caller_hears_it() -> None:
    hold = threading.Event()
    vc = FakeVCenter(gone=frozenset({"vm-2"}), hold=hold)
    batch = BatchedReads(vc.read_many)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batch.read, CONN, "vm-0", "host-1")
        assert vc.entered.wait(5)
        rest = {i: pool.submit(batch.read, CONN, f"vm-{i}", "host-1") for i in (1, 2, 3)}
        while len(batch._pending) < 3:
            threading.Event().wait(0.01)
        hold.set()
        assert first.result(5) is not None
        assert rest[2].result(5) is None
        assert rest[1].result(5) is not None
        assert rest[3].result(5) is not None
    assert vc.calls[2:] == [["vm-1"], ["vm-2"], ["vm-3"]]  # after the failed batch of three


def test_a_call_error_reaches_every_caller_of_the_batch() -> None:
    def refused(conn: Any, targets: Sequence[tuple[str, str]]) -> Any:
        raise NotAuthenticated("session expired")

    with pytest.raises(NotAuthenticated):
        BatchedReads(refused).read(CONN, "vm-1", "host-1")


def test_the_lead_passes_on_so_no_read_waits_for_ever() -> None:
    vc = FakeVCenter()
    batch = BatchedReads(vc.read_many, max_batch=2)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: batch.read(CONN, f"vm-{i}", "h"), range(40)))
    assert all(a is not None for a in answers)
    assert sum(len(c) for c in vc.calls) == 40
    assert max(len(c) for c in vc.calls) <= 2
    assert not batch._leading
    assert batch._pending == []
