"""`dpio plan`: what the operator would change for a HostPassthroughPolicy, computed by the
operator's own planner (`dpio.planner.plan_policy`), shown for pull-request review.

Pure: a `PolicyPlan` in, a `PolicyReport` (and its text or JSON) out. The report names vSphere's
calls as the operator makes them: one `UpdatePassthruConfig` per host that changes, the
rolling-reboot steps, and what the policy refuses or conflicts with (docs/design.md,
"Host side: passthrough rules" and the sections after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dpio.api.conditions import (
    DEVICE_IN_USE,
    DEVICE_NOT_CAPABLE,
    DEVICE_NOT_FOUND,
    POLICY_CONFLICT,
)
from dpio.api.policy import DeviceState, RebootPolicy
from dpio.planner import PolicyPlan, Problem, RebootAction, UpdatePassthruConfig
from dpio.planner.host.host_plan import HostPlan, PassthruChange
from dpio.planner.host.status import device_status
from dpio.planner.observed import format_pci_id

#: Problems about one device the policy asked for: the planner left it alone.
REFUSED = frozenset({DEVICE_IN_USE, DEVICE_NOT_CAPABLE, DEVICE_NOT_FOUND})
# Their rows repeat the problem's message; other rows' messages are notes (kept, relabelled...).
_REFUSED_STATES = frozenset(
    {DeviceState.IN_USE_BY_HOST, DeviceState.NOT_CAPABLE, DeviceState.NOT_FOUND}
)


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One HostPciPassthruConfig of the host's UpdatePassthruConfig call, described."""

    address: str
    action: str  # enable | disable | relabel
    apply_now: bool
    hardware_label: str | None
    device: str  # vendorID:deviceID and name, for the reader

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": self.action,
            "passthruEnabled": self.action != "disable",
            "applyNow": self.apply_now,
            "hardwareLabel": self.hardware_label,
            "device": self.device,
        }


@dataclass(frozen=True, slots=True)
class PolicyReport:
    name: str
    vcenter: str  # where the inventory came from: "Secret ns/name", "$VSPHERE_URL", ...
    reboot_policy: RebootPolicy
    plan: PolicyPlan
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """Like `terraform plan -detailed-exitcode`: the operator would call vSphere."""
        return not self.plan.empty

    @property
    def refused(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.plan.problems if p.reason in REFUSED)

    @property
    def conflicts(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.plan.problems if p.reason == POLICY_CONFLICT)

    @property
    def other_problems(self) -> tuple[Problem, ...]:
        skip = REFUSED | {POLICY_CONFLICT}
        return tuple(p for p in self.plan.problems if p.reason not in skip)


def describe_change(host: HostPlan, change: PassthruChange) -> ChangeLine:
    current = host.host.passthru_info().get(change.id)
    if current is not None and current.passthru_enabled == change.passthru_enabled:
        action = "relabel"
    else:
        action = "enable" if change.passthru_enabled else "disable"
    device = host.host.pci_device().get(change.id)
    text = ""
    if device is not None:
        ids = f"{format_pci_id(device.vendor_id)}:{format_pci_id(device.device_id)}"
        text = f"{ids} {device.device_name}".strip()
    return ChangeLine(change.id, action, change.apply_now, change.hardware_label, text)


def _host_plan(report: PolicyReport, update: UpdatePassthruConfig) -> HostPlan | None:
    return next((h for h in report.plan.hosts if h.host.moref == update.moref), None)


def change_lines(report: PolicyReport, update: UpdatePassthruConfig) -> list[ChangeLine]:
    host = _host_plan(report, update)
    if host is None:  # the planner only plans updates for hosts it planned
        return []
    return [describe_change(host, c) for c in update.changes]


def action_name(action: RebootAction) -> str:
    return type(action).__name__


def reboot_note(report: PolicyReport) -> str:
    if report.reboot_policy is RebootPolicy.ROLLING:
        return "reboot required; reboot.policy Rolling: the operator drains and reboots it"
    return "reboot required; reboot.policy Manual: reboot it yourself (KB 309986)"


