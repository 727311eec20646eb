"""Observe one VM in at most 3 vCenter calls; ONE once converged (docs/design.md,
"vCenter access"). Blocking.

1. ONE `RetrievePropertiesEx` with two filter specs: the VM (narrow paths, plus its distributed
   port groups through `network`), and its host (plus `parent`, the cluster, and `vm`, the other
   VMs of the host, read only for `name` and `config.hardware.device`). A traversal follows a
   property of the object itself, not `runtime.host`, so the host comes from the lookup index
   (lookup.py); a VM that moved since is read once more, with its new host. Reads asked for at
   the same time share that call (batch.py), and so do the VMs the caller names as next
   (`ahead`, read_ahead.py): a converging fleet or a restart costs far less than one per VM.
2. `EnvironmentBrowser.QueryConfigTarget(host)`: the devices the host offers right now; asked
   again only when the host's passthrough state changed (environment.py).
3. `EnvironmentBrowser.QueryConfigOption(key, host)`: the per-VM passthrough maximum, cached per
   host, ESXi version and hardware version (environment.py).

The lookup read (all VMs' names, shared by every assignment) comes on top when a VM is not in
the index yet.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pyVmomi import vim

from dpio.planner.vm.observed import ObservedVM, VMName, VMObservation
from dpio.vsphere import properties
from dpio.vsphere.connect import Connection
from dpio.vsphere.errors import ConcurrentModification, ObjectNotFound, translated
from dpio.vsphere.properties import PC, ObjectProps, moref_id
from dpio.vsphere.vm import map as vm_map
from dpio.vsphere.vm import placement as vm_placement
from dpio.vsphere.vm import target as vm_target
from dpio.vsphere.vm.batch import BatchedReads
from dpio.vsphere.vm.environment import EnvironmentCache, passthru_fingerprint
from dpio.vsphere.vm.lookup import VMLookup


def observe_filters(vm: Any, host: Any) -> list[Any]:
    """Step 1's two filter specs. vCenter applies each spec's paths to its own objects, so the
    other VMs cost only two paths; an object met by both specs is merged by `merged`."""
    to_network = PC.TraversalSpec(name="vmNetwork", type=vim.VirtualMachine, path="network")
    to_vms = PC.TraversalSpec(name="hostVms", type=vim.HostSystem, path="vm")
    to_parent = PC.TraversalSpec(name="hostParent", type=vim.HostSystem, path="parent")
    portgroup = vim.dvs.DistributedVirtualPortgroup
    vm_spec = PC.FilterSpec(
        objectSet=[
            PC.ObjectSpec(obj=vm, skip=False, selectSet=[to_network, *vm_placement.up_traversals()])
        ],
        propSet=[
            PC.PropertySpec(type=vim.VirtualMachine, pathSet=list(vm_map.VM_PATHS)),
            PC.PropertySpec(type=portgroup, pathSet=list(vm_map.PORTGROUP_PATHS)),
            *vm_placement.property_specs(),
        ],
    )
    host_spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=host, skip=False, selectSet=[to_vms, to_parent])],
        propSet=[
            PC.PropertySpec(type=vim.HostSystem, pathSet=list(vm_map.HOST_PATHS)),
            PC.PropertySpec(type=vim.VirtualMachine, pathSet=list(vm_map.OTHER_VM_PATHS)),
            PC.PropertySpec(type=vim.ClusterComputeResource, pathSet=list(vm_map.CLUSTER_PATHS)),
        ],
    )
    return [vm_spec, host_spec]


def retrieve_all(collector: Any, specs: list[Any]) -> list[Any]:
    """RetrievePropertiesEx over several filter specs, then its continuation pages."""
    result = collector.RetrievePropertiesEx(specs, PC.RetrieveOptions())
    contents: list[Any] = []
    while result is not None:
        contents.extend(result.objects or ())
        if not result.token:
            break
        result = collector.ContinueRetrievePropertiesEx(result.token)
    return contents


def merged(contents: list[Any]) -> dict[tuple[str, str], ObjectProps]:
    """(kind, moref) -> properties, merging an object met through both filter specs."""
    result: dict[tuple[str, str], ObjectProps] = {}
    for content in contents:
        obj = properties.flatten(content)
        key = (obj.kind, obj.moref)
        seen = result.get(key)
        props = {**seen.props, **obj.props} if seen is not None else obj.props
        result[key] = ObjectProps(obj.kind, obj.moref, props, obj.missing)
    return result


@dataclass(frozen=True, slots=True)
class VMRead:
    """Step 1's answer, by (kind, moref)."""

    vm: ObjectProps
    host: ObjectProps | None
    objects: Mapping[tuple[str, str], ObjectProps]

    def of_kind(self, kind: str) -> list[ObjectProps]:
        return [o for (k, _), o in self.objects.items() if k == kind]

    def observed_vm(self) -> ObservedVM:
        parent = self.host.get("parent") if self.host is not None else None
        cluster = self.objects.get((vm_map.CLUSTER, moref_id(parent)))
        portgroups = self.of_kind(vm_map.PORTGROUP)
        found = vm_map.observed_vm(self.vm, self.host, cluster, portgroups)
        by_moref = {moref: o for (_, moref), o in self.objects.items()}
        folder, pool = vm_placement.placement(self.vm, by_moref)
        return replace(found, folder=folder, resource_pool=pool)

    def attached_to_vms(self) -> dict[str, tuple[str, ...]]:
        """Devices held by the other VMs of its host (`HostSystem.vm`): a batched read also
        holds VMs of other hosts, whose PCI addresses mean other devices."""
        on_host = {moref_id(v) for v in (self.host.get("vm") or ())} if self.host else set()
        others = [o for o in self.of_kind(vm_map.VM) if o.moref in on_host]
        return vm_map.attached_to_vms(self.vm.moref, others)


