"""`dpio status`: every HostPassthroughPolicy and VMDeviceAssignment on one screen.

Pure: object bodies as the API server returns them in, rows out. Bodies are read leniently (no
pydantic validation): an object written by an older or newer operator still gets its line.
The conditions worth a look are the ones that say something is wrong or pending (Ready=False,
Stalled, Degraded, RebootRequired, PowerOffRequired, ...), shown as `Type=Reason`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dpio.api.conditions import (
    DEGRADED,
    DEVICES_UNAVAILABLE,
    FEATURE_CONFLICT,
    FORBIDDEN,
    POWER_OFF_REQUIRED,
    READY,
    REBOOT_REQUIRED,
    RECONCILING,
    STALLED,
    SUSPENDED,
)
from dpio.cli.output import EMPTY, Format, dump, table

HEADERS = ("kind", "namespace", "name", "ready", "reason", "summary", "attention")
#: Conditions that are news when True (kstatus abnormal-true, and the kinds' own warnings).
ATTENTION = (
    SUSPENDED,  # spec.suspend or the operator's dry-run: nothing is written to vCenter
    STALLED,
    RECONCILING,
    DEGRADED,
    REBOOT_REQUIRED,
    POWER_OFF_REQUIRED,
    FEATURE_CONFLICT,
    DEVICES_UNAVAILABLE,
    FORBIDDEN,
)
SHORT = {"HostPassthroughPolicy": "hpp", "VMDeviceAssignment": "vmda"}


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    namespace: str
    name: str
    ready: str  # True | False | Unknown | "" (never reconciled)
    reason: str
    summary: str
    attention: tuple[str, ...]
    message: str
    stale: bool  # status.observedGeneration behind metadata.generation
    suspended: str = ""  # the Suspended condition's reason when True (Suspended | DryRun)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace or None,
            "name": self.name,
            "ready": self.ready or None,
            "reason": self.reason or None,
            "message": self.message or None,
            "summary": self.summary,
            "attention": list(self.attention),
            "observedGenerationCurrent": not self.stale,
            "suspended": self.suspended or None,
        }


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found = status.get("conditions") or []
    return {str(c.get("type")): c for c in found if isinstance(c, Mapping)}


def policy_summary(status: Mapping[str, Any]) -> str:
    counts = status.get("summary") or {}
    keys = (
        ("hosts", "hosts"),
        ("devices", "devices"),
        ("active", "active"),
        ("pendingReboot", "pending reboot"),
    )
    return ", ".join(f"{counts.get(k, 0)} {label}" for k, label in keys)


def assignment_summary(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    vm_ref = spec.get("vm") or {}
    vm = status.get("vm") or {}
    name = vm_ref.get("name") or vm_ref.get("instanceUUID") or "?"
    parts = [f"vm {name}"]
    if vm.get("host"):
        parts.append(f"on {vm['host']}")
    if vm.get("powerState"):
        parts.append(str(vm["powerState"]))
    devices = status.get("devices") or []
    wanted = len(spec.get("devices") or []) + len(spec.get("networkDirectPath") or [])
    attached = status.get("attached") or f"{sum(1 for d in devices if d.get('attached'))}/{wanted}"
    parts.append(f"{attached} attached")
    return ", ".join(parts)


def row(body: Mapping[str, Any]) -> Row:
    kind = str(body.get("kind", ""))
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = _conditions(status)
    ready = conditions.get(READY, {})
    attention = tuple(
        f"{t}={conditions[t].get('reason', '')}"
        for t in ATTENTION
        if conditions.get(t, {}).get("status") == "True"
    )
    if kind == "VMDeviceAssignment":
        text = assignment_summary(body.get("spec") or {}, status)
    else:
        text = policy_summary(status)
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    return Row(
        kind=kind,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name", "")),
        ready=str(ready.get("status", "")),
        reason=str(ready.get("reason", "")),
        summary=text,
        attention=attention,
        message=str(ready.get("message", "")),
        stale=generation is not None and observed != generation,
        suspended=_suspended(conditions),
    )


def _suspended(conditions: Mapping[str, Mapping[str, Any]]) -> str:
    found = conditions.get(SUSPENDED, {})
    return str(found.get("reason", "")) if found.get("status") == "True" else ""


def rows(bodies: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Policies first (cluster-scoped), then assignments by namespace and name."""
    order = {"HostPassthroughPolicy": 0, "VMDeviceAssignment": 1}
    found = [row(b) for b in bodies]
    return sorted(found, key=lambda r: (order.get(r.kind, 2), r.namespace, r.name))


def table_row(r: Row) -> tuple[object, ...]:
    ready = f"{r.ready} (stale)" if r.ready and r.stale else r.ready or EMPTY
    return (SHORT.get(r.kind, r.kind), r.namespace, r.name, ready, r.reason, r.summary, r.attention)


def render(bodies: Sequence[Mapping[str, Any]], fmt: Format) -> str:
    found = rows(bodies)
    if fmt is not Format.TABLE:
        return dump({"items": [r.as_dict() for r in found]}, fmt)
    if not found:
        return "No HostPassthroughPolicy or VMDeviceAssignment found.\n"
    lines = [table_row(r) for r in found]
    return table(HEADERS, lines)


def all_ready(bodies: Sequence[Mapping[str, Any]]) -> bool:
    return all(r.ready == "True" and not r.stale for r in rows(bodies))
