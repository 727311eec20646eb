"""VMDeviceAssignment status from a `VMPlan`: the VM, each device, conflicts, vMotion, conditions.

Conditions are computed whole by `compute_conditions` (kstatus, docs/design.md#status-contract):
every VMDeviceAssignment condition is always present, False with reason AsExpected when nothing
is wrong, so `kubectl wait --for=condition=X=false` works as well as `=true`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dpio.api.assignment import (
    DeviceAssignmentStatus,
    DeviceKind,
    PowerState,
    VMDeviceAssignment,
    VMDeviceAssignmentStatus,
    VMStatus,
)
from dpio.api.conditions import (
    ALLOWED,
    AS_EXPECTED,
    DEVICES_UNAVAILABLE,
    FEATURE_CONFLICT,
    FORBIDDEN,
    NO_NETWORK_DIRECT_PATH,
    POWER_OFF_REQUIRED,
    VM_POWERED_ON,
    VMOTION_COMPATIBLE,
    ConditionStatus,
)
from dpio.planner.attention import needs_a_human
from dpio.planner.conditions import Problem, Want, compute_conditions, kstatus_wants
from dpio.planner.suspension import suspended_want
from dpio.planner.vm.conflicts import UNAVAILABLE_FEATURES
from dpio.planner.vm.devices import DesiredDevice
from dpio.planner.vm.observed import DynamicBacking, ObservedVM, StaticBacking
from dpio.planner.vm.plan import VMPlan
from dpio.planner.vm.power import power_status

_MAX_LISTED = 5


def _listing(items: Sequence[str]) -> str:
    rest = len(items) - _MAX_LISTED
    shown = "; ".join(items[:_MAX_LISTED])
    return f"{shown}; and {rest} more" if rest > 0 else shown


def _problem(plan: VMPlan) -> Problem | None:
    """Why the spec is not in effect (stalled is handled separately): held back while suspended
    first, then one that needs a human (it makes the object Stalled, planner.attention), else the
    first of the others."""
    if plan.outcome.held is not None and plan.outcome.held.problem is not None:
        return plan.outcome.held.problem  # suspended with calls pending
    found = []
    if plan.outcome.not_ready is not None:
        found.append(plan.outcome.not_ready)
    if plan.outcome.unavailable:
        problems = [c.problem for c in plan.outcome.unavailable]
        first = next((p for p in problems if needs_a_human(p.reason)), problems[0])
        others = [p.message for p in problems if p is not first]
        found.append(Problem(first.reason, _listing([first.message, *others])))
    if plan.outcome.blocked_by:
        found.append(
            Problem(
                plan.outcome.blocked_by[0].feature,
                _listing([c.message for c in plan.outcome.blocked_by]),
            )
        )
    if plan.outcome.change_pending:
        found.append(Problem(VM_POWERED_ON, plan.outcome.power_message))
    return next((p for p in found if needs_a_human(p.reason)), found[0] if found else None)


def _progress(plan: VMPlan) -> str | None:
    parts = []
    if plan.calls.cluster is not None:
        parts.append("Setting the VM's DRS/HA overrides")
    if plan.calls.power_before is not None or plan.calls.power_after is not None:
        parts.append(plan.outcome.power_message)
    if plan.calls.upgrade is not None:
        parts.append(f"Upgrading the VM's hardware version to {plan.calls.upgrade.version}")
    if plan.calls.reconfigure is not None:
        r = plan.calls.reconfigure
        parts.append(
            f"Reconfiguring the VM: {len(r.adds)} device(s) to add, {len(r.removes)} to remove"
        )
    return ". ".join(p for p in parts if p) or None


def assignment_wants(plan: VMPlan) -> tuple[Want, ...]:
    stalled = plan.outcome.forbidden or plan.outcome.stalled
    kstatus = kstatus_wants(stalled=stalled, progressing=_progress(plan), not_ready=_problem(plan))
    wants = [*kstatus]
    if plan.outcome.forbidden is not None:
        wants.append(
            Want.true(FORBIDDEN, plan.outcome.forbidden.reason, plan.outcome.forbidden.message)
        )
    else:
        wants.append(Want.false(FORBIDDEN, ALLOWED, "The namespace may use the policy"))
    if plan.outcome.unavailable:
        first = plan.outcome.unavailable[0].problem
        messages = [c.problem.message for c in plan.outcome.unavailable]
        wants.append(Want.true(DEVICES_UNAVAILABLE, first.reason, _listing(messages)))
    else:
        wants.append(Want.false(DEVICES_UNAVAILABLE, AS_EXPECTED))
    if plan.outcome.conflicts:
        first_c = plan.outcome.conflicts[0]
        messages = [c.message for c in plan.outcome.conflicts]
        wants.append(Want.true(FEATURE_CONFLICT, first_c.feature, _listing(messages)))
    else:
        wants.append(Want.false(FEATURE_CONFLICT, AS_EXPECTED))
    if plan.outcome.change_pending and plan.outcome.vm is not None and plan.outcome.vm.powered_on:
        wants.append(Want.true(POWER_OFF_REQUIRED, VM_POWERED_ON, plan.outcome.power_message))
    else:
        wants.append(Want.false(POWER_OFF_REQUIRED, AS_EXPECTED))
    wants.append(suspended_want(plan.outcome.held))
    vmotion = plan.outcome.vmotion
    if vmotion is not None:
        status = ConditionStatus.TRUE if vmotion.compatible else ConditionStatus.FALSE
        reason = vmotion.reason or NO_NETWORK_DIRECT_PATH
        wants.append(Want(VMOTION_COMPATIBLE, status, reason, vmotion.message or ""))
    return tuple(wants)


def _vm_status(plan: VMPlan, vm: ObservedVM, before: VMStatus | None) -> VMStatus:
    """The VM as observed, pinned: the first instance UUID and vCenter seen are kept."""
    states = {s.value: s for s in PowerState}
    pin = before if before is not None and before.instance_uuid else None
    return VMStatus(
        moref=vm.moref,
        instance_uuid=pin.instance_uuid if pin else vm.instance_uuid or None,
        vcenter=(pin.vcenter if pin else None) or plan.outcome.vcenter or None,
        host=vm.host,
        power_state=states.get(vm.power_state),
        hardware_version=vm.hardware_version or None,
        firmware=vm.firmware or None,
        mmio_size_gb=plan.outcome.mmio.total_gb if plan.outcome.mmio is not None else None,
    )


def _device_row(plan: VMPlan, want: DesiredDevice) -> DeviceAssignmentStatus:
    vm = plan.outcome.vm
    found = (plan.outcome.diff.matched or {}).get(want.name)
    problem = next(
        (c.problem.message for c in plan.outcome.unavailable if c.name == want.name), None
    )
    address = want.address
    if found is not None and isinstance(found.backing, DynamicBacking):
        address = found.assigned_id
    elif found is not None and isinstance(found.backing, StaticBacking):
        address = found.backing.id
    if found is None and problem is None and plan.outcome.change_pending:
        problem = "Waiting for the VM to be powered off"
    return DeviceAssignmentStatus(
        name=want.name,
        kind=want.kind,
        address=address,
        host=vm.host if vm is not None and want.kind is DeviceKind.PCI else None,
        attached=found is not None,
        key=found.key if found is not None else None,
        added=want.name in plan.outcome.added,
        message=problem,
    )


def assignment_status(
    plan: VMPlan,
    *,
    previous: VMDeviceAssignmentStatus | None,
    generation: int,
    now: datetime,
    adapters: Sequence[str] = (),
) -> VMDeviceAssignmentStatus:
    """The status to write. `adapters`: the spec's networkDirectPath adapters, for `attached`."""
    before = previous or VMDeviceAssignmentStatus()
    conditions = compute_conditions(before.conditions, assignment_wants(plan), generation, now)
    vm = plan.outcome.vm
    if vm is None:  # nothing observed: keep what we knew about devices, say why in conditions
        return before.model_copy(
            update={"observed_generation": generation, "conditions": list(conditions)}
        )
    devices = [_device_row(plan, d) for d in plan.outcome.desired]
    gen2_on = sum(
        1 for a in adapters if (n := vm.nic(a)) is not None and n.upt_compatibility_enabled
    )
    attached = sum(1 for d in devices if d.attached) + gen2_on
    return VMDeviceAssignmentStatus(
        observed_generation=generation,
        conditions=list(conditions),
        vm=_vm_status(plan, vm, before.vm),
        attached=f"{attached}/{len(devices) + len(adapters)}",
        devices=devices,
        unavailable_features=list(UNAVAILABLE_FEATURES) if vm.pci_devices else [],
        feature_conflicts=[c.status() for c in plan.outcome.conflicts],
        vmotion=plan.outcome.vmotion,
        previous=plan.outcome.previous,
    )


def intended_status(
    plan: VMPlan, assignment: VMDeviceAssignment, now: datetime
) -> VMDeviceAssignmentStatus:
    """The status a reconcile writes before its calls: the plan's outcome, the calls under way
    (Reconciling) and the power tracking they rely on."""
    status = assignment_status(
        plan,
        previous=assignment.status,
        generation=assignment.metadata.generation or 0,
        now=now,
        adapters=[n.adapter for n in assignment.spec.network_direct_path],
    )
    return status.model_copy(update={"power": power_status(plan.outcome.tracking)})


def cleanup_status(
    plan: VMPlan, assignment: VMDeviceAssignment, now: datetime
) -> VMDeviceAssignmentStatus:
    """The status a deletion writes before its calls: only conditions and power tracking
    change; devices and `previous` stay as they were until the object is gone."""
    status = assignment.status
    generation = assignment.metadata.generation or 0
    conditions = compute_conditions(status.conditions, assignment_wants(plan), generation, now)
    return status.model_copy(
        update={
            "conditions": list(conditions),
            "power": power_status(plan.outcome.tracking),
        }
    )
