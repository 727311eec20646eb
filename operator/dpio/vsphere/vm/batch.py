"""Concurrent VM reads share one `RetrievePropertiesEx`. Blocking.

Each assignment's observation reads its VM and its host (reader.py, step 1). When a fleet
converges, several reconciles read at once: instead of one call each, the first caller leads
and reads every VM asked for until then in one call (two filter specs per VM, vCenter answers
them together); whoever asks while that call is in flight is served by the next one, led by the
first of them. A lone read costs what it did; a busy fleet costs about one call per batch
(docs/benchmarks.md, issue 17).

A caller may name the VMs it expects to be asked for next (`ahead`: the VMs of the next queued
assignments); the call reads them too, up to `MAX_BATCH` VMs in all, and keeps their answers
for their own callers (read_ahead.py). At a restart over 1,000 converged VMs that is one call
per `MAX_BATCH` VMs instead of about one per VM.

One VM that no longer exists fails the whole call (`ManagedObjectNotFound`): the call is made
again without the VMs read ahead, then one VM at a time, so each caller gets its own answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dpio.vsphere.connect import Connection
from dpio.vsphere.errors import ObjectNotFound
from dpio.vsphere.properties import ObjectProps
from dpio.vsphere.vm.read_ahead import ReadAhead

Objects = Mapping[tuple[str, str], ObjectProps]
#: Reads `[(vm moref, host moref), ...]` in one call -> the merged objects. Raises the adapter's
#: errors (`ObjectNotFound` when one of them no longer exists).
ReadMany = Callable[[Connection, Sequence[tuple[str, str]]], Objects]
#: At most this many VMs per call (an answer of a few hundred objects, in pages).
MAX_BATCH = 32


@dataclass(eq=False)
class _Request:
    conn: Connection
    target: tuple[str, str]
    #: (VM moref, host moref) of the VMs its caller expects to be asked for next.
    ahead: Sequence[tuple[str, str]] = ()
    #: Set when the request was served, or when its thread is to lead the next call (`lead`).
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    objects: Objects | None = None
    error: BaseException | None = None


class BatchedReads:
    """Shared by every reconcile of one vCenter (VMReader holds one)."""

    def __init__(self, read_many: ReadMany, max_batch: int = MAX_BATCH) -> None:
        self._read_many = read_many
        self._max = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._leading = False
        self.ahead = ReadAhead()
        self.calls = 0  # calls made (tests and benchmarks read it)

    def read(
        self,
        conn: Connection,
        vm_moref: str,
        host_moref: str,
        ahead: Sequence[tuple[str, str]] = (),
    ) -> Objects | None:
        """The objects of this VM's read (its own among others', or read ahead for it); None
        when the VM (or the host we thought it on) no longer exists. `ahead`: (VM, host) of
        the VMs likely asked for next, to read in the same call."""
        kept = self.ahead.take(conn, vm_moref, host_moref)
        if kept is not None:
            return kept
        request = _Request(conn, (vm_moref, host_moref), ahead)
        with self._lock:
            self._pending.append(request)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            request.wake.wait()
            if not request.lead:
                return _answer(request)
            request.wake.clear()  # handed the lead: it is still pending, first in line
            request.lead = False
        self._lead(conn)
        request.wake.wait()
        return _answer(request)

    def _lead(self, conn: Connection) -> None:
        """Read one batch: the leader's connection's requests pending now; then hand the lead
        to the first request left, if any."""
        with self._lock:
            batch = [r for r in self._pending if r.conn is conn][: self._max]
            for r in batch:
                self._pending.remove(r)
        try:
            self._serve(conn, batch)
        finally:
            with self._lock:
                nxt = self._pending[0] if self._pending else None
                if nxt is None:
                    self._leading = False
                else:
                    nxt.lead = True
            if nxt is not None:
                nxt.wake.set()

    def _extra(self, batch: list[_Request]) -> list[tuple[str, str]]:
        """The VMs to read ahead with `batch`: named by its callers, not in it, not kept."""
        own = {r.target[0] for r in batch}
        named = [t for r in batch for t in r.ahead if t[0] not in own]
        return self.ahead.wanted(named)[: max(0, self._max - len(batch))]

    def _serve(self, conn: Connection, batch: list[_Request]) -> None:
        try:
            try:
                self.calls += 1
                objects = self._read_with_extra(conn, batch)
                for r in batch:
                    r.objects = objects
            except ObjectNotFound:
                if len(batch) == 1:
                    batch[0].objects = None  # gone
                else:
                    self._one_by_one(conn, batch)
        except BaseException as err:  # every caller sees the call's own error
            for r in batch:
                r.error = err
        finally:
            for r in batch:
                r.wake.set()

    def _read_with_extra(self, conn: Connection, batch: list[_Request]) -> Objects:
        """The batch and the VMs read ahead with it; the batch alone if one of those is gone
        (it is its own caller's to find out)."""
        targets = [r.target for r in batch]
        extra = self._extra(batch)
        if not extra:
            return self._read_many(conn, targets)
        token = self.ahead.begin()
        try:
            objects = self._read_many(conn, targets + extra)
            self.ahead.keep(token, conn, extra, objects)
            return objects
        except ObjectNotFound:
            self.calls += 1
            return self._read_many(conn, targets)
        finally:
            self.ahead.end()

    def _one_by_one(self, conn: Connection, batch: list[_Request]) -> None:
        for r in batch:
            try:
                self.calls += 1
                r.objects = self._read_many(conn, [r.target])
            except ObjectNotFound:
                r.objects = None
            except BaseException as err:
                r.error = err


def _answer(request: _Request) -> Objects | None:
    if request.error is not None:
        raise request.error
    return request.objects
