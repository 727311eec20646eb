"""Read every host the host planner needs in ONE PropertyCollector call (docs/design.md,
"vCenter access").

One `RetrievePropertiesEx` over a ContainerView of the root folder reads, with narrow pathSets,
all hosts, all clusters (their names) and all VMs (which PCI devices they hold). The view is
created once per session and kept: vCenter updates its contents as the inventory changes, and a
view per read would cost two more calls (CreateContainerView, DestroyView).

Selection by host names or clusters is applied to the result, not to the query: the filter would
need one view per cluster, and the whole read is still one call.

`read_hosts` reads again only some hosts and their VMs (one call, objects named in the filter
instead of the view): what the shared reads use once the change watch says which hosts changed,
so that converging N policies does not parse the whole inventory N times (docs/benchmarks.md,
finding 9).
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
    CLUSTER,
    CLUSTER_PATHS,
    HOST,
    HOST_PATHS,
    VM,
    VM_PATHS,
    ClusterDrs,
    cluster_drs,
    cluster_names,
    host_side_view,
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


#: Objects per answer of a read: what one answer parses into is all a read holds of pyVmomi's
#: objects at a time (`properties.retrieve_flat`); 5,625 objects take 12 calls instead of one.
PAGE_SIZE = 500


class InventoryReader:
    """Reads `ObservedInventory`; remembers each host's HostPciPassthruSystem for `ops.py`."""

    def __init__(self, *, page_size: int | None = PAGE_SIZE) -> None:
        self.page_size = page_size
        self._lock = threading.Lock()
        self._view: tuple[Connection, Any] | None = None
        self._passthru_systems: dict[str, tuple[str, str]] = {}
        self._vm_hosts: dict[str, str] = {}  # VM moref -> its host's moref, from the last read
        self._clusters: dict[str, str] | None = None  # moref -> name, from the last full read
        self._drs: dict[str, ClusterDrs] = {}  # cluster moref -> DRS settings, likewise

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
                return properties.retrieve_flat(collector, spec, self.page_size, host_side_view)
        except ObjectNotFound:
            # The view went away (vCenter restarted, session replaced): make a new one, once.
            self._forget_view(conn)
            spec = properties.view_filter(self._container_view(conn), paths)
            return properties.retrieve_flat(collector, spec, self.page_size, host_side_view)

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
            self._clusters = cluster_names(objects)
            self._drs = cluster_drs(objects)
        inventory = observed_inventory(objects)
        if not names and not clusters:
            return inventory
        wanted = set(names)
        hosts = tuple(h for h in inventory.hosts if h.name in wanted or h.cluster in clusters)
        return replace(inventory, hosts=hosts)

    def read_hosts(self, conn: Connection, morefs: Collection[str]) -> ObservedInventory | None:
        """These hosts and the VMs on them, in one call; None when that can't stand in for
        their part of a whole read: no whole read yet, a host gone, or in a cluster not known.
        """
        with self._lock:
            clusters = None if self._clusters is None else dict(self._clusters)
            drs = dict(self._drs)
        if clusters is None:
            return None
        refs = [conn.ref(vim.HostSystem, m) for m in morefs]
        spec = properties.hosts_with_vms_filter(refs, HOST_PATHS, VM_PATHS)
        try:
            with translated():
                objects = properties.retrieve_flat(
                    conn.content.propertyCollector, spec, self.page_size, host_side_view
                )
        except ObjectNotFound:
            return None  # a host went away: the watch says so too, and a whole read follows
        hosts = [o for o in objects if o.kind == HOST]
        parents = (o.get("parent") for o in hosts)
        if {h.moref for h in hosts} != set(morefs) or any(
            properties.moref_kind(p) == CLUSTER and properties.moref_id(p) not in clusters
            for p in parents
        ):
            return None
        vms = {o.moref: properties.moref_id(o.get("runtime.host")) for o in objects
               if o.kind == VM}  # fmt: skip
        with self._lock:
            self._passthru_systems.update(passthru_systems(objects))
            wanted = set(morefs)
            self._vm_hosts = {vm: h for vm, h in self._vm_hosts.items() if h not in wanted}
            self._vm_hosts.update(vms)
        return observed_inventory(objects, clusters, drs)

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
