"""What one assignment's reconcile reads of the OTHER assignments (their claims on devices and
their share of a consumer's quota, inputs.py), summarized once per watch event.

Parsing every other assignment with pydantic on every reconcile made a fleet quadratic: with 200
assignments, 28% of the operator's CPU went to re-parsing bodies that had not changed (py-spy,
docs/benchmarks.md). `AssignmentIndex` summarizes a body when the watch delivers it and files
it by the host it claims on and the policy it counts against, so a reconcile reads only what
may concern it.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.conditions import DEVICES_UNAVAILABLE, FORBIDDEN, QUOTA_EXCEEDED
from dpio.api.policy_status import HostStatus
from dpio.planner.conditions import find, is_true
from dpio.planner.observed import parse_pci_id
from dpio.reconcile.cache import key_of

Body = Mapping[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ObjectKey(NamedTuple):
    """A VMDeviceAssignment's identity in the caches (equal to a plain (namespace, name))."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Claim:
    """The devices an assignment asks for, as its claim on them (None host: not looked yet)."""

    host: str | None
    #: It has reconciled at least once (status.observedGeneration set).
    looked: bool
    device_ids: tuple[str, ...]
    vm_name: str
    vm_instance_uuid: str
    dynamic: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True, slots=True)
class Other:
    """One other assignment, as claims and quota read it."""

    key: ObjectKey
    deleting: bool
    policy: str
    created: datetime
    #: spec.devices, counted against a consumer's maxDevices.
    devices: int
    #: Refused (Forbidden=True): it counts against no quota.
    forbidden: bool
    #: What it claims; None: nothing (invalid, refused, over quota, or no device asked for).
    claim: Claim | None


def derive(body: Body) -> Other:
    """The summary of one body (pure)."""
    meta = body.get("metadata", {})
    spec = body.get("spec") or {}
    conditions = (body.get("status") or {}).get("conditions") or ()
    stamp = meta.get("creationTimestamp")
    return Other(
        key=ObjectKey(sys.intern(str(meta.get("namespace", ""))), str(meta.get("name", ""))),
        deleting=bool(meta.get("deletionTimestamp")),
        policy=sys.intern(str((spec.get("policyRef") or {}).get("name") or "")),
        created=datetime.fromisoformat(stamp) if isinstance(stamp, str) else EPOCH,
        devices=len(spec.get("devices") or ()),
        forbidden=any(c.get("type") == FORBIDDEN and c.get("status") == "True" for c in conditions),
        claim=_claim(body),
    )


def _claim(body: Body) -> Claim | None:
    try:
        other = VMDeviceAssignment.model_validate(body)
    except ValidationError:
        return None
    if _holds_nothing(other):
        return None
    addresses = tuple(d.pci.address for d in other.spec.devices if d.pci is not None)
    dynamic = _dynamic(other)
    if not addresses and not dynamic:
        return None
    host = other.status.vm.host if other.status.vm is not None else None
    return Claim(  # names many claims share are interned: one copy for 5,000 (finding 37)
        host=sys.intern(host) if host is not None else None,
        looked=other.status.observed_generation is not None,
        device_ids=tuple(sys.intern(a) for a in addresses),
        vm_name=other.spec.vm.name or "",
        vm_instance_uuid=other.spec.vm.instance_uuid or "",
        dynamic=dynamic,
    )


def _holds_nothing(assignment: VMDeviceAssignment) -> bool:
    """Refused (Forbidden) or over its quota: it adds no device, so it claims none. What it
    already has attached, vCenter reports as the VM's (InUseByVM)."""
    conditions = assignment.status.conditions
    over = find(conditions, DEVICES_UNAVAILABLE)
    return is_true(conditions, FORBIDDEN) or (
        over is not None and over.status == "True" and over.reason == QUOTA_EXCEEDED
    )


def _dynamic(assignment: VMDeviceAssignment) -> tuple[tuple[int, int, str], ...]:
    """Its Dynamic DirectPath devices as (vendorId, deviceId, label); bad hex is left out (that
    assignment reports its own InvalidSpec)."""
    found = []
    for device in assignment.spec.devices:
        dyn = device.dynamic
        if dyn is None:
            continue
        vendor, device_id = parse_pci_id(dyn.vendor_id), parse_pci_id(dyn.device_id)
        if vendor is not None and device_id is not None:
            found.append((vendor, device_id, dyn.label or ""))
    return tuple(found)


