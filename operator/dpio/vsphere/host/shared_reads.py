"""Whole-inventory reads shared between reconciles (docs/benchmarks.md, finding 3).

Without sharing, every policy's reconcile would read all hosts, clusters and VMs: O(policies x
hosts) while converging. Here a read is reused for a policy while none of ITS hosts changed
since the read started, and nothing changed that could change which hosts it selects (a host
added, removed, renamed or moved, a cluster, a VM whose host isn't known). Changes come from the
change watch (`Watcher`, over exactly the paths the read returns) and from this adapter's own
writes.

- A finished read is reused only while the watch is up, has been since before the read
  started, and the read is younger than MAX_INVENTORY_AGE_SECONDS.
- A read in flight is joined if nothing that could concern the caller changed since it
  started; once it is in, the caller's own hosts are checked again, and it reads anew if one of
  them changed meanwhile. Callers that find their data stale all join the one newest read that
  started after their hosts' last change: under a stream of changes (each policy's own writes)
  there is one read in flight, not one per caller.

So a reconcile never plans on data older than a change it knows of, and the reconcile a change
triggered (the watch counts it before the callback queues anything) always sees it.

A new read reads only what changed when it can (`read_hosts`, finding 9 in
docs/benchmarks.md): if the watch has been up since the last read started and every change since
then names its hosts, it reads those hosts (and their VMs) and puts them in place of theirs in
the last result; the others are unchanged since that read started, so the result is as fresh as
a whole read that started at the same moment. Anything else (a host came or went, a cluster
changed, no watch, the last whole read older than MAX_INVENTORY_AGE_SECONDS) reads everything.
Reads to vCenter go one at a time, so each builds on the one before.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from dpio.api.policy import HostSelector
from dpio.planner.observed import ObservedInventory
from dpio.planner.selection import InvalidSpecError, select_hosts
from dpio.vsphere.inventory_map import with_hosts

#: A whole read is not built on after this long (from its start) even when the watch reported
#: nothing: a bound on staleness should a notification be lost, like an informer's resync. Not
#: shorter: at 625 hosts a whole read takes 5-20 s under load, and with 30 s every other read
#: would be a whole one (measured in docs/benchmarks.md, finding 12).
MAX_INVENTORY_AGE_SECONDS = 300.0


class Watching(Protocol):
    """What is needed of the `Watcher`: is it up, and since when does it report every change."""

    @property
    def alive(self) -> bool: ...

    @property
    def since(self) -> float: ...


@dataclass(slots=True)
class _Read:
    seq: int  # changes counted when it was asked for (it starts then or later: never older)
    result: asyncio.Future[ObservedInventory]
    whole: float = 0.0  # when the whole read it builds on started (itself, if it is one)


#: Reads only these hosts; None when that can't stand in for a whole read (ask for one).
ReadHosts = Callable[[frozenset[str]], Awaitable[ObservedInventory | None]]


class SharedReads:
    def __init__(
        self,
        read: Callable[[], Awaitable[ObservedInventory]],
        monotonic: Callable[[], float] = time.monotonic,
        read_hosts: ReadHosts | None = None,
    ) -> None:
        self._read = read
        self._read_hosts = read_hosts
        self._monotonic = monotonic
        self.watcher: Watching | None = None
        self.reads = 0  # reads that went to vCenter (for tests)
        self.partial_reads = 0  # of which, reads of some hosts only
        self._serial = asyncio.Lock()  # one read to vCenter at a time
        self._lock = threading.Lock()  # the watch thread counts changes too
        self._seq = 0
        self._any_host_at = 0  # the last change that may concern any host
        self._host_at: dict[str, int] = {}  # host moref -> its last change
        self._last: _Read | None = None  # the newest read started
        self._done: _Read | None = None  # the newest read that succeeded

    def changed(self, hosts: Iterable[str] | None = None) -> None:
        """Count a change of `hosts` (morefs), or of anything when None."""
        with self._lock:
            self._seq += 1
            if hosts is None:
                self._any_host_at = self._seq
            else:
                for moref in hosts:
                    self._host_at[moref] = self._seq

    async def read(
        self, selector: HostSelector | None = None, *, whole_clusters: bool = False
    ) -> ObservedInventory:
        """The inventory, fresh for the hosts `selector` picks (None: for every host), and with
        `whole_clusters` for every host of their clusters too: a rolling reboot counts every
        host of a cluster against `maxUnavailable`
        (docs/design.md, "Host side: rolling reboots")."""
        done = self._done
        need = self._need(done.result.result() if done else None, selector, whole_clusters)
        if done is not None and done.seq >= need and self._watched(done):
            return done.result.result()
        last = self._last
        if last is not None and not last.result.done() and last.seq >= need:
            inventory = await asyncio.shield(last.result)
            need = self._need(inventory, selector, whole_clusters)
            if last.seq >= need:
                return inventory
        # Every caller that finds its data stale joins the one newer read, not one read each.
        last = self._last
        if last is None or last.result.done() or last.seq < need:
            last = self._last = self._start()
        return await asyncio.shield(last.result)

    def _watched(self, read: _Read) -> bool:
        """Has the watch reported every change since the whole read under `read` started?"""
        watcher = self.watcher
        young = self._monotonic() - read.whole < MAX_INVENTORY_AGE_SECONDS
        return young and watcher is not None and watcher.alive and read.whole >= watcher.since

    def _need(
        self,
        inventory: ObservedInventory | None,
        selector: HostSelector | None,
        whole_clusters: bool = False,
    ) -> int:
        """The change count a read must have started at to be fresh for this caller: the last
        change of one of the hosts `selector` picks in `inventory`, or of anything that may
        change the selection. Without the watch, or with nothing to select from: every change.
        """
        with self._lock:
            watcher = self.watcher
            if inventory is None or selector is None or watcher is None or not watcher.alive:
                return self._seq
            host_at, any_host_at, seq = dict(self._host_at), self._any_host_at, self._seq
        try:
            hosts = select_hosts(selector, inventory).hosts
        except InvalidSpecError:
            return seq
        if whole_clusters:
            clusters = {h.cluster for h in hosts if h.cluster}
            hosts = hosts + tuple(h for h in inventory.hosts if h.cluster in clusters)
        return max([any_host_at, *(host_at.get(h.moref, 0) for h in hosts)])

    def _start(self) -> _Read:
        loop = asyncio.get_running_loop()
        with self._lock:
            read = _Read(self._seq, loop.create_future())
        # Every caller may have gone (cancelled): the error is not "never retrieved".
        read.result.add_done_callback(lambda f: f.cancelled() or f.exception())
        task = asyncio.ensure_future(self._serially(read))
        task.add_done_callback(lambda t: t.cancelled() and read.result.cancel())
        return read

    async def _serially(self, read: _Read) -> None:
        """Run `read`, one at a time; its result is in place before the next one starts."""
        async with self._serial:
            try:
                inventory = await self._fetch(read)
            except Exception as error:
                read.result.set_exception(error)
                return
            read.result.set_result(inventory)
            if self._done is None or self._done.seq <= read.seq:
                self._done = read

    async def _fetch(self, read: _Read) -> ObservedInventory:
        base = self._done
        hosts = self._changed_since(base)
        if base is None or hosts is None or self._read_hosts is None:
            return await self._whole(read)
        inventory = base.result.result()
        read.whole = base.whole
        if not hosts:
            return inventory  # only changes that concern no host (none of what we read)
        self.reads += 1
        self.partial_reads += 1
        fresh = await self._read_hosts(hosts)
        if fresh is None:
            return await self._whole(read)
        return with_hosts(inventory, fresh)

    async def _whole(self, read: _Read) -> ObservedInventory:
        self.reads += 1
        read.whole = self._monotonic()
        return await self._read()

    def _changed_since(self, base: _Read | None) -> frozenset[str] | None:
        """The hosts changed since `base` started; None when that is not all that changed."""
        if base is None or not self._watched(base):
            return None
        with self._lock:
            if self._any_host_at > base.seq:
                return None
            return frozenset(h for h, at in self._host_at.items() if at > base.seq)
