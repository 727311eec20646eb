"""The plan for one VMDeviceAssignment: the rules of DESIGN.md §3.2 -> vSphere calls and outcomes.

`plan_assignment` is the entry point. The reconciler applies a `VMPlan` in this order:
1. write status if `previous` or `tracking` changed (recorded BEFORE any change);
2. `cluster` (ReconfigureComputeResource_Task), 3. `power_before`, 4. `reconfigure`
(ReconfigVM_Task), 5. `power_after`. `plan.empty` means no vSphere call at all.
A device change never goes out half: while any device is unavailable, a rule is broken or a
feature conflict blocks, the VM is left as it is (one power cycle per change, not one per device).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dpio.api.assignment import (
    ConflictPolicy,
    PreviousSettings,
    VMDeviceAssignmentSpec,
    VMDeviceAssignmentStatus,
    VMotionStatus,
)
from dpio.api.conditions import INVALID_SPEC, TOO_MANY_DEVICES, VM_NOT_FOUND
from dpio.planner.conditions import Problem
from dpio.planner.selection import InvalidSpecError
from dpio.planner.vm_changes import (
    NicEdit,
    ReconfigureCluster,
    ReconfigVM,
    cluster_settings,
    merge_previous,
    vm_settings,
)
from dpio.planner.vm_claims import dynamic_claimed, holdings
from dpio.planner.vm_conflicts import (
    FeatureConflict,
    blocking,
    drs_fully_automated,
    find_conflicts,
    ha_restarts,
    resolve_das,
    resolve_drs,
)
from dpio.planner.vm_devices import DesiredDevice, DeviceDiff, desired_devices, diff_devices
from dpio.planner.vm_gen2 import adapter_problem, kinds, upt_changes, vmotion_status
from dpio.planner.vm_observed import Backing, ObservedVM, VMObservation
from dpio.planner.vm_power import (
    PowerAction,
    PowerStep,
    PowerTracking,
    after_change,
    before_change,
)
from dpio.planner.vm_rules import DeviceCheck, check_device, forbidden, passthrough_limit


@dataclass(frozen=True, slots=True)
class VMPlan:
    """Calls to make and outcomes to report for one assignment."""

    vm: ObservedVM | None = None
    desired: tuple[DesiredDevice, ...] = ()
    diff: DeviceDiff = field(default_factory=DeviceDiff)
    reconfigure: ReconfigVM | None = None
    cluster: ReconfigureCluster | None = None
    power_before: PowerAction | None = None
    power_after: PowerAction | None = None
    power_message: str = ""
    change_pending: bool = False  # a change waits for power-off (PowerOffRequired)
    tracking: PowerTracking = field(default_factory=PowerTracking)
    previous: PreviousSettings | None = None
    forbidden: Problem | None = None
    stalled: Problem | None = None
    not_ready: Problem | None = None  # e.g. VMNotFound
    unavailable: tuple[DeviceCheck, ...] = ()
    conflicts: tuple[FeatureConflict, ...] = ()
    blocked_by: tuple[FeatureConflict, ...] = ()
    vmotion: VMotionStatus | None = None
    requeue_after: timedelta | None = None
    release: bool = False  # deletion only: the finalizer can go

    @property
    def empty(self) -> bool:
        """No vSphere call to make."""
        return (
            self.reconfigure is None
            and self.cluster is None
            and self.power_before is None
            and self.power_after is None
        )


def waiting_for_power_off(plan: VMPlan, step: PowerStep) -> VMPlan:
    """`plan` held back until the VM is off: only `step`'s power action (if any) goes out."""
    return replace(
        plan,
        power_before=step.action,
        change_pending=True,
        tracking=step.tracking,
        power_message=step.message,
        requeue_after=step.requeue_after,
    )


def managed_keys(previous: VMDeviceAssignmentStatus | None) -> frozenset[int]:
    if previous is None:
        return frozenset()
    return frozenset(d.key for d in previous.devices if d.attached and d.key is not None)


def plan_assignment(
    *,
    namespace: str,
    name: str,
    creation_timestamp: datetime,
    spec: VMDeviceAssignmentSpec,
    observed: VMObservation,
    now: datetime,
    previous: VMDeviceAssignmentStatus | None = None,
    tracking: PowerTracking | None = None,
) -> VMPlan:
    tracking = tracking or PowerTracking()
    kept = previous.previous if previous is not None else None
    try:
        desired = desired_devices(spec.devices)
    except InvalidSpecError as err:
        return VMPlan(tracking=tracking, previous=kept, stalled=Problem(INVALID_SPEC, str(err)))
    refused = forbidden(observed, spec.policy_ref.name, namespace)
    if refused is not None:
        return VMPlan(
            vm=observed.vm, desired=desired, tracking=tracking, previous=kept, forbidden=refused
        )
    vm = observed.vm
    if vm is None:
        what = spec.vm.name or spec.vm.instance_uuid
        problem = Problem(VM_NOT_FOUND, f"VM {what} not found in vCenter")
        return VMPlan(desired=desired, tracking=tracking, previous=kept, not_ready=problem)
    base = VMPlan(vm=vm, desired=desired, tracking=tracking, previous=kept)
    return _plan_vm(
        base,
        spec=spec,
        observed=observed,
        vm=vm,
        me=(creation_timestamp, namespace, name),
        now=now,
        previous=previous,
    )


