"""PropertyCollector plumbing: filter specs over a ContainerView, paged retrieval, flat results.

Reading pyVmomi managed objects attribute by attribute costs one round trip per attribute; a
PropertyCollector call with a narrow `pathSet` reads every object's properties at once
(vSphere API reference, PropertyCollector.RetrievePropertiesEx; vSphere Web Services SDK
Programming Guide, "Property Collector").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

# pyVmomi data object constructors take untyped keyword arguments: used as Any on purpose.
PC: Any = vmodl.query.PropertyCollector


@dataclass(frozen=True, slots=True)
class ObjectProps:
    """One object's properties as read: `kind` is the vSphere type name (`HostSystem`)."""

    kind: str
    moref: str
    props: Mapping[str, Any] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()  # paths vCenter could not read (e.g. host disconnected)

    def get(self, path: str, default: Any = None) -> Any:
        value = self.props.get(path)
        return default if value is None else value


def moref_id(ref: Any) -> str:
    """`vim.HostSystem:host-12` -> `host-12`; empty for None (no round trip, just the id)."""
    return str(getattr(ref, "_moId", "") or "")


def moref_kind(ref: Any) -> str:
    """The vSphere type name of a managed object reference (`ClusterComputeResource`)."""
    return str(getattr(type(ref), "_wsdlName", ""))


def container_view(content: Any, kinds: Sequence[type]) -> Any:
    """A recursive ContainerView on the root folder (one CreateContainerView call)."""
    return content.viewManager.CreateContainerView(content.rootFolder, list(kinds), True)


def view_filter(view: Any, paths: Mapping[type, Sequence[str]]) -> Any:
    """A filter over every object in `view`, reading `paths[kind]` of each kind."""
    traverse = PC.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[PC.PropertySpec(type=kind, pathSet=list(p)) for kind, p in paths.items()],
    )


def object_filter(obj: Any, kind: type, paths: Sequence[str]) -> Any:
    """A filter over one object (a task, a host)."""
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=obj, skip=False)],
        propSet=[PC.PropertySpec(type=kind, pathSet=list(paths))],
    )


def hosts_with_vms_filter(
    hosts: Sequence[Any], host_paths: Sequence[str], vm_paths: Sequence[str]
) -> Any:
    """A filter over these hosts and the VMs registered on each (`HostSystem.vm`)."""
    to_vms = PC.TraversalSpec(name="vms", path="vm", skip=False, type=vim.HostSystem)
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=host, skip=False, selectSet=[to_vms]) for host in hosts],
        propSet=[
            PC.PropertySpec(type=vim.HostSystem, pathSet=list(host_paths)),
            PC.PropertySpec(type=vim.VirtualMachine, pathSet=list(vm_paths)),
        ],
    )


def flatten(content: Any) -> ObjectProps:
    """`ObjectContent` -> `ObjectProps`; properties vCenter could not read go to `missing`."""
    props = {p.name: p.val for p in content.propSet or ()}
    missing = frozenset(m.path for m in content.missingSet or ())
    return ObjectProps(
        kind=moref_kind(content.obj), moref=moref_id(content.obj), props=props, missing=missing
    )


def pages(collector: Any, spec: Any, page_size: int | None = None) -> Iterator[list[Any]]:
    """RetrievePropertiesEx, then ContinueRetrievePropertiesEx while vCenter hands out a token:
    one list of `ObjectContent` per answer, each let go before the next is asked for."""
    result = collector.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=page_size))
    while result is not None:
        token = result.token
        page, result = list(result.objects or ()), None
        yield page
        del page
        if not token:
            break
        result = collector.ContinueRetrievePropertiesEx(token)


def retrieve_flat(
    collector: Any,
    spec: Any,
    page_size: int | None = None,
    keep: Callable[[ObjectProps], ObjectProps] | None = None,
) -> list[ObjectProps]:
    """Every object flattened, and passed through `keep` (what of it to hold on to) page by
    page: with a page size, what a page parsed into and `keep` drops is let go before the next
    page is read, so a large read never holds all of its answers at once."""
    found: list[ObjectProps] = []
    for page in pages(collector, spec, page_size):
        flat = (flatten(content) for content in page)
        found.extend(flat if keep is None else map(keep, flat))
        page.clear()
    return found


def by_kind(objects: Iterable[ObjectProps], kind: str) -> list[ObjectProps]:
    return [o for o in objects if o.kind == kind]
