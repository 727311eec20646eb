"""The async face of the adapter for the host side: what a reconciler awaits.

Each method is one blocking call run through `VCenterClient.run` (bounded thread pool, fault
translation, one transparent re-login on session expiry). Reconcilers see these methods through
their own protocol; only this package imports pyVmomi.

The whole-inventory read is shared (docs/benchmarks.md, finding 3): every policy's reconcile
used to read all hosts, clusters and VMs, O(policies x hosts) while converging. A read is
reused while the adapter's change watch (`watch`, over exactly the paths the read returns)
reports no change and the adapter made no change itself; a reconcile arriving while a read is
in flight joins it only if nothing changed since that read started. So a reconcile never plans
on data older than a change it knows of, and the one a change triggered always reads anew.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from dpio.planner.observed import ObservedInventory
from dpio.vsphere import hosts, tasks
from dpio.vsphere.connect import Connection
from dpio.vsphere.hosts import PassthruConfigChange
from dpio.vsphere.inventory import INVENTORY_PATHS, InventoryReader
from dpio.vsphere.inventory_map import HOST, VM
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.watch import Callback, Change, Watcher

#: A shared read is not reused after this long even when the watch reported nothing: a bound on
#: staleness should a notification be lost (a watch between sessions, for instance).
MAX_INVENTORY_AGE_SECONDS = 30.0
#: Changes of these paths may change which hosts a policy selects (by name, pattern, cluster).
_SELECTION_PATHS = frozenset({"name", "parent"})


def _wait(conn: Connection, task_moref: str, timeout: float) -> Any:
    return tasks.wait_for_task(conn, tasks.task_ref(conn, task_moref), timeout)


@dataclass(frozen=True, slots=True)
class _Read:
    """A whole-inventory read: the change count when it started, and when that was."""

    changes: int
    started: float
    result: asyncio.Future[ObservedInventory]


class HostAdapter:
    """Host-side operations on one vCenter."""

    def __init__(
        self,
        client: VCenterClient,
        *,
        page_size: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.reader = InventoryReader(page_size=page_size)
        self.reads = 0  # whole-inventory reads made (for tests)
        self._monotonic = monotonic
        self._lock = threading.Lock()  # the watch thread counts changes too
        self._changes = 0
        self.watcher: Watcher | None = None
        self._last: _Read | None = None  # the newest read that started
        self._done: _Read | None = None  # the newest read that succeeded

    async def read_inventory(
        self,
        *,
        names: Collection[str] = (),
        clusters: Collection[str] = (),
        include_vms: bool = True,
    ) -> ObservedInventory:
        """All hosts (or those named / in `clusters`) in one RetrievePropertiesEx.

        The unfiltered read is shared between callers while nothing changed (module doc)."""
        if names or clusters or not include_vms:
            return await self.client.run(
                self.reader.read, names=names, clusters=clusters, include_vms=include_vms
            )
        changes = self.changes
        done = self._done
        if done is not None and done.changes == changes and self._watched(done):
            return done.result.result()
        last = self._last
        if last is None or last.changes != changes or last.result.done():
            last = self._last = self._start_read(changes)
        return await asyncio.shield(last.result)

    def _watched(self, read: _Read) -> bool:
        """Was the watch reporting changes for the whole life of this read's result?"""
        watcher = self.watcher
        fresh = self._monotonic() - read.started < MAX_INVENTORY_AGE_SECONDS
        return fresh and watcher is not None and watcher.alive and read.started >= watcher.since

    def _start_read(self, changes: int) -> _Read:
        read = _Read(changes, self._monotonic(), asyncio.get_running_loop().create_future())
        task = asyncio.ensure_future(self.client.run(self.reader.read))
        self.reads += 1

        def finished(task: asyncio.Task[ObservedInventory]) -> None:
            if task.cancelled():
                read.result.cancel()
            elif (error := task.exception()) is not None:
                read.result.set_exception(error)
            else:
                read.result.set_result(task.result())
                if self._done is None or self._done.started <= read.started:
                    self._done = read
            # Every joined caller may have gone (cancelled): the error is not "never retrieved".
            read.result.add_done_callback(lambda f: f.cancelled() or f.exception())

        task.add_done_callback(finished)
        return read

    @property
    def changes(self) -> int:
        """Changes seen so far: reported by the watch, or made through this adapter."""
        with self._lock:
            return self._changes

    def changed(self) -> None:
        """Something the inventory read returns has changed: the next read goes to vCenter."""
        with self._lock:
            self._changes += 1

    def changed_hosts(self, changes: Sequence[Change]) -> frozenset[str] | None:
        """The morefs of the hosts whose planning these changes can affect; None: any host's
        (a host came or went or was renamed or moved, a cluster changed, a VM's host unknown)."""
        morefs: set[str] = set()
        for change in changes:
            if change.kind == HOST and change.operation == "modify":
                if change.paths & _SELECTION_PATHS:
                    return None
                morefs.add(change.moref)
            elif change.kind == VM and change.operation != "enter":
                host = self.reader.vm_host(change.moref)
                if not host or "runtime.host" in change.paths:
                    return None  # a VM never read, or a vMotion: its new host isn't known
                morefs.add(host)
            else:
                return None
        return frozenset(morefs)

    async def update_passthru_config(
        self, host_moref: str, changes: Sequence[PassthruConfigChange]
    ) -> None:
        """One UpdatePassthruConfig for all `changes`; nothing at all when there are none."""
        if changes:
            try:
                await self.client.run(
                    hosts.update_passthru_config, self.reader, host_moref, changes
                )
            finally:
                self.changed()

    async def refresh_passthru(self, host_moref: str) -> None:
        try:
            await self.client.run(hosts.refresh_passthru, self.reader, host_moref)
        finally:
            self.changed()

    async def enter_maintenance_mode(self, host_moref: str, timeout_seconds: int) -> str:
        """Starts the task; returns its moref for `wait_for_task`."""
        try:
            return await self.client.run(hosts.enter_maintenance_mode, host_moref, timeout_seconds)
        finally:
            self.changed()

    async def reboot_host(self, host_moref: str) -> str:
        try:
            return await self.client.run(hosts.reboot_host, host_moref)
        finally:
            self.changed()

    async def exit_maintenance_mode(self, host_moref: str, timeout_seconds: int = 0) -> str:
        try:
            return await self.client.run(hosts.exit_maintenance_mode, host_moref, timeout_seconds)
        finally:
            self.changed()

    async def wait_for_task(self, task_moref: str, timeout: float) -> Any:
        """The task's result; `TaskFailed` or `TaskTimedOut` otherwise."""
        return await self.client.run(_wait, task_moref, timeout)

    def watch(self, callback: Callback, **options: Any) -> Watcher:
        """A started `Watcher` delivering changed hosts, VMs and clusters to `callback` (on its
        thread), over exactly what the inventory read returns; while it runs, reads are shared.
        """

        def changed(changes: Sequence[Change]) -> None:
            self.changed()  # before the callback: the reconcile it triggers must read anew
            callback(changes)

        options.setdefault("paths", INVENTORY_PATHS)
        watcher = self.watcher = Watcher(self.client, changed, **options)
        watcher.start()
        return watcher
