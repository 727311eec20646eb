"""Read every host the host planner needs in ONE PropertyCollector call (DESIGN.md §3.1.1, §7).

One `RetrievePropertiesEx` over a ContainerView of the root folder reads, with narrow pathSets,
all hosts, all clusters (their names) and all VMs (which PCI devices they hold). The view is
created once per session and kept: vCenter updates its contents as the inventory changes, and a
view per read would cost two more calls (CreateContainerView, DestroyView).

Selection by host names or clusters is applied to the result, not to the query: the filter would
need one view per cluster, and the whole read is still one call.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pyVmomi import vim

from dpio.planner.observed import ObservedInventory
from dpio.vsphere import properties
from dpio.vsphere.connect import Connection
from dpio.vsphere.errors import ObjectNotFound, translated
from dpio.vsphere.inventory_map import (
    CLUSTER_PATHS,
    HOST_PATHS,
    VM,
    VM_PATHS,
    observed_inventory,
    passthru_systems,
)

_VIEW_KINDS = (vim.HostSystem, vim.VirtualMachine, vim.ClusterComputeResource)
#: Exactly what `read` reads, for a change watch (`Watcher(paths=...)`): when it reports
#: nothing, a new read would return the same inventory.
INVENTORY_PATHS: Mapping[type, Sequence[str]] = {
    vim.HostSystem: HOST_PATHS,
    vim.VirtualMachine: VM_PATHS,
    vim.ClusterComputeResource: CLUSTER_PATHS,
}


class InventoryReader:
    """Reads `ObservedInventory`; remembers each host's HostPciPassthruSystem for `hosts.py`."""

    def __init__(self, *, page_size: int | None = None) -> None:
        self.page_size = page_size
        self._lock = threading.Lock()
        self._view: tuple[Connection, Any] | None = None
        self._passthru_systems: dict[str, tuple[str, str]] = {}
        self._vm_hosts: dict[str, str] = {}  # VM moref -> its host's moref, from the last read

    def _container_view(self, conn: Connection) -> Any:
        with self._lock:
            if self._view is None or self._view[0] is not conn:
                self._view = (conn, properties.container_view(conn.content, _VIEW_KINDS))
            return self._view[1]

    def _forget_view(self, conn: Connection) -> None:
        with self._lock:
            if self._view is not None and self._view[0] is conn:
                self._view = None

    def read_objects(self, conn: Connection, *, include_vms: bool = True) -> list[Any]:
        """The raw `ObjectProps` of hosts, clusters and (optionally) VMs: one call per page."""
        paths: dict[type, tuple[str, ...]] = {
            vim.HostSystem: HOST_PATHS,
            vim.ClusterComputeResource: CLUSTER_PATHS,
        }
        if include_vms:
            paths[vim.VirtualMachine] = VM_PATHS
        collector = conn.content.propertyCollector
        try:
            with translated():
                spec = properties.view_filter(self._container_view(conn), paths)
                return properties.retrieve_flat(collector, spec, self.page_size)
        except ObjectNotFound:
            # The view went away (vCenter restarted, session replaced): make a new one, once.
            self._forget_view(conn)
            spec = properties.view_filter(self._container_view(conn), paths)
            return properties.retrieve_flat(collector, spec, self.page_size)

    def read(
        self,
        conn: Connection,
        *,
        names: Collection[str] = (),
        clusters: Collection[str] = (),
        include_vms: bool = True,
    ) -> ObservedInventory:
        """All hosts, or those named or in one of `clusters` (both empty: all)."""
        objects = self.read_objects(conn, include_vms=include_vms)
        vm_hosts = {o.moref: properties.moref_id(o.get("runtime.host")) for o in objects
                    if o.kind == VM}  # fmt: skip
        with self._lock:
            self._passthru_systems.update(passthru_systems(objects))
            if include_vms:
                self._vm_hosts = vm_hosts
        inventory = observed_inventory(objects)
        if not names and not clusters:
            return inventory
        wanted = set(names)
        hosts = tuple(h for h in inventory.hosts if h.name in wanted or h.cluster in clusters)
        return replace(inventory, hosts=hosts)

    def vm_host(self, vm_moref: str) -> str:
        """The moref of the host the VM ran on at the last read; empty if unknown."""
        with self._lock:
            return self._vm_hosts.get(vm_moref, "")

    def passthru_system(self, conn: Connection, host_moref: str) -> tuple[Any, str]:
        """The host's HostPciPassthruSystem and API version; from the last read, else one read."""
        with self._lock:
            known = self._passthru_systems.get(host_moref)
        if known is None:
            host = conn.ref(vim.HostSystem, host_moref)
            paths = ["configManager.pciPassthruSystem", "config.product.apiVersion"]
            spec = properties.object_filter(host, vim.HostSystem, paths)
            found = passthru_systems(properties.retrieve_flat(conn.content.propertyCollector, spec))
            if host_moref not in found:
                raise ObjectNotFound(f"host {host_moref} has no HostPciPassthruSystem")
            known = found[host_moref]
            with self._lock:
                self._passthru_systems[host_moref] = known
        return conn.ref(vim.host.PciPassthruSystem, known[0]), known[1]
