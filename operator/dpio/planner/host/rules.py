"""A policy's spec compiled into what the host planner checks, and the other policies it shares
hosts with: the older policy wins a device both want in opposite states (docs/design.md,
"Host side: policy conflicts")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dpio.api.patterns import Pattern
from dpio.api.policy import ApplyNow, HostPassthroughPolicySpec, HostSelector
from dpio.planner.observed import HostPciDevice, ObservedHost, ObservedInventory
from dpio.planner.selection import (
    DeviceMatcher,
    InvalidSpecError,
    compile_device_selectors,
    compile_name_pattern,
)


@dataclass(frozen=True, slots=True)
class PolicyRules:
    matchers: tuple[DeviceMatcher, ...]
    exclusive: bool = False
    apply_now_auto: bool = True
    allow_devices_in_use: bool = False

    @classmethod
    def from_spec(cls, spec: HostPassthroughPolicySpec) -> PolicyRules:
        """Raises InvalidSpecError for what admission could not reject."""
        return cls(
            matchers=compile_device_selectors(spec.devices),
            exclusive=spec.exclusive,
            apply_now_auto=spec.apply_now is ApplyNow.AUTO,
            allow_devices_in_use=spec.allow_devices_in_use,
        )


@dataclass(frozen=True, slots=True)
class HostMatcher:
    """`spec.hosts` compiled once: the same rule as `select_hosts`, asked one host at a time."""

    names: frozenset[str]
    clusters: frozenset[str]
    pattern: Pattern | None

    @classmethod
    def from_selector(cls, selector: HostSelector) -> HostMatcher:
        """Raises InvalidSpecError for a namePattern that RE2 refuses."""
        pattern = (
            compile_name_pattern(selector.name_pattern, "hosts.namePattern")
            if selector.name_pattern
            else None
        )
        return cls(frozenset(selector.names), frozenset(selector.clusters), pattern)

    def selects(self, host: ObservedHost, inventory: ObservedInventory) -> bool:
        if host.name in self.names or (host.cluster is not None and host.cluster in self.clusters):
            return True
        if any(host.name in inventory.clusters.get(c, ()) for c in self.clusters):
            return True
        return self.pattern is not None and self.pattern.search(host.name)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """What another policy's spec says about hosts and devices, compiled once per generation."""

    hosts: HostMatcher
    rules: PolicyRules

    @classmethod
    def from_spec(cls, spec: HostPassthroughPolicySpec) -> CompiledPolicy:
        """Raises InvalidSpecError for what admission could not reject."""
        return cls(HostMatcher.from_selector(spec.hosts), PolicyRules.from_spec(spec))


@dataclass(frozen=True, slots=True)
class OtherPolicy:
    """Another HostPassthroughPolicy on the same vCenter, as the reconciler lists it.

    Policies being deleted should be left out: they no longer claim anything. `compiled` lets a
    caller that keeps OtherPolicy objects between plans (the reconciler, per generation) compile
    each spec once instead of on every plan of every other policy; None compiles it here.
    Compiled, the spec is not needed any more: `compile` keeps none (a parsed spec was 4.3 of
    the 5.1 KB each policy held in the reconciler, docs/benchmarks.md, finding 33).
    """

    name: str
    creation_timestamp: datetime
    spec: HostPassthroughPolicySpec | None
    compiled: CompiledPolicy | None = None

    @classmethod
    def compile(
        cls, name: str, creation_timestamp: datetime, spec: HostPassthroughPolicySpec
    ) -> OtherPolicy:
        """Raises InvalidSpecError: a policy that can't be planned claims nothing."""
        return cls(name, creation_timestamp, None, CompiledPolicy.from_spec(spec))

    def compiled_spec(self) -> CompiledPolicy | None:
        """`compiled`, or the spec compiled now; None if there is neither. Raises
        InvalidSpecError."""
        if self.compiled is not None or self.spec is None:
            return self.compiled
        return CompiledPolicy.from_spec(self.spec)


