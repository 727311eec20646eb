"""The async face of the adapter for the host side: what a reconciler awaits.

Each method is one blocking call run through `VCenterClient.run` (bounded thread pool, fault
translation, one transparent re-login on session expiry). Reconcilers see these methods through
their own protocol; only this package imports pyVmomi.

The whole-inventory read is shared between reconciles while their hosts are unchanged, and
brought up to date by reading only the hosts that changed (`shared_reads`); the change watch
and this adapter's own writes say what changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from dpio.api.policy import HostSelector
from dpio.planner.host.steps import HostTask
from dpio.planner.observed import ObservedInventory
from dpio.vsphere import tasks
from dpio.vsphere.connect import Connection
from dpio.vsphere.host import ops
from dpio.vsphere.host.ops import PassthruConfigChange
from dpio.vsphere.host.reader import INVENTORY_PATHS, PAGE_SIZE, InventoryReader
from dpio.vsphere.host.recent_tasks import read_recent_tasks
from dpio.vsphere.host.shared_reads import SharedReads
from dpio.vsphere.inventory_map import HOST, VM, VM_PATHS
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.watch import WATCH_PATHS, Callback, Change, Watcher, merged_paths

#: Changes of these paths may change which hosts a policy selects (by name, pattern, cluster).
_SELECTION_PATHS = frozenset({"name", "parent"})
#: The VM paths the inventory read returns: the watch covers more (for assignments).
_VM = frozenset(VM_PATHS)


def _wait(conn: Connection, task_moref: str, timeout: float) -> Any:
    return tasks.wait_for_task(conn, tasks.task_ref(conn, task_moref), timeout)


class HostAdapter:
    """Host-side operations on one vCenter."""

    def __init__(
        self,
        client: VCenterClient,
        *,
        page_size: int | None = PAGE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.reader = InventoryReader(page_size=page_size)
        self.shared = SharedReads(
            lambda: self.client.run(self.reader.read),
            monotonic,
            read_hosts=lambda morefs: self.client.run(self.reader.read_hosts, morefs),
        )

    async def read_inventory(
        self,
        *,
        names: Collection[str] = (),
        clusters: Collection[str] = (),
        include_vms: bool = True,
        selector: HostSelector | None = None,
        whole_clusters: bool = False,
    ) -> ObservedInventory:
        """All hosts (or those named / in `clusters`) in one RetrievePropertiesEx.

        The unfiltered read is shared (`shared_reads`): fresh for the hosts `selector` picks,
        or for every host when it is None (with `whole_clusters`, for every host of their
        clusters too); `names` and `clusters` always read anew."""
        if names or clusters or not include_vms:
            return await self.client.run(
                self.reader.read, names=names, clusters=clusters, include_vms=include_vms
            )
        return await self.shared.read(selector, whole_clusters=whole_clusters)

    def changed_hosts(self, changes: Sequence[Change]) -> frozenset[str] | None:
        """The morefs of the hosts whose planning these changes can affect; None: any host's
        (a host came or went or was renamed or moved, a cluster changed, a VM's host unknown)."""
        morefs: set[str] = set()
        for change in changes:
            if change.kind == HOST and change.operation == "modify":
                if change.paths & _SELECTION_PATHS:
                    return None
                morefs.add(change.moref)
            elif change.kind == VM and change.operation == "modify" and not change.paths & _VM:
                continue  # e.g. snapshots: for assignments, not host planning
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
                await self.client.run(ops.update_passthru_config, self.reader, host_moref, changes)
            finally:
                self.shared.changed([host_moref])

    async def refresh_passthru(self, host_moref: str) -> None:
        try:
            await self.client.run(ops.refresh_passthru, self.reader, host_moref)
        finally:
            self.shared.changed([host_moref])

    async def enter_maintenance_mode(self, host_moref: str, timeout_seconds: int) -> str:
        """Starts the task; returns its moref for `wait_for_task`."""
        try:
            return await self.client.run(ops.enter_maintenance_mode, host_moref, timeout_seconds)
        finally:
            self.shared.changed([host_moref])

    async def reboot_host(self, host_moref: str) -> str:
        try:
            return await self.client.run(ops.reboot_host, host_moref)
        finally:
            self.shared.changed([host_moref])

    async def exit_maintenance_mode(self, host_moref: str, timeout_seconds: int = 0) -> str:
        try:
            return await self.client.run(ops.exit_maintenance_mode, host_moref, timeout_seconds)
        finally:
            self.shared.changed([host_moref])

    async def recent_tasks(
        self, host_morefs: Collection[str]
    ) -> Mapping[str, tuple[HostTask, ...]]:
        """Each host's `recentTask`, read now in one call (never from the shared read)."""
        return await self.client.run(read_recent_tasks, host_morefs)

    async def wait_for_task(self, task_moref: str, timeout: float) -> Any:
        """The task's result; `TaskFailed` or `TaskTimedOut` otherwise."""
        return await self.client.run(_wait, task_moref, timeout)

    def watch(self, callback: Callback, **options: Any) -> Watcher:
        """A started `Watcher` delivering changed hosts, VMs and clusters to `callback` (on its
        thread), over what the inventory read returns and what VM assignments depend on
        (`watch.WATCH_PATHS`): one watch per vCenter serves both kinds. While it runs, reads
        are shared; changes of paths the inventory does not read concern no host.
        """

        def changed(changes: Sequence[Change]) -> None:
            # Counted before the callback: the reconcile it triggers must read anew.
            self.shared.changed(self.changed_hosts(changes))
            callback(changes)

        options.setdefault("paths", merged_paths(INVENTORY_PATHS, WATCH_PATHS))
        watcher = self.shared.watcher = Watcher(self.client, changed, **options)
        watcher.start()
        return watcher
