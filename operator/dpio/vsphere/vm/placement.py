"""Where a VM sits in the inventory: its folder and resource pool as inventory paths.

Tenancy scopes VMs by the folders and resource pools vSphere administrators give each team
(docs/design.md, "Tenancy"), spelled as `govc ls` prints them: "/DC1/vm/ml-team/prod",
"/DC1/host/GPU-Cluster/Resources/ml-team". The names along both chains come in the VM read
itself (one `RetrievePropertiesEx`, no call more): traversal specs climb `parent`
from the VM's folder and from its pool up to the root folder, reading `name` and `parent` of
each object met. Names are as vCenter returns them; vCenter escapes "/" in an entity name as
"%2f" (vSphere API reference, ManagedEntity.name), so a name never splits a path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyVmomi import vim

from dpio.vsphere.properties import PC, ObjectProps, moref_id

# Every type met on the way up from a VM's folder or pool (vApps are pools too).
_UP_TYPES: tuple[type, ...] = (
    vim.Folder,
    vim.Datacenter,
    vim.ResourcePool,
    vim.VirtualApp,
    vim.ComputeResource,
    vim.ClusterComputeResource,
)
PLACEMENT_PATHS: tuple[str, ...] = ("name", "parent")
# A loop guard: inventories nest folders a few levels, never this many.
_MAX_DEPTH = 64


def up_traversals() -> list[Any]:
    """`VirtualMachine.parent` and `.resourcePool`, then `parent` of every type above."""
    up = [PC.SelectionSpec(name=f"up{t.__name__}") for t in _UP_TYPES]
    climbs = [
        PC.TraversalSpec(name=f"up{t.__name__}", type=t, path="parent", selectSet=up)
        for t in _UP_TYPES
    ]
    vm_folder = PC.TraversalSpec(
        name="vmFolder", type=vim.VirtualMachine, path="parent", selectSet=up
    )
    vm_pool = PC.TraversalSpec(
        name="vmPool", type=vim.VirtualMachine, path="resourcePool", selectSet=up
    )
    return [vm_folder, vm_pool, *climbs]


def property_specs() -> list[Any]:
    return [PC.PropertySpec(type=t, pathSet=list(PLACEMENT_PATHS)) for t in _UP_TYPES]


def inventory_path(start: Any, objects: Mapping[str, ObjectProps]) -> str:
    """The path of the object `start` refers to, by climbing `parent` through `objects`
    (by moref); "" when a link is missing (an object the session may not read): unknown,
    which matches no scope."""
    names: list[str] = []
    current = moref_id(start)
    for _ in range(_MAX_DEPTH):
        if not current:
            return ""
        found = objects.get(current)
        if found is None:
            return ""
        parent = found.get("parent")
        if parent is None:  # the root folder ("Datacenters") is not part of a path
            return "/" + "/".join(reversed(names)) if names else ""
        names.append(str(found.get("name", "")))
        current = moref_id(parent)
    return ""


def placement(vm: ObjectProps, objects: Mapping[str, ObjectProps]) -> tuple[str, str]:
    """(folder path, resource pool path) of the VM."""
    return inventory_path(vm.get("parent"), objects), inventory_path(
        vm.get("resourcePool"), objects
    )
