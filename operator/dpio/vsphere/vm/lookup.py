"""Find a VM by name or instance UUID without a call per lookup.

vCenter has no index by name (`SearchIndex.FindByInventoryPath` needs the folder path, and VM
names are unique per folder, not per vCenter), and `FindByUuid` is a call per VM. Instead one
`RetrievePropertiesEx` over a kept ContainerView of all VMs reads `name`, `config.instanceUuid`
and `runtime.host` of every VM, and the index answers until a VM is missing from it: many
assignments share one read. The reader notices a VM renamed, deleted or migrated since, and asks
for a fresh read (`fresh=True`) or records the new host (`moved`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

from dpio.vsphere import properties
from dpio.vsphere.connect import Connection
from dpio.vsphere.errors import InvalidRequest, ObjectNotFound, translated
from dpio.vsphere.properties import ObjectProps, moref_id

# What the index reads of every VM.
LOOKUP_PATHS: tuple[str, ...] = ("name", "config.instanceUuid", "runtime.host")


class AmbiguousVMName(InvalidRequest):
    """More than one VM has the name; the assignment must name the VM by instance UUID."""


@dataclass(slots=True)
class VMIndex:
    """VM name / instance UUID -> (VM moref, host moref), as of the last lookup read."""

    by_name: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    by_uuid: dict[str, tuple[str, str]] = field(default_factory=dict)
    generation: int = 0

    def find(self, name: str, instance_uuid: str) -> tuple[str, str] | None:
        if instance_uuid:
            return self.by_uuid.get(instance_uuid.lower())
        found = self.by_name.get(name, [])
        if len(found) > 1:
            # Not which VMs, nor how many: some may be other teams' (docs/multi-tenancy.md).
            raise AmbiguousVMName(
                f"More than one VM in vCenter is named {name!r}; name the VM by instanceUUID"
            )
        return found[0] if found else None

    def fill(self, objects: list[ObjectProps]) -> None:
        self.by_name, self.by_uuid = {}, {}
        for obj in objects:
            entry = (obj.moref, moref_id(obj.get("runtime.host")))
            self.by_name.setdefault(str(obj.get("name", obj.moref)), []).append(entry)
            uuid = str(obj.get("config.instanceUuid", "")).lower()
            if uuid:
                self.by_uuid[uuid] = entry
        self.generation += 1

    def moved(self, vm_moref: str, host_moref: str) -> None:
        for entries in self.by_name.values():
            entries[:] = [(m, host_moref if m == vm_moref else h) for m, h in entries]
        for uuid, (moref, _) in list(self.by_uuid.items()):
            if moref == vm_moref:
                self.by_uuid[uuid] = (moref, host_moref)


class VMLookup:
    """The kept view and the index; thread-safe (lookups run in the client's thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._view: tuple[Connection, Any] | None = None
        self._index = VMIndex()

    def _lookup_view(self, conn: Connection) -> Any:
        with self._lock:
            if self._view is None or self._view[0] is not conn:
                view = properties.container_view(conn.content, [vim.VirtualMachine])
                self._view = (conn, view)
            return self._view[1]

    def _read_all(self, conn: Connection) -> list[ObjectProps]:
        paths: dict[type, tuple[str, ...]] = {vim.VirtualMachine: LOOKUP_PATHS}
        collector = conn.content.propertyCollector
        try:
            with translated():
                spec = properties.view_filter(self._lookup_view(conn), paths)
                return properties.retrieve_flat(collector, spec)
        except ObjectNotFound:
            with self._lock:
                self._view = None  # the view went away (vCenter restarted): make a new one, once
            spec = properties.view_filter(self._lookup_view(conn), paths)
            return properties.retrieve_flat(collector, spec)

    def _refresh(self, conn: Connection, seen_generation: int) -> None:
        """One read of every VM; misses that happen together share it."""
        with self._refresh_lock:
            with self._lock:
                if self._index.generation != seen_generation:
                    return  # another thread read the index after our miss
            objects = self._read_all(conn)
            with self._lock:
                self._index.fill(objects)

    def locate(
        self, conn: Connection, name: str, instance_uuid: str, *, fresh: bool = False
    ) -> tuple[str, str] | None:
        """(VM moref, host moref), or None when no VM has that name / instance UUID."""
        with self._lock:
            generation = self._index.generation
            found = None if fresh else self._index.find(name, instance_uuid)
        if found is None:
            self._refresh(conn, generation)
            with self._lock:
                found = self._index.find(name, instance_uuid)
        return found

    def peek(self, name: str, instance_uuid: str) -> tuple[str, str] | None:
        """`locate` from the index as it is: no read, None when it does not know (or the name
        is ambiguous)."""
        with self._lock:
            try:
                return self._index.find(name, instance_uuid)
            except AmbiguousVMName:
                return None

    def moved(self, vm_moref: str, host_moref: str) -> None:
        with self._lock:
            self._index.moved(vm_moref, host_moref)
