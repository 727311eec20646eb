"""HostPassthroughPolicy status from a `PolicyPlan`: hosts, devices, summary and conditions.

The status shows each device as it will be once this reconcile's changes are in (the plan's
projection); the next observation confirms it. `conditions.status_changed` tells the reconciler
whether a write is needed at all (0 writes in steady state).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from dpio.api.common import PCI_ADDRESS_PATTERN
from dpio.api.conditions import (
    AS_EXPECTED,
    CERTIFICATE_VERIFIED,
    CLUSTER_BUDGET_EXHAUSTED,
    DEGRADED,
    DEVICE_IN_USE,
    DEVICE_NOT_CAPABLE,
    DEVICE_NOT_FOUND,
    DRAIN_BLOCKED,
    DRAIN_TIMEOUT,
    HOST_UNREACHABLE,
    INSECURE_CONNECTION,
    MAINTENANCE_MODE_BY_OTHERS,
    OUTSIDE_REBOOT_WINDOW,
    PASSTHROUGH_UNSUPPORTED,
    PENDING_REBOOT,
    POLICY_CONFLICT,
    REBOOT_REQUIRED,
    ROLLING_REBOOT,
    SUSPENDED,
    TLS_VERIFICATION_DISABLED,
    VCENTER_UNREACHABLE,
    ConditionStatus,
)
from dpio.api.policy import (
    DeviceState,
    DeviceStatus,
    HostPassthroughPolicyStatus,
    HostStatus,
    PolicySummary,
    RebootPolicy,
    RebootWindowStatus,
)
from dpio.planner.conditions import (
    Problem,
    Want,
    compute_conditions,
    kstatus_wants,
)
from dpio.planner.host.host_plan import DevicePlan, HostPlan
from dpio.planner.host.plan import PolicyPlan
from dpio.planner.observed import format_pci_id
from dpio.planner.suspension import suspended_want

# Which Degraded reason names the condition when several apply: what needs a human most first.
_DEGRADED_ORDER = (
    PASSTHROUGH_UNSUPPORTED,
    DEVICE_IN_USE,
    DEVICE_NOT_CAPABLE,
    DEVICE_NOT_FOUND,
    POLICY_CONFLICT,
    DRAIN_TIMEOUT,
    DRAIN_BLOCKED,
    MAINTENANCE_MODE_BY_OTHERS,
    HOST_UNREACHABLE,
    VCENTER_UNREACHABLE,
)
_MAX_LISTED = 5  # problems or hosts spelled out in one message; the rest are counted
_PCI_ADDRESS = re.compile(PCI_ADDRESS_PATTERN)


def _listing(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    rest = len(items) - _MAX_LISTED
    return f"{shown}; and {rest} more" if rest > 0 else shown


def degraded_want(problems: Sequence[Problem]) -> Want:
    if not problems:
        return Want.false(DEGRADED, AS_EXPECTED, "Every matched host follows the spec")
    rank = {reason: i for i, reason in enumerate(_DEGRADED_ORDER)}
    first = min(problems, key=lambda p: rank.get(p.reason, len(rank)))
    ordered = [first.message] + [p.message for p in problems if p is not first]
    return Want.true(DEGRADED, first.reason, _listing(ordered))


def insecure_want(insecure: bool) -> Want:
    """A Secret with insecure: "true" lets anyone between the operator and vCenter read the
    password and change what the operator sees; allowed by explicit choice, never quietly."""
    if insecure:
        return Want.true(
            INSECURE_CONNECTION,
            TLS_VERIFICATION_DISABLED,
            'The vCenter Secret sets insecure: "true": vCenter\'s certificate is not verified. '
            "Set caBundle or thumbprint instead",
        )
    return Want.false(
        INSECURE_CONNECTION, CERTIFICATE_VERIFIED, "vCenter's certificate is verified"
    )


def policy_wants(plan: PolicyPlan, reboot_policy: RebootPolicy) -> tuple[Want, ...]:
    if plan.stalled is not None:
        return kstatus_wants(stalled=plan.stalled, progressing=None, not_ready=None)
    degraded = degraded_want(plan.problems)
    hosts = plan.reboot_required
    if hosts:
        message = (
            f"Passthrough changes take effect after a reboot of {_listing(list(hosts))} "
            "(enabled != active, Broadcom KB 309986)"
        )
        reboot = Want.true(REBOOT_REQUIRED, *_reboot_reason(plan, reboot_policy, message))
    else:
        reboot = Want.false(REBOOT_REQUIRED, AS_EXPECTED, "Every passthrough change is active")
    not_ready = plan.held.problem if plan.held is not None else None
    if not_ready is not None:
        pass  # suspended with changes pending: that is why the spec is not in effect
    elif degraded.status is ConditionStatus.TRUE:
        not_ready = Problem(degraded.reason, degraded.message)
    elif hosts:
        not_ready = Problem(reboot.reason, reboot.message)
    return (
        *kstatus_wants(stalled=None, progressing=_progress(plan), not_ready=not_ready),
        reboot,
        degraded,
        suspended_want(plan.held),
    )


def _reboot_reason(plan: PolicyPlan, reboot_policy: RebootPolicy, message: str) -> tuple[str, str]:
    """RollingReboot, or what the whole rolling reboot waits for while no host is under way:
    the next reboot window, or a slot in a cluster's maxUnavailable."""
    if reboot_policy is not RebootPolicy.ROLLING:
        return PENDING_REBOOT, message
    if not plan.reboot.in_progress:
        for reason in (OUTSIDE_REBOOT_WINDOW, CLUSTER_BUDGET_EXHAUSTED):
            waits = [
                f"{host}: {plan.reboot.waiting[host]}"
                for host, why in sorted(plan.reboot.reasons.items())
                if why == reason
            ]
            if waits:
                return reason, f"{message}. Waiting: {_listing(waits)}"
    return ROLLING_REBOOT, message