class AssignmentIndex:
    """Every assignment in the watch cache, as claims and quota read it (`Other`), kept from the
    cache's changes (`cache.Index`) and indexed by what a reconcile asks: the claims that may
    weigh on one host, and the assignments of one policy.

    A reconcile used to walk every cached assignment (with a memo per resourceVersion): at 5,000
    assignments that walk was 16% of the operator's samples and 23% of a restart's, a cost
    per reconcile that grows with the fleet (docs/benchmarks.md, finding 23). Here each body is
    summarized once, when the watch delivers it, and a reconcile reads only its host's claims
    and its policy's assignments. Belongs to the event loop, like the cache: no locks.
    """

    def __init__(self) -> None:
        self._all: dict[ObjectKey, Other] = {}
        #: Claims by their host; None: not reconciled yet, so it may claim on any host.
        self._claims: dict[str | None, dict[ObjectKey, Other]] = {}
        #: What counts against quota, by policy name.
        self._of_policy: dict[str, dict[ObjectKey, Other]] = {}

    @classmethod
    def of(cls, bodies: Iterable[Body]) -> AssignmentIndex:
        """An index of `bodies` (later bodies of the same key replace earlier ones)."""
        index = cls()
        for body in bodies:
            index.put(key_of(body), body)
        return index

    def put(self, key: tuple[str, str], body: Body) -> None:
        self.forget(key)
        at, other = ObjectKey(*key), derive(body)
        self._all[at] = other
        claim = other.claim
        if (
            claim is not None
            and not other.deleting
            and (claim.host is not None or not claim.looked)
        ):
            self._claims.setdefault(claim.host, {})[at] = other
        if not other.deleting and not other.forbidden:
            self._of_policy.setdefault(other.policy, {})[at] = other

    def forget(self, key: tuple[str, str]) -> None:
        at = ObjectKey(*key)
        other = self._all.pop(at, None)
        if other is None:
            return
        if other.claim is not None:
            _discard(self._claims, other.claim.host, at)
        _discard(self._of_policy, other.policy, at)

    def near(self, host: str) -> list[Other]:
        """The assignments whose claims may weigh on `host`: those claiming on it and those that
        have not looked yet (their host is unknown); every claim while `host` is "" (our own
        host is not known yet). Oldest first."""
        if host:
            groups: Iterable[dict[ObjectKey, Other]] = (
                self._claims.get(host, {}),
                self._claims.get(None, {}),
            )
        else:
            groups = self._claims.values()
        return _oldest_first(o for group in groups for o in group.values())

    def of_policy(self, policy: str) -> list[Other]:
        """The assignments of `policy` that count against its consumers' quota (not being
        deleted, not refused), oldest first."""
        return _oldest_first(self._of_policy.get(policy, {}).values())

    def __len__(self) -> int:
        return len(self._all)


def _discard(groups: dict[Any, dict[ObjectKey, Other]], group: Any, at: ObjectKey) -> None:
    found = groups.get(group)
    if found is not None:
        found.pop(at, None)
        if not found:
            del groups[group]


def _oldest_first(others: Iterable[Other]) -> list[Other]:
    return sorted(others, key=lambda o: (o.created, o.key))


@dataclass(slots=True)
class _ParsedPolicy:
    version: str
    policy: Any
    #: Host name -> that host's raw status row (decoded once from the cached body); None: the
    #: body had no host list to set apart (the policy holds its rows itself).
    rows: Mapping[str, Any] | None
    #: The rows parsed so far, by host name (None: no valid row for that host).
    parsed: dict[str, HostStatus | None]


class ParsedPolicies:
    """The referenced HostPassthroughPolicy, parsed once per (uid, resourceVersion), and of its
    status only the rows of the hosts reconciles ask for (`host_status`).

    Every assignment reconcile reads its policy, whose status lists every host's devices: with
    500 assignments on 64 hosts, parsing it anew each time was 11% of the operator's CPU
    (py-spy, docs/benchmarks.md). Over 625 hosts the whole policy parses into 7 MiB in 0.23 s,
    and a reconcile needs one host's rows: the host list is set apart as the raw rows and each
    host's are parsed when first asked for. Only the latest version of each policy is kept; no
    reconcile asks for an older one again (finding 24). The policies least recently asked for
    go first beyond `KEEP`: a parsed policy holds ~20 KB (its models), so 256 of them were
    5.2 MiB at 5,000 policies; assignments share few policies in practice, and a miss costs
    one parse (finding 37).
    """

    KEEP = 64

    def __init__(self, parse: Callable[[Body], Any]) -> None:
        self._parse = parse
        #: uid -> its latest version, parsed
        self._known: OrderedDict[str, _ParsedPolicy] = OrderedDict()
        self._lock = threading.Lock()

    def parse(self, body: Body) -> Any:
        """The policy, its `status.hosts` left empty when it was set apart (ask `host_status`)."""
        meta = body.get("metadata", {})
        uid, version = str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))
        if not version:
            return self._parse(body)
        with self._lock:
            known = self._known.get(uid)
            if known is not None and known.version == version:
                self._known.move_to_end(uid)
                return known.policy
        stripped, rows = _set_apart(body)
        parsed = _ParsedPolicy(version, self._parse(stripped), rows, {})
        with self._lock:
            self._known[uid] = parsed
            self._known.move_to_end(uid)
            while len(self._known) > self.KEEP:
                self._known.popitem(last=False)
        return parsed.policy

    def host_status(self, policy: Any, host: str) -> HostStatus | None:
        """`policy`'s status row for `host` (None: none, or not valid); `policy` as `parse`
        returned it, or any parsed policy (its own rows are then looked through)."""
        uid = str(policy.metadata.uid or "")
        with self._lock:
            known = self._known.get(uid)
        if known is None or known.policy is not policy or known.rows is None:
            hosts: list[HostStatus] = policy.status.hosts
            return next((h for h in hosts if h.name == host), None)
        with self._lock:
            if host in known.parsed:
                return known.parsed[host]
        raw = known.rows.get(host)
        try:
            found = HostStatus.model_validate(raw) if raw is not None else None
        except ValidationError:
            found = None  # as if the policy had not reported on the host yet
        with self._lock:
            known.parsed[host] = found
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._known)


def _set_apart(body: Body) -> tuple[Body, Mapping[str, Any] | None]:
    """`body` with an empty `status.hosts`, and its rows by host name; `body` itself and None
    when there is no host list to set apart."""
    status = body.get("status")
    raw = status.get("hosts") if isinstance(status, Mapping) else None
    if not isinstance(status, Mapping) or not isinstance(raw, list):
        return body, None
    rows = {str(r.get("name", "")): r for r in raw if isinstance(r, Mapping)}
    rest = {k: body[k] for k in body if k != "status"}  # the status is decoded once
    return {**rest, "status": {**status, "hosts": []}}, rows
