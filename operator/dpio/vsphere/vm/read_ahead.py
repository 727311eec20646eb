"""Answers read ahead for the VMs the next queued assignments will ask for. Thread-safe.

Batched reads (batch.py) share a call between reads asked for at the same moment. After a
restart, or when many assignments arrive at once, the workers mostly ask one after another, so
that alone left about one read per VM (806 reads for 1,000 VMs; docs/benchmarks.md). The
reconciler now names the VMs of the assignments queued next (`ahead`); the batch reads them
in the same call, and their answers wait here for their own reconcile, which takes each once.

An answer kept here is trusted only as long as a read made by that reconcile itself would say the
same, as far as the operator can know:

- it is dropped after `TTL` seconds (a cluster's HA/DRS overrides and a port group's settings
  are not in the change watch);
- a change the watch reports to a VM or host drops every answer that holds that object: the VM
  itself, its host, or a VM of the same host whose devices the answer counts;
- a VM that appears, disappears or moves to another host drops all of them (some host's list of
  VMs changed);
- the operator's own writes drop what they touch before the write starts;
- a change reported while a read is in flight also drops that read's answers when they land.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from dpio.vsphere.properties import ObjectProps, moref_id
from dpio.vsphere.watch import Change

Objects = Mapping[tuple[str, str], ObjectProps]
#: An answer older than this is not used: it is read again.
TTL_SECONDS = 10.0
#: At most this many answers are kept, from at most MAX_CALLS calls: an answer is kept whole
#: while any of its VMs waits (about 1 MiB for 32 VMs in the simulator), so a few VMs left
#: untaken in each of many calls would otherwise hold many calls' answers
#: (docs/benchmarks.md, finding 40).
MAX_KEPT = 128
MAX_CALLS = 3
_VM, _HOST = "VirtualMachine", "HostSystem"


@dataclass(frozen=True, slots=True)
class _Kept:
    conn: object
    host: str
    objects: Objects
    morefs: frozenset[str]  # what the answer depends on (`_held`): a change to one drops it
    at: float


def dropped_by(changes: Iterable[Change]) -> frozenset[str] | None:
    """The morefs whose kept answers `changes` make stale; None: all of them.

    The watch's first full state is what is there, not a change: it drops nothing."""
    morefs: set[str] = set()
    for change in changes:
        if change.startup:
            continue
        if change.kind == _VM and (change.operation != "modify" or "runtime.host" in change.paths):
            return None
        if change.kind == _HOST and change.operation != "modify":
            return None
        morefs.add(change.moref)
    return frozenset(morefs)


def _held(objects: Objects, vm: str, host: str) -> frozenset[str] | None:
    """What the answer for `vm` on `host` depends on among what the watch follows: the VM, its
    host and the host's VMs (whose devices it counts, reader.VMRead.attached_to_vms). None when
    the answer has no such VM."""
    if (_VM, vm) not in objects:
        return None
    found = objects.get((_HOST, host))
    on_host = {moref_id(v) for v in (found.get("vm") or ())} if found is not None else set()
    return frozenset({vm, host, *on_host})


class ReadAhead:
    """VM moref -> the answer read ahead for it, until taken, dropped or expired."""

    def __init__(
        self,
        *,
        ttl: float = TTL_SECONDS,
        limit: int = MAX_KEPT,
        calls: int = MAX_CALLS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl, self._limit, self._calls, self._clock = ttl, limit, calls, clock
        self._lock = threading.Lock()
        self._kept: dict[str, _Kept] = {}
        self._generation = 0  # counts forgets
        self._in_flight = 0
        #: (generation, morefs or None for all) forgotten while a read was in flight.
        self._log: list[tuple[int, frozenset[str] | None]] = []
        self.taken = 0  # answers served from here (tests and benchmarks read it)

    def take(self, conn: object, vm: str, host: str) -> Objects | None:
        """The answer kept for `vm` on `host` through `conn`, once; None if there is none."""
        with self._lock:
            kept = self._kept.pop(vm, None)
            now = self._clock()
            self._expire(now)  # a take adds nothing, so the bounds hold: only age to drop
            if kept is None or kept.conn is not conn or kept.host != host:
                return None
            if now - kept.at > self._ttl:
                return None
            self.taken += 1
            return kept.objects

    def wanted(self, targets: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Of `targets`, those with no fresh answer kept (in order, each once)."""
        now = self._clock()
        seen: set[str] = set()
        wanted = []
        with self._lock:
            for vm, host in targets:
                kept = self._kept.get(vm)
                if vm in seen or (kept is not None and now - kept.at <= self._ttl):
                    continue
                seen.add(vm)
                wanted.append((vm, host))
        return wanted

    def begin(self) -> int:
        """A read starts; returns its token for `keep` and `end`."""
        with self._lock:
            self._in_flight += 1
            return self._generation

    def keep(
        self, token: int, conn: object, targets: Sequence[tuple[str, str]], objects: Objects
    ) -> None:
        """Keep the answers of `targets` from the read started with `token`, except those
        holding something that changed since it started."""
        with self._lock:
            stale: set[str] = set()
            for generation, changed in self._log:
                if generation <= token:
                    continue
                if changed is None:
                    return
                stale |= changed
            now = self._clock()
            for vm, host in targets:
                held = _held(objects, vm, host)
                if held is None or held & stale:
                    continue
                self._kept.pop(vm, None)
                self._kept[vm] = _Kept(conn, host, objects, held, now)
            self._trim(now)

    def end(self) -> None:
        """A read ended (with or without `keep`)."""
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._log.clear()

    def forget(self, morefs: Iterable[str] | None) -> None:
        """Drop every answer holding one of `morefs` (None: all of them)."""
        wanted = None if morefs is None else frozenset(morefs)
        if wanted is not None and not wanted:
            return
        with self._lock:
            self._generation += 1
            if self._in_flight:
                self._log.append((self._generation, wanted))
            if wanted is None:
                self._kept.clear()
                return
            for vm in [vm for vm, kept in self._kept.items() if kept.morefs & wanted]:
                del self._kept[vm]

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def _expire(self, now: float) -> None:
        for vm in [vm for vm, kept in self._kept.items() if now - kept.at > self._ttl]:
            del self._kept[vm]

    def _trim(self, now: float) -> None:
        """Drop what expired, then the oldest while over either bound."""
        self._expire(now)
        while len(self._kept) > self._limit:
            del self._kept[next(iter(self._kept))]
        while len({id(kept.objects) for kept in self._kept.values()}) > self._calls:
            oldest = next(iter(self._kept.values())).objects
            for vm in [vm for vm, kept in self._kept.items() if kept.objects is oldest]:
                del self._kept[vm]