def _plan_vm(
    base: VMPlan,
    *,
    spec: VMDeviceAssignmentSpec,
    observed: VMObservation,
    vm: ObservedVM,
    me: tuple[datetime, str, str],
    now: datetime,
    previous: VMDeviceAssignmentStatus | None,
) -> VMPlan:
    desired = base.desired
    vmotion = vmotion_status(
        observed, vm, spec.network_direct_path, kinds(vm, [d.kind for d in desired])
    )
    conflicts = find_conflicts(vm) if desired else ()
    held = blocking(conflicts, spec.conflict_policy)
    own = holdings(observed, vm, desired, me)
    diff = diff_devices(desired, own.current, {}, managed_keys(previous))
    matched = diff.matched or {}
    checks = tuple(
        c
        for d in desired
        if d.name not in matched
        if (c := _check(d, desired, observed, vm, me)) is not None
    )
    # Every device the VM would have: other assignments', hand-added ones and ours that can come.
    ours = sum(1 for d in desired if not any(c.name == d.name and c.claimed for c in checks))
    stalled = _too_many(observed, vm, len(own.held) + len(diff.unmanaged) + ours)
    stalled = stalled or next((c.problem for c in checks if c.stalled), None)
    stalled = stalled or adapter_problem(vm, spec.network_direct_path)
    outcome = VMPlan(
        vm=vm,
        desired=desired,
        diff=diff,
        tracking=base.tracking,
        previous=base.previous,
        stalled=stalled,
        unavailable=checks,
        conflicts=conflicts,
        blocked_by=held,
        vmotion=vmotion,
    )
    if stalled is not None or held or checks:
        return outcome
    backings: dict[str, Backing] = {}
    for want in desired:
        if want.name not in matched:
            target = observed.config_target.pci(want.address) if want.address else None
            backings[want.name] = target.backing() if target else want.dynamic_backing()
    diff = diff_devices(desired, own.current, backings, managed_keys(previous))
    return _changes(outcome, spec, vm, diff, now)


def _check(
    want: DesiredDevice,
    desired: tuple[DesiredDevice, ...],
    observed: VMObservation,
    vm: ObservedVM,
    me: tuple[datetime, str, str],
) -> DeviceCheck | None:
    found = check_device(want, observed, vm, me)
    if found is not None:
        return found
    problem = dynamic_claimed(want, desired, observed, vm, me)
    return DeviceCheck(want.name, problem) if problem is not None else None


def _too_many(observed: VMObservation, vm: ObservedVM, count: int) -> Problem | None:
    """DESIGN.md §3.2.6: over the per-VM maximum is a spec problem, reported before the rest."""
    limit = passthrough_limit(observed.max_passthrough_devices, vm.host_version)
    if count <= limit:
        return None
    message = f"VM {vm.name} would have {count} passthrough devices; its host allows {limit}"
    return Problem(TOO_MANY_DEVICES, message)


def _reconfig(spec: VMDeviceAssignmentSpec, vm: ObservedVM, diff: DeviceDiff) -> ReconfigVM | None:
    has_passthrough = bool(spec.devices)
    off = spec.conflict_policy is ConflictPolicy.RESOLVE and has_passthrough
    nics = tuple(
        NicEdit(key, next(n.label for n in vm.nics if n.key == key))
        for key in upt_changes(vm, spec.network_direct_path)
    )
    wants_lock = has_passthrough or bool(spec.network_direct_path)
    lock = wants_lock and not vm.memory_reservation_locked_to_max
    change = ReconfigVM(
        moref=vm.moref,
        change_version=vm.change_version,
        removes=diff.removes,
        adds=diff.adds,
        nic_edits=nics,
        memory_reservation_locked_to_max=True if lock else None,
        cpu_hot_add_enabled=False if off and vm.cpu_hot_add_enabled else None,
        memory_hot_add_enabled=False if off and vm.memory_hot_add_enabled else None,
        nested_hv_enabled=False if off and vm.nested_hv_enabled else None,
    )
    return None if change.empty else change


def _cluster(spec: VMDeviceAssignmentSpec, vm: ObservedVM) -> ReconfigureCluster | None:
    cluster = vm.cluster
    if cluster is None or spec.conflict_policy is not ConflictPolicy.RESOLVE or not spec.devices:
        return None
    drs = resolve_drs(cluster) if drs_fully_automated(cluster) else None
    das = resolve_das(cluster) if ha_restarts(cluster) else None
    if drs is None and das is None:
        return None
    return ReconfigureCluster(cluster.moref, vm.moref, drs, das)


def _changes(
    outcome: VMPlan,
    spec: VMDeviceAssignmentSpec,
    vm: ObservedVM,
    diff: DeviceDiff,
    now: datetime,
) -> VMPlan:
    change = _reconfig(spec, vm, diff)
    cluster = _cluster(spec, vm)
    found = []
    if change is not None:
        found.append(vm_settings(vm, change))
    if cluster is not None and vm.cluster is not None:
        found.append(cluster_settings(vm.cluster, cluster))
    outcome = replace(
        outcome, diff=diff, cluster=cluster, previous=merge_previous(outcome.previous, *found)
    )
    if change is not None and change.needs_power_off:
        step = before_change(vm, spec.power_policy, outcome.tracking, now)
        if step.waiting:
            return waiting_for_power_off(outcome, step)
    after = after_change(vm, spec.restore_power_state, outcome.tracking)
    return replace(
        outcome,
        reconfigure=change,
        power_after=after.action,
        # With a change under way the tracking stays until the VM is seen running again.
        tracking=after.tracking if change is None else outcome.tracking,
        power_message=after.message,
    )
