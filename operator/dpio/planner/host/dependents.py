"""Groups of PCI functions that passthrough must treat as one (HostPciPassthruInfo.dependentDevice).

vSphere API reference, HostPciPassthruInfo.dependentDevice: "The ID of the dependent device"; a
device without dependents names itself. Devices that name each other (directly or through a chain,
e.g. a GPU and its HDMI audio function) can only be passed through together, so they change
together and the status lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dpio.planner.observed import HostPciPassthruInfo


def dependent_groups(infos: Iterable[HostPciPassthruInfo]) -> Mapping[str, frozenset[str]]:
    """PCI id -> every id in its group (itself included); only ids with passthrough info."""
    parent: dict[str, str] = {}

    def root(pci_id: str) -> str:
        parent.setdefault(pci_id, pci_id)
        while parent[pci_id] != pci_id:
            parent[pci_id] = parent[parent[pci_id]]
            pci_id = parent[pci_id]
        return pci_id

    known = set()
    for info in infos:
        known.add(info.id)
        root(info.id)
        if info.dependent_device and info.dependent_device != info.id:
            parent[root(info.id)] = root(info.dependent_device)
    members: dict[str, set[str]] = {}
    for pci_id in known:
        members.setdefault(root(pci_id), set()).add(pci_id)
    return {pci_id: frozenset(members[root(pci_id)]) for pci_id in known}
