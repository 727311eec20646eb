"""The async face of the adapter for the host side: what a reconciler awaits.

Each method is one blocking call run through `VCenterClient.run` (bounded thread pool, fault
translation, one transparent re-login on session expiry). Reconcilers see these methods through
their own protocol; only this package imports pyVmomi.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from dpio.planner.observed import ObservedInventory
from dpio.vsphere import hosts, tasks
from dpio.vsphere.connect import Connection
from dpio.vsphere.hosts import PassthruConfigChange
from dpio.vsphere.inventory import InventoryReader
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.watch import Callback, Watcher


def _wait(conn: Connection, task_moref: str, timeout: float) -> Any:
    return tasks.wait_for_task(conn, tasks.task_ref(conn, task_moref), timeout)


class HostAdapter:
    """Host-side operations on one vCenter."""

    def __init__(self, client: VCenterClient, *, page_size: int | None = None) -> None:
        self.client = client
        self.reader = InventoryReader(page_size=page_size)

    async def read_inventory(
        self,
        *,
        names: Collection[str] = (),
        clusters: Collection[str] = (),
        include_vms: bool = True,
    ) -> ObservedInventory:
        """All hosts (or those named / in `clusters`) in one RetrievePropertiesEx."""
        return await self.client.run(
            self.reader.read, names=names, clusters=clusters, include_vms=include_vms
        )

    async def update_passthru_config(
        self, host_moref: str, changes: Sequence[PassthruConfigChange]
    ) -> None:
        """One UpdatePassthruConfig for all `changes`; nothing at all when there are none."""
        if changes:
            await self.client.run(hosts.update_passthru_config, self.reader, host_moref, changes)

    async def refresh_passthru(self, host_moref: str) -> None:
        await self.client.run(hosts.refresh_passthru, self.reader, host_moref)

    async def enter_maintenance_mode(self, host_moref: str, timeout_seconds: int) -> str:
        """Starts the task; returns its moref for `wait_for_task`."""
        return await self.client.run(hosts.enter_maintenance_mode, host_moref, timeout_seconds)

    async def reboot_host(self, host_moref: str) -> str:
        return await self.client.run(hosts.reboot_host, host_moref)

    async def exit_maintenance_mode(self, host_moref: str, timeout_seconds: int = 0) -> str:
        return await self.client.run(hosts.exit_maintenance_mode, host_moref, timeout_seconds)

    async def wait_for_task(self, task_moref: str, timeout: float) -> Any:
        """The task's result; `TaskFailed` or `TaskTimedOut` otherwise."""
        return await self.client.run(_wait, task_moref, timeout)

    def watch(self, callback: Callback, **options: Any) -> Watcher:
        """A started `Watcher` delivering changed hosts and VMs to `callback` (on its thread)."""
        watcher = Watcher(self.client, callback, **options)
        watcher.start()
        return watcher