def vcenter_uuid(conn: Connection) -> str:
    """ServiceContent.about.instanceUuid: which vCenter this is, without naming its server
    (read at login with the ServiceContent: no call here)."""
    about = getattr(conn.content, "about", None)
    return str(getattr(about, "instanceUuid", "") or "")


def _matches(read: VMRead, name: str, instance_uuid: str) -> bool:
    if instance_uuid:
        return str(read.vm.get("config.instanceUuid", "")).lower() == instance_uuid.lower()
    return str(read.vm.get("name", "")) == name


class VMReader:
    """Keeps the lookup index, the EnvironmentBrowser caches and the last-read NICs of the VMs
    observed most recently (a NIC edit sends the adapter back whole, see vm_spec.edit_nic).

    NICs are kept for `KEEP_NICS` VMs: a reconfigure follows its observation within seconds,
    and one that finds none reads them (`current_nics`). Kept for every VM, their pyVmomi
    objects were 2.3 MiB per 1,000 VMs (docs/benchmarks.md, finding 33)."""

    KEEP_NICS = 256

    def __init__(self) -> None:
        self.lookup = VMLookup()
        self.environment = EnvironmentCache()
        self.batch = BatchedReads(self._read_many)
        self._lock = threading.Lock()
        self._nics: OrderedDict[str, tuple[str, dict[int, Any]]] = OrderedDict()

    def read(
        self,
        conn: Connection,
        vm_moref: str,
        host_moref: str,
        ahead: Sequence[VMName] = (),
    ) -> VMRead | None:
        """Step 1 (with whichever other reads are under way, and the VMs of `ahead` the index
        knows: batch.py); None when the VM (or the host we thought it on) no longer exists."""
        known = (self.lookup.peek(*vm) for vm in ahead)
        targets = [t for t in known if t is not None and t[0] != vm_moref]
        objects = self.batch.read(conn, vm_moref, host_moref, targets)
        found = objects.get((vm_map.VM, vm_moref)) if objects is not None else None
        if objects is None or found is None:
            return None
        return VMRead(found, objects.get((vm_map.HOST, host_moref)), objects)

    def forget(self, morefs: Iterable[str] | None) -> None:
        """Answers read ahead that hold these objects are stale (None: all of them)."""
        self.batch.ahead.forget(morefs)

    @staticmethod
    def _read_many(
        conn: Connection, targets: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], ObjectProps]:
        specs = [
            spec
            for vm_moref, host_moref in targets
            for spec in observe_filters(
                conn.ref(vim.VirtualMachine, vm_moref), conn.ref(vim.HostSystem, host_moref)
            )
        ]
        with translated():
            return merged(retrieve_all(conn.content.propertyCollector, specs))

    def read_located(
        self, conn: Connection, name: str, instance_uuid: str, ahead: Sequence[VMName] = ()
    ) -> VMRead | None:
        """Step 1 for the VM so named; None if no VM has that name / instance UUID."""
        found = self.lookup.locate(conn, name, instance_uuid)
        looked_again = False
        for _ in range(3):
            if found is None:
                return None
            read = self.read(conn, *found, ahead)
            if read is None or not _matches(read, name, instance_uuid):
                if looked_again:
                    return None
                looked_again = True  # deleted or renamed since the index was read
                found = self.lookup.locate(conn, name, instance_uuid, fresh=True)
                continue
            host = moref_id(read.vm.get("runtime.host"))
            if host and host != found[1]:
                self.lookup.moved(found[0], host)  # migrated: host and cluster are elsewhere
                found = (found[0], host)
                continue
            return read
        return None

    def observe(
        self, conn: Connection, name: str, instance_uuid: str, ahead: Sequence[VMName] = ()
    ) -> VMObservation:
        """Steps 1-3; `vm` None when no such VM exists. `ahead`: the VMs (name, instance UUID)
        likely observed next, read in the same call when the index knows them (read_ahead.py)."""
        read = self.read_located(conn, name, instance_uuid, ahead)
        if read is None:
            return VMObservation(vm=None, vcenter_uuid=vcenter_uuid(conn))
        observed = read.observed_vm()
        self._remember_nics(read.vm)
        supported, reasons = vm_map.gen2_support(read.host)
        browser = read.vm.get("environmentBrowser")
        target, limit = vm_target.config_target(None), None
        if browser is not None and read.host is not None and observed.host_moref:
            host = conn.ref(vim.HostSystem, observed.host_moref)
            fingerprint = passthru_fingerprint(read.host.get("config.pciPassthruInfo"))
            target = self.environment.config_target(browser, host, fingerprint)
            limit = self.environment.passthrough_limit(
                browser, host, observed.host_version, observed.hardware_version
            )
        return VMObservation(
            vm=observed,
            config_target=target,
            max_passthrough_devices=limit,
            gen2_supported=supported,
            gen2_unsupported_reasons=reasons,
            attached_to_vms=read.attached_to_vms(),
            vcenter_uuid=vcenter_uuid(conn),
        )

    def _remember_nics(self, vm: ObjectProps) -> tuple[str, dict[int, Any]]:
        devices = vm.get("config.hardware.device", ())
        nics = {int(d.key): d for d in devices if vm_map.is_ethernet_card(d)}
        entry = (str(vm.get("config.changeVersion", "")), nics)
        with self._lock:
            self._nics[vm.moref] = entry
            self._nics.move_to_end(vm.moref)
            while len(self._nics) > self.KEEP_NICS:
                self._nics.popitem(last=False)
        return entry

    def current_nics(self, conn: Connection, vm_moref: str, change_version: str) -> dict[int, Any]:
        """The VM's ethernet cards as of `change_version`: from the last observe, else one read.

        A different version means someone edited the VM after it was planned: the reconfigure
        would fail on `changeVersion` anyway, so it fails here the same way.
        """
        with self._lock:
            version, nics = self._nics.get(vm_moref, ("", {}))
        if not change_version or version != change_version:  # or not kept
            paths = ("config.hardware.device", "config.changeVersion")
            ref = conn.ref(vim.VirtualMachine, vm_moref)
            spec = properties.object_filter(ref, vim.VirtualMachine, paths)
            found = properties.retrieve_flat(conn.content.propertyCollector, spec)
            if not found:
                raise ObjectNotFound(f"VM {vm_moref} no longer exists")
            version, nics = self._remember_nics(found[0])
        if change_version and version != change_version:
            raise ConcurrentModification(
                f"VM {vm_moref} changed after it was planned (changeVersion {version!r}, "
                f"planned against {change_version!r})",
                fault="ConcurrentAccess",
            )
        return nics