class OthersIndex:
    """The other policies, compiled once and indexed by the host names and clusters their
    selectors name, so a plan finds the few that can select its hosts without asking each one.

    Asking every other policy's selector about every planned host made each plan O(policies):
    27 % of the operator's CPU at 5,000 policies (docs/benchmarks.md, finding 22). Policies with
    a name pattern are always asked. A policy whose spec does not compile claims nothing (it
    reports Stalled itself) and is left out.
    """

    __slots__ = ("_by_cluster", "_by_name", "_compiled", "_patterned", "names")

    def __init__(self, others: Sequence[OtherPolicy]) -> None:
        #: Every policy given, compiled or not (what exists, for the reservations).
        self.names = frozenset(o.name for o in others)
        self._compiled: list[tuple[OtherPolicy, CompiledPolicy]] = []  # `compiled` set
        self._by_name: dict[str, list[int]] = {}
        self._by_cluster: dict[str, list[int]] = {}
        self._patterned: list[int] = []
        for other in others:
            try:
                compiled = other.compiled_spec()
            except InvalidSpecError:
                continue
            if compiled is None:
                continue
            at = len(self._compiled)
            kept = other if other.compiled else dataclasses.replace(other, compiled=compiled)
            self._compiled.append((kept, compiled))
            for host in compiled.hosts.names:
                self._by_name.setdefault(host, []).append(at)
            for cluster in compiled.hosts.clusters:
                self._by_cluster.setdefault(cluster, []).append(at)
            if compiled.hosts.pattern is not None:
                self._patterned.append(at)

    def near(
        self, hosts: Sequence[ObservedHost], inventory: ObservedInventory
    ) -> tuple[OtherPolicy, ...]:
        """Every policy that may select one of `hosts` (a superset: `HostMatcher.selects`
        decides), compiled, in the order given."""
        return tuple(other for other, _ in self.compiled_near(hosts, inventory))

    def compiled_near(
        self, hosts: Sequence[ObservedHost], inventory: ObservedInventory
    ) -> list[tuple[OtherPolicy, CompiledPolicy]]:
        """`near`, each with its compiled spec."""
        found = set(self._patterned)
        names = {h.name for h in hosts}
        for host in hosts:
            found.update(self._by_name.get(host.name, ()))
        clusters = {h.cluster for h in hosts if h.cluster is not None}
        for cluster, at in self._by_cluster.items():
            if cluster in clusters or not names.isdisjoint(inventory.clusters.get(cluster, ())):
                found.update(at)
        return [self._compiled[i] for i in sorted(found)]


@dataclass(frozen=True, slots=True)
class _Rival:
    name: str
    age: tuple[datetime, str]
    host_names: frozenset[str]
    rules: PolicyRules

    def wants(self, host: ObservedHost, device: HostPciDevice | None, pci_id: str) -> bool | None:
        """True: enabled, False: disabled, None: no opinion about this device."""
        if host.name not in self.host_names:
            return None
        if device is not None and any(m.matches(device) for m in self.rules.matchers):
            return True
        if self.rules.exclusive and not host.attached_to_vms.get(pci_id):
            return False
        return None


@dataclass(frozen=True, slots=True)
class Rivals:
    """The other policies, seen from the policy being planned (`age`: creationTimestamp, name)."""

    age: tuple[datetime, str]
    rivals: tuple[_Rival, ...] = ()

    @classmethod
    def build(
        cls,
        name: str,
        creation_timestamp: datetime,
        others: Sequence[OtherPolicy] | OthersIndex,
        inventory: ObservedInventory,
        hosts: Sequence[ObservedHost] | None = None,
    ) -> Rivals:
        """`hosts`: the hosts being planned (default: all). Rivals are only ever asked about
        those, so only those are matched, and a policy that selects none of them is left out:
        the cost is others x planned hosts, not others x the whole inventory. A list is
        indexed here; a caller that plans often keeps its `OthersIndex` (compiled once)."""
        planned = inventory.hosts if hosts is None else hosts
        index = others if isinstance(others, OthersIndex) else OthersIndex(others)
        rivals = []
        for other, compiled in index.compiled_near(planned, inventory):
            if other.name == name:
                continue
            names = frozenset(h.name for h in planned if compiled.hosts.selects(h, inventory))
            if names:
                age = (other.creation_timestamp, other.name)
                rivals.append(_Rival(other.name, age, names, compiled.rules))
        return cls((creation_timestamp, name), tuple(sorted(rivals, key=lambda r: r.age)))

    def older_opposite(
        self, host: ObservedHost, device: HostPciDevice | None, pci_id: str, enabled: bool
    ) -> str | None:
        """The oldest older policy that wants this device the other way, if any."""
        for rival in self.rivals:
            if rival.age >= self.age:
                return None
            if rival.wants(host, device, pci_id) is (not enabled):
                return rival.name
        return None

    def claimed_by(
        self, host: ObservedHost, device: HostPciDevice | None, pci_id: str
    ) -> str | None:
        """Any other policy, old or new, that wants this device enabled."""
        return next((r.name for r in self.rivals if r.wants(host, device, pci_id) is True), None)
