"""What one assignment's reconcile reads of every OTHER assignment (their claims on devices and
their share of a consumer's quota, inputs.py), parsed once per resourceVersion.

Every reconcile looks at all the other assignments, so parsing each one with pydantic on every
reconcile made a fleet quadratic: with 200 assignments, 28% of the operator's CPU went to
re-parsing bodies that had not changed (py-spy, docs/benchmarks.md). An unchanged body has the
same uid and resourceVersion, so its summary is kept under that pair; what is kept is
bounded by the fleet (entries of bodies no longer in the cache are dropped as it turns over).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.conditions import DEVICES_UNAVAILABLE, FORBIDDEN, QUOTA_EXCEEDED
from dpio.planner.conditions import find, is_true
from dpio.planner.observed import parse_pci_id

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
        key=ObjectKey(meta.get("namespace", ""), meta.get("name", "")),
        deleting=bool(meta.get("deletionTimestamp")),
        policy=str((spec.get("policyRef") or {}).get("name") or ""),
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
    return Claim(
        host=other.status.vm.host if other.status.vm is not None else None,
        looked=other.status.observed_generation is not None,
        device_ids=addresses,
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


class Others:
    """`derive`, remembered per (uid, resourceVersion); safe to share between workers."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], Other] = {}
        self._lock = threading.Lock()

    def all(self, bodies: Iterable[Body]) -> list[Other]:
        """The summaries of `bodies`, in order; forgets bodies not among them once the memo
        has grown to twice their number (the fleet moved on)."""
        result: list[Other] = []
        keys: list[tuple[str, str]] = []
        with self._lock:
            known = self._known
            for body in bodies:
                meta = body.get("metadata", {})
                key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
                found = known.get(key) if key[1] else None
                if found is None:
                    found = derive(body)
                    if key[1]:
                        known[key] = found
                result.append(found)
                keys.append(key)
            if len(known) > 2 * len(keys) + 64:
                self._known = {k: known[k] for k in keys if k in known}
        return result

    def __len__(self) -> int:
        with self._lock:
            return len(self._known)


class ParsedPolicies:
    """The referenced HostPassthroughPolicy, parsed once per (uid, resourceVersion).

    Every assignment reconcile reads its policy, whose status lists every host's devices: with
    500 assignments on 64 hosts, parsing it anew each time was 11% of the operator's CPU
    (py-spy, docs/benchmarks.md). The few most recent versions are kept.
    """

    KEEP = 16

    def __init__(self, parse: Callable[[Body], Any]) -> None:
        self._parse = parse
        self._known: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def parse(self, body: Body) -> Any:
        meta = body.get("metadata", {})
        key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
        if not key[1]:
            return self._parse(body)
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        parsed = self._parse(body)
        with self._lock:
            self._known[key] = parsed
            while len(self._known) > self.KEEP:
                self._known.popitem(last=False)
        return parsed
