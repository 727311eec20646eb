"""The devices VMDeviceAssignments claim and have not attached yet, read from the operator's
cache of assignments (no API call): what `exclusive` and `deletionPolicy: Disable` must not take
away while an assignment still converges (`dpio.planner.host.in_use`).

Read from the raw objects, field by field, since one malformed assignment must not stop a
policy's reconcile: what can't be read claims nothing. An assignment whose VM was never
observed (no `status.vm.host`) has changed nothing and claims nothing either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dpio.planner.host.in_use import DeviceClaim
from dpio.planner.observed import DynamicPassthrough, parse_pci_id


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
