"""What each HostPassthroughPolicy last planned on: which vCenter changes concern it.

A vCenter change report names hosts (or, when it can't, says "any host"). Reconciling every
policy on every report would make convergence O(N²) (measured in docs/benchmarks.md, finding 4),
so each policy's last plan is remembered here: `concerns` answers for a report that names
hosts, `differs` for one that names none, by comparing a fresh inventory with what the policy
last planned on (as an informer's relist hands on only the objects that changed;
docs/benchmarks.md, finding 13).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from dpio.api.policy import HostSelector
from dpio.planner import PolicyPlan
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.selection import InvalidSpecError, select_hosts


@dataclass(frozen=True, slots=True)
class _PlannedOn:
    #: `spec.hosts` as JSON: the model was ~600 bytes a policy, its JSON ~70 (finding 37);
    #: parsed again only by `differs`, once per policy after a report that names no host.
    selector: bytes
    hosts: bytes  # `_digest` of the hosts as observed
    missing: tuple[str, ...]
    morefs: frozenset[str]


def _digest(hosts: tuple[ObservedHost, ...]) -> bytes:
    """Equal for hosts observed the same (every field, in `repr`), 16 bytes whatever their
    size. Each policy kept its hosts as observed, and after partial reads those were copies of
    their own: 2.2 KB per policy at 5,000 single-host policies (docs/benchmarks.md, finding
    33). A field read in another order only costs a reconcile that plans the same."""
    return hashlib.blake2b(repr(hosts).encode(), digest_size=16).digest()


Key = tuple[str, str]


@dataclass
class Selections:
    """Policy name -> its last plan's selector, hosts as observed and missing host names;
    indexed by host, and kept informed of the policy cache's keys (`cache_index`), so a report
    of a few hosts finds its policies without asking each policy (at 5,000 policies that walk,
    once per report, was ~10% of the operator's samples, docs/benchmarks.md finding 28)."""

    _last: dict[str, _PlannedOn] = field(default_factory=dict)
    #: Host moref -> the policies whose last plan selected it.
    _by_host: dict[str, set[str]] = field(default_factory=dict)
    #: ("", name) of every policy in `_last` (the controller's cache keys).
    _keys: set[Key] = field(default_factory=set)
    #: The policy cache's keys, and those of them with no plan (`_cached - _keys`, kept).
    _cached: set[Key] = field(default_factory=set)
    _unplanned: set[Key] = field(default_factory=set)

    def cache_index(self) -> _CacheKeys:
        """What the policy cache calls on each change (`ObjectCache(indexes=...)`)."""
        return _CacheKeys(self)

    def record(self, name: str, selector: HostSelector, plan: PolicyPlan) -> None:
        """After planning; a plan that stalled (e.g. a selector that doesn't compile) selected
        nothing, so the policy is concerned by every change until it plans again."""
        if plan.stalled is not None:
            self.forget(name)
            return
        hosts = tuple(p.host for p in plan.hosts)
        morefs = frozenset(h.moref for h in hosts)
        self.forget(name)
        kept = selector.model_dump_json(by_alias=True, exclude_defaults=True).encode()
        self._last[name] = _PlannedOn(kept, _digest(hosts), plan.missing_hosts, morefs)
        self._keys.add(("", name))
        self._unplanned.discard(("", name))
        for moref in morefs:
            self._by_host.setdefault(moref, set()).add(name)

    def forget(self, name: str) -> None:
        key = ("", name)
        if key in self._cached:
            self._unplanned.add(key)
        last = self._last.pop(name, None)
        if last is None:
            return
        self._keys.discard(key)
        for moref in last.morefs:
            names = self._by_host.get(moref)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._by_host[moref]

    def concerns(self, name: str, hosts: frozenset[str] | None) -> bool:
        """Does a vCenter change of `hosts` (None: any host) call for reconciling `name`?

        Only policies that selected one of those hosts, and those with no plan yet (new,
        Stalled, or failed before planning), which may select anything once they plan.
        """
        last = self._last.get(name)
        return hosts is None or last is None or not last.morefs.isdisjoint(hosts)

    def concerned(self, hosts: frozenset[str]) -> set[Key]:
        """The cached policies `concerns` would answer True for, for a report of `hosts`: those
        whose last plan selected one of them and those with no plan; no walk of the policies."""
        found = set(self._unplanned)
        for moref in hosts:
            found.update(
                k for k in (("", n) for n in self._by_host.get(moref, ())) if k in self._cached
            )
        return found

    def differs(self, name: str, inventory: ObservedInventory) -> bool:
        """Would `name` plan on different hosts in `inventory` than its last plan did?
        Never planned, or a selector that no longer compiles: True."""
        last = self._last.get(name)
        if last is None:
            return True
        try:
            now = select_hosts(HostSelector.model_validate_json(last.selector), inventory)
        except (InvalidSpecError, ValidationError):
            return True
        return (_digest(now.hosts), now.missing_names) != (last.hosts, last.missing)


@dataclass(frozen=True)
class _CacheKeys:
    """`Selections` as an index of the policy cache (`reconcile.cache.Index`)."""

    selections: Selections

    def put(self, key: Key, body: object) -> None:
        found = self.selections
        found._cached.add(key)
        if key not in found._keys:
            found._unplanned.add(key)

    def forget(self, key: Key) -> None:
        self.selections._cached.discard(key)
        self.selections._unplanned.discard(key)