def reboot_window_status(
    plan: PolicyPlan, reboot_policy: RebootPolicy
) -> RebootWindowStatus | None:
    """`status.reboot`: only while windows are set and a host waits for a rolling reboot."""
    window = plan.reboot.window
    if reboot_policy is not RebootPolicy.ROLLING or not window.bounded or not plan.reboot_required:
        return None
    return RebootWindowStatus(
        window_open=window.open,
        next_window=None if window.open else window.next_start,
        window_closes=window.closes,
    )


def _progress(plan: PolicyPlan) -> str | None:
    parts = []
    if plan.updates:
        parts.append(f"Updating passthrough on {_listing([u.host for u in plan.updates])}")
    if plan.reboot.in_progress:
        parts.append(f"Rolling reboot of {_listing(list(plan.reboot.in_progress))}")
    return ". ".join(parts) or None


def device_status(row: DevicePlan) -> DeviceStatus:
    device, info = row.device, row.info
    address = row.id if _PCI_ADDRESS.match(row.id) else None
    message = row.message if address is not None else f"{row.id}: {row.message}".rstrip(": ")
    return DeviceStatus(
        address=address,
        vendor_id=format_pci_id(device.vendor_id) if device else None,
        device_id=format_pci_id(device.device_id) if device else None,
        name=(device.device_name or None) if device else None,
        capable=info.passthru_capable if info else False,
        enabled=info.passthru_enabled if info else False,
        active=info.passthru_active if info else False,
        hardware_label=(info.hardware_label or None) if info else None,
        mmio_size_gb=row.mmio.gb if row.mmio else None,
        mmio_size_source=row.mmio.source if row.mmio else None,
        state=row.state,
        dependent_devices=list(row.dependent_devices),
        attached_to=list(row.attached_to),
        message=message or None,
    )


