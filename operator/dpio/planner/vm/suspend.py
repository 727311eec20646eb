"""A suspended VMDeviceAssignment (spec.suspend, or the operator's dry-run): the plan with its
calls held back and described (planner/suspension.py holds the rule).

What status records about the operator's own actions stays as it was, since none is made:
`previous`, the power tracking (a power cycle under way stops before its next call) and which
devices it added. The devices and the VM are reported as observed.
"""

from __future__ import annotations

from dataclasses import replace

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.planner.suspension import Suspension, held_calls
from dpio.planner.vm.power import PowerAction, tracking_in
from dpio.planner.vm.result import VMCalls, VMPlan, added_names

_POWER = {
    PowerAction.SHUTDOWN_GUEST: "shut the guest down",
    PowerAction.POWER_OFF: "power the VM off",
    PowerAction.POWER_ON: "power the VM on",
}


def describe_calls(calls: VMCalls) -> list[str]:
    """The calls in the order they would be made, for the `Suspended` condition."""
    parts = []
    if calls.cluster is not None:
        parts.append("set the VM's DRS/HA overrides")
    if calls.power_before is not None:
        parts.append(_POWER[calls.power_before])
    if calls.upgrade is not None:
        parts.append(f"upgrade the VM's hardware version to {calls.upgrade.version}")
    if calls.reconfigure is not None:
        r = calls.reconfigure
        parts.append(
            f"reconfigure the VM ({len(r.adds)} device(s) to add, {len(r.removes)} to remove)"
        )
    if calls.power_after is not None:
        parts.append(_POWER[calls.power_after])
    return parts


def held_plan(
    plan: VMPlan, suspension: Suspension | None, previous: VMDeviceAssignmentStatus
) -> VMPlan:
    """`plan` unchanged without a suspension; with one, no call and the calls described."""
    if suspension is None:
        return plan
    outcome = replace(
        plan.outcome,
        tracking=tracking_in(previous),
        previous=previous.previous,
        added=added_names(previous),
        held=held_calls(suspension, describe_calls(plan.calls)),
    )
    return VMPlan(VMCalls(), outcome)
