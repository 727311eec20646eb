"""The devices VMDeviceAssignments claim and have not attached yet, read from the operator's
cache of assignments (no API call): what `exclusive` and `deletionPolicy: Disable` must not take
away while an assignment still converges (`dpio.planner.host.in_use`). `PendingClaims` keeps
them as the cache changes, so a plan reads them without a walk of every assignment.

Read from the raw objects, field by field, since one malformed assignment must not stop a
policy's reconcile: what can't be read claims nothing. An assignment whose VM was never
observed (no `status.vm.host`) has changed nothing and claims nothing either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

from dpio.planner.host.in_use import DeviceClaim
from dpio.planner.observed import DynamicPassthrough, parse_pci_id
from dpio.reconcile.cache import Key


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _claim(who: str, host: str, device: Mapping[str, Any]) -> DeviceClaim | None:
    address = _dict(device.get("pci")).get("address")
    if isinstance(address, str) and address:
        return DeviceClaim(who, host, address=address)
    dynamic = _dict(device.get("dynamic"))
    vendor = parse_pci_id(str(dynamic.get("vendorID", "")))
    device_id = parse_pci_id(str(dynamic.get("deviceID", "")))
    if vendor is None or device_id is None:
        return None
    label = dynamic.get("label")
    backing = DynamicPassthrough(((vendor, device_id),), label if isinstance(label, str) else "")
    return DeviceClaim(who, host, dynamic=backing)


def pending_claims(assignments: Iterable[Mapping[str, Any]]) -> tuple[DeviceClaim, ...]:
    """One claim per spec device that the assignment's status does not show attached."""
    claims = []
    for body in assignments:
        meta, status = _dict(body.get("metadata")), _dict(body.get("status"))
        host = _dict(status.get("vm")).get("host")
        if not isinstance(host, str) or not host:
            continue
        who = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        attached = {
            d.get("name") for d in map(_dict, _list(status.get("devices"))) if d.get("attached")
        }
        for device in map(_dict, _list(_dict(body.get("spec")).get("devices"))):
            if device.get("name") in attached:
                continue  # on the VM: the host read sees it (attached_to_vms / its backing)
            claim = _claim(who, host, device)
            if claim is not None:
                claims.append(claim)
    return tuple(claims)


class PendingClaims:
    """`pending_claims` of every cached assignment, kept from the cache's changes
    (`cache.Index`): walking every assignment on each plan that may disable devices decoded each
    one's spec and status (the cache keeps them packed, compact.py). Only assignments that still
    claim something are kept."""

    def __init__(self) -> None:
        self._by_key: dict[Key, tuple[DeviceClaim, ...]] = {}

    def put(self, key: Key, body: Mapping[str, Any]) -> None:
        claims = pending_claims((body,))
        if claims:
            self._by_key[key] = claims
        else:
            self._by_key.pop(key, None)

    def forget(self, key: Key) -> None:
        self._by_key.pop(key, None)

    def __call__(self) -> tuple[DeviceClaim, ...]:
        return tuple(chain.from_iterable(self._by_key.values()))