def to_dict(report: PolicyReport) -> dict[str, Any]:
    plan = report.plan
    updated = {u.host: u for u in plan.updates}
    hosts = []
    for host in sorted(plan.hosts, key=lambda h: h.host.name):
        update = updated.get(host.host.name)
        hosts.append(
            {
                "name": host.host.name,
                "updatePassthruConfig": (
                    [c.as_dict() for c in change_lines(report, update)] if update else []
                ),
                "rebootRequired": host.reboot_required,
                "devices": [
                    device_status(row).model_dump(mode="json", by_alias=True, exclude_none=True)
                    for row in host.devices
                ],
            }
        )
    problems = [{"reason": p.reason, "message": p.message} for p in plan.problems]
    return {
        "kind": "HostPassthroughPolicy",
        "name": report.name,
        "vcenter": report.vcenter,
        "changed": report.changed,
        "stalled": (
            {"reason": plan.stalled.reason, "message": plan.stalled.message}
            if plan.stalled
            else None
        ),
        "hosts": hosts,
        "missingHosts": list(plan.missing_hosts),
        "rebootActions": [{"action": action_name(a), "host": a.host} for a in plan.reboot_actions],
        "problems": problems,
        "notes": list(report.notes),
    }


def render_text(report: PolicyReport) -> str:
    plan = report.plan
    lines = [f"HostPassthroughPolicy/{report.name} (vCenter from {report.vcenter})"]
    lines += [f"  note: {n}" for n in report.notes]
    if plan.stalled is not None:
        lines.append(f"  ! Stalled {plan.stalled.reason}: {plan.stalled.message}")
        return "\n".join(lines) + "\n"
    updated = {u.host: u for u in plan.updates}
    for host in sorted(plan.hosts, key=lambda h: h.host.name):
        update = updated.get(host.host.name)
        if update is None:
            lines.append(f"  = {host.host.name}: no change")
        else:
            lines.append(f"  ~ {host.host.name}: UpdatePassthruConfig ({host.host.moref})")
            lines += [_change_text(c) for c in change_lines(report, update)]
        lines += [
            f"      note {row.id} {row.state}: {row.message}"
            for row in host.devices
            if row.message and row.state not in _REFUSED_STATES
        ]
        if host.reboot_required:
            lines.append(f"      {reboot_note(report)}")
    lines += [f"  ? {name}: no such host in vCenter" for name in plan.missing_hosts]
    lines += [f"  > {action_name(a)} {a.host}" for a in plan.reboot_actions]
    lines += _problems("refused", report.refused)
    lines += _problems("conflict", report.conflicts)
    lines += _problems("degraded", report.other_problems)
    return "\n".join(lines) + "\n"


def _change_text(line: ChangeLine) -> str:
    sign = {"enable": "+", "disable": "-"}.get(line.action, "~")
    extra = [f"hardwareLabel={line.hardware_label}" if line.hardware_label else ""]
    extra.append("applyNow" if line.apply_now else "")
    tail = " ".join(e for e in extra if e)
    return f"      {sign} {line.action:<8} {line.address}  {line.device}  {tail}".rstrip()


def _problems(label: str, problems: Sequence[Problem]) -> list[str]:
    return [f"  ! {label} {p.reason}: {p.message}" for p in problems]


def summary(reports: Sequence[PolicyReport]) -> str:
    """The last line: counts over every object, like terraform's `Plan: ...`."""
    calls = sum(len(r.plan.updates) for r in reports)
    changes = [c for r in reports for u in r.plan.updates for c in u.changes]
    enabled = sum(1 for c in changes if c.passthru_enabled)
    reboots = len({h for r in reports for h in r.plan.reboot_required})
    steps = sum(len(r.plan.reboot_actions) for r in reports)
    refused = sum(len(r.refused) for r in reports)
    conflicts = sum(len(r.conflicts) for r in reports)
    return (
        f"Plan: {calls} UpdatePassthruConfig call(s) ({enabled} to enable or relabel, "
        f"{len(changes) - enabled} to disable), {reboots} host(s) needing a reboot, "
        f"{steps} rolling-reboot step(s), {refused} refused, {conflicts} conflict(s).\n"
    )