def host_status(plan: HostPlan, policy: PolicyPlan) -> HostStatus:
    name = plan.host.name
    message = plan.message
    waiting = policy.reboot.waiting.get(name)
    if waiting is not None:
        message = f"Rolling reboot waits: {waiting}. {message}"
    elif name in policy.reboot.timed_out:
        message = f"Could not enter maintenance mode within drainTimeout; left running. {message}"
    elif name in policy.reboot.notes:
        message = f"Rolling reboot: {policy.reboot.notes[name]}. {message}"
    return HostStatus(
        name=name,
        passthrough_supported=plan.passthrough_supported,
        reboot_required=plan.reboot_required,
        devices=[device_status(row) for row in plan.devices],
        rolling_reboot=policy.reboot.records.get(name),
        message=message.strip() or None,
    )


def summary(plan: PolicyPlan) -> PolicySummary:
    rows = [row for host in plan.hosts for row in host.devices]
    return PolicySummary(
        hosts=len(plan.hosts),
        devices=sum(1 for row in rows if row.state is not DeviceState.NOT_FOUND),
        active=sum(1 for row in rows if row.state is DeviceState.ACTIVE),
        pending_reboot=len(plan.reboot_required),
    )


def policy_status(
    plan: PolicyPlan,
    *,
    reboot_policy: RebootPolicy,
    previous: HostPassthroughPolicyStatus | None,
    generation: int,
    now: datetime,
    insecure: bool = False,
) -> HostPassthroughPolicyStatus:
    """`insecure`: the vCenter Secret turns certificate verification off (InsecureConnection)."""
    before = previous or HostPassthroughPolicyStatus()
    wants = (*policy_wants(plan, reboot_policy), insecure_want(insecure))
    conditions = compute_conditions(before.conditions, wants, generation, now)
    if plan.stalled is not None:  # nothing was observed against this spec: keep what we knew
        hosts, counts, reboot = before.hosts, before.summary, before.reboot
    else:
        reboot = reboot_window_status(plan, reboot_policy)
        missing = [
            HostStatus(name=n, message="No such host in vCenter") for n in plan.missing_hosts
        ]
        hosts = sorted([host_status(p, plan) for p in plan.hosts] + missing, key=lambda h: h.name)
        counts = summary(plan)
    return HostPassthroughPolicyStatus(
        observed_generation=generation,
        conditions=list(conditions),
        hosts=hosts,
        summary=counts,
        reboot=reboot,
    )


def vcenter_unreachable_status(
    previous: HostPassthroughPolicyStatus | None, message: str, generation: int, now: datetime
) -> HostPassthroughPolicyStatus:
    """vCenter can't be reached: Ready=False (VCenterUnreachable), the rest as last observed."""
    problem = Problem(VCENTER_UNREACHABLE, message)
    progressing = kstatus_wants(stalled=None, progressing=f"Retrying: {message}", not_ready=problem)
    return _connection_status(previous, problem, progressing, generation, now)


def stalled_status(
    previous: HostPassthroughPolicyStatus | None, problem: Problem, generation: int, now: datetime
) -> HostPassthroughPolicyStatus:
    """The vCenter connection needs a human (a missing or wrong Secret, a refused login):
    Stalled=True with `problem`'s reason; hosts and RebootRequired as last observed."""
    wants = kstatus_wants(stalled=problem, progressing=None, not_ready=None)
    return _connection_status(previous, problem, wants, generation, now)


def _connection_status(
    previous: HostPassthroughPolicyStatus | None,
    problem: Problem,
    kstatus: Sequence[Want],
    generation: int,
    now: datetime,
) -> HostPassthroughPolicyStatus:
    # Nothing was observed: what we last knew of the hosts stays, marked Degraded for now.
    before = previous or HostPassthroughPolicyStatus()
    kept = [
        Want(c.type, c.status, c.reason, c.message)
        for c in before.conditions
        if c.type in (REBOOT_REQUIRED, SUSPENDED)
    ]
    wants = (*kstatus, *kept, Want.true(DEGRADED, problem.reason, problem.message))
    conditions = compute_conditions(before.conditions, wants, generation, now)
    return before.model_copy(
        update={"observed_generation": generation, "conditions": list(conditions)}
    )
