"""`reboot.maxUnavailable` as a budget per vSphere cluster, shared by every policy.

A cluster's VMs run on the cluster's hosts: what matters to them is how many of those hosts
are down, not which policy (or person) took them down. So a rolling reboot takes a host of
cluster C down only while fewer than `maxUnavailable` hosts of C are unavailable, counting
- every host of C in maintenance mode or not connected, whoever caused it, selected by any
  policy or by none (the inventory read returns every host), and
- every host of C some policy's rolling reboot holds (draining, rebooting, exiting) even
  before vCenter shows it in maintenance mode (`reserved`: the reconciler's reservations).

When policies disagree, the one starting a host applies its own `maxUnavailable` to the
cluster total: a policy with 1 starts nothing while any host of the cluster is down, one with 2
may take a second. The strictest policy on a cluster is therefore never pushed past its own
number by its own starts, and a looser one can't starve it of its slot for long, as a slot frees
when a host comes back.

A host in no cluster (a standalone host) is a budget of its own: nothing else carries its VMs,
so only its own state counts. Clusters are told apart by name: two clusters of the same name
(in two datacenters or vCenters) share one budget, the stricter reading.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dpio.planner.observed import ObservedHost, ObservedInventory


def budget_key(host: ObservedHost) -> str:
    """The budget a host draws on: its cluster, or the host itself when in no cluster."""
    return f"cluster/{host.cluster}" if host.cluster else f"host/{host.name}"


def budget_name(host: ObservedHost) -> str:
    """What the status calls that budget."""
    return f"cluster {host.cluster}" if host.cluster else f"standalone host {host.name}"


@dataclass(frozen=True, slots=True)
class ClusterLoad:
    """Budget key -> names of its hosts that are unavailable or held by a rolling reboot."""

    down: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {key: frozenset(names) for key, names in self.down.items()}
        object.__setattr__(self, "down", MappingProxyType(frozen))

    @classmethod
    def observe(cls, inventory: ObservedInventory, reserved: Collection[str] = ()) -> ClusterLoad:
        """From every host in `inventory`, plus the hosts in `reserved` (other policies' rolling
        reboots, by host name; names vCenter doesn't report count nowhere)."""
        held_names = frozenset(reserved)
        down: dict[str, set[str]] = defaultdict(set)
        for host in inventory.hosts:
            if host.unavailable or host.name in held_names:
                down[budget_key(host)].add(host.name)
        return cls({key: frozenset(names) for key, names in down.items()})

    def of(self, host: ObservedHost) -> frozenset[str]:
        return self.down.get(budget_key(host), frozenset())
