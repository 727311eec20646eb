"""The plan for one VMDeviceAssignment: the VM-side rules of docs/design.md -> calls, outcomes.

`plan_assignment` is the entry point. The reconciler applies a `VMPlan` in this order:
1. write status if `outcome.previous` or `outcome.tracking` changed (recorded BEFORE any
change); then `calls`: 2. `cluster` (ReconfigureComputeResource_Task), 3. `power_before`,
4. `upgrade` (UpgradeVM_Task, alone in its pass), 5. `reconfigure` (ReconfigVM_Task),
6. `power_after`. `plan.empty` means no vSphere call at all.
A device change never goes out half: while any device is unavailable, a rule is broken or a
feature conflict blocks, the VM is left as it is (one power cycle per change, not one per device).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dpio.api.assignment import (
    ConflictPolicy,
    DeviceKind,
    VMDeviceAssignment,
    VMDeviceAssignmentSpec,
    VMDeviceAssignmentStatus,
)
from dpio.api.common import parse_duration
from dpio.api.conditions import INVALID_SPEC, TOO_MANY_DEVICES
from dpio.api.vm_settings import PreviousSettings
from dpio.planner.conditions import Problem
from dpio.planner.selection import InvalidSpecError
from dpio.planner.vm.changes import (
    NicEdit,
    ReconfigureCluster,
    ReconfigVM,
    UpgradeVM,
    cluster_settings,
    merge_previous,
    vm_settings,
)
from dpio.planner.vm.claims import dynamic_claimed, holdings
from dpio.planner.vm.conflicts import (
    blocking,
    drs_fully_automated,
    find_conflicts,
    ha_restarts,
    resolve_das,
    resolve_drs,
)
from dpio.planner.vm.devices import DesiredDevice, DeviceDiff, desired_devices, diff_devices
from dpio.planner.vm.gen2 import adapter_problem, kinds, upt_changes, vmotion_status
from dpio.planner.vm.mmio import (
    DYNAMIC_UPGRADE_TARGET,
    needs_upgrade,
    planned_need,
    power_on_problem,
    settings_change,
)
from dpio.planner.vm.observed import Age, Backing, ObservedVM, VMObservation
from dpio.planner.vm.power import (
    PowerTracking,
    after_change,
    before_change,
    tracking_in,
)
from dpio.planner.vm.result import (
    VMCalls,
    VMOutcome,
    VMPlan,
    added_names,
    managed_keys,
    pinned,
    waiting_for_power_off,
)
from dpio.planner.vm.rules import DeviceCheck, check_device, passthrough_limit
from dpio.planner.vm.tenancy import (
    Grant,
    authorize,
    consumer_problem,
    out_of_scope,
    pin_problem,
    quota_exceeded,
)

# VMPlan and the status helpers live in result.py; re-exported for importers of this module.
__all__ = [
    "VMCalls",
    "VMOutcome",
    "VMPlan",
    "added_names",
    "managed_keys",
    "pinned",
    "plan_assignment",
    "plan_for",
    "plan_unobserved",
    "waiting_for_power_off",
]

# After UpgradeVM_Task, look again soon: the device change waits for that pass.
UPGRADE_REQUEUE = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def plan_for(
    assignment: VMDeviceAssignment, namespace: str, observed: VMObservation, now: datetime
) -> VMPlan:
    """`plan_assignment` with the assignment's identity, spec and what its status keeps."""
    meta = assignment.metadata
    return plan_assignment(
        namespace=namespace,
        name=meta.name,
        creation_timestamp=meta.creation_timestamp or _EPOCH,
        spec=assignment.spec,
        observed=observed,
        now=now,
        previous=assignment.status,
        tracking=tracking_in(assignment.status),
    )


def plan_unobserved(status: VMDeviceAssignmentStatus, problem: Problem, *, stalled: bool) -> VMPlan:
    """No call, nothing new of the VM: `problem` says why vCenter could not be asked (an
    outage, or `stalled`: something a human must fix). Devices and power tracking stay as
    last recorded."""
    kept = VMOutcome(tracking=tracking_in(status), previous=status.previous)
    return VMPlan(
        outcome=replace(kept, stalled=problem) if stalled else replace(kept, not_ready=problem)
    )


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
    base = VMOutcome(
        tracking=tracking, previous=kept, vcenter=observed.vcenter_uuid, added=added_names(previous)
    )
    try:
        desired = desired_devices(spec.devices)
    except InvalidSpecError as err:
        return VMPlan(outcome=replace(base, stalled=Problem(INVALID_SPEC, str(err))))
    base = replace(base, desired=desired)
    # Nothing of the VM goes into a refusal's plan: status must not describe a VM the namespace
    # may not use (vm None keeps what status last said of its own VM).
    refused = consumer_problem(observed, spec.policy_ref.name, namespace)
    if refused is not None:
        return VMPlan(outcome=replace(base, forbidden=refused))
    vm = observed.vm
    if vm is None:
        return VMPlan(outcome=replace(base, forbidden=out_of_scope(spec, namespace)))
    grant = authorize(observed, spec, namespace, vm)
    if isinstance(grant, Problem):
        return VMPlan(outcome=replace(base, forbidden=grant))
    swapped = pin_problem(pinned(previous), observed, vm)
    if swapped is not None:
        return VMPlan(outcome=replace(base, stalled=swapped))
    me = Age(creation_timestamp, namespace, name)
    over = quota_exceeded(grant, observed, me, len(desired), spec.policy_ref.name)
    return _plan_vm(
        replace(base, vm=vm),
        spec=spec,
        observed=observed,
        vm=vm,
        me=me,
        now=now,
        previous=previous,
        grant=grant,
        over_quota=over,
    )


def _plan_vm(
    base: VMOutcome,
    *,
    spec: VMDeviceAssignmentSpec,
    observed: VMObservation,
    vm: ObservedVM,
    me: Age,
    now: datetime,
    previous: VMDeviceAssignmentStatus | None,
    grant: Grant,
    over_quota: Problem | None,
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
        if (c := _check(d, desired, observed, vm, me, over_quota)) is not None
    )
    # Every device the VM would have: other assignments', hand-added ones and ours that can come.
    ours = sum(1 for d in desired if not any(c.name == d.name and c.claimed for c in checks))
    stalled = _too_many(observed, vm, len(own.held) + len(diff.unmanaged) + ours)
    stalled = stalled or next((c.problem for c in checks if c.stalled), None)
    stalled = stalled or adapter_problem(vm, spec.network_direct_path)
    # vm.mmio: checked on what the VM will have, even while a device is unavailable: a BIOS VM
    # waiting for a GPU would only fail to power on once it got it.
    new = [d for d in desired if d.name not in matched]
    removed = {r.key for r in diff.removes}
    kept = [d.backing for d in vm.pci_devices if d.key not in removed]
    mmio = planned_need(kept, new, observed)
    upgrade = spec.upgrade_hardware_version
    stalled = stalled or power_on_problem(vm, new, mmio, upgrade)
    outcome = replace(
        base,
        mmio=mmio,
        diff=diff,
        stalled=stalled,
        unavailable=checks,
        conflicts=conflicts,
        blocked_by=held,
        vmotion=vmotion,
    )
    if stalled is not None or held or checks:
        return VMPlan(outcome=outcome)
    backings: dict[str, Backing] = {}
    for want in desired:
        if want.name not in matched:
            target = observed.config_target.pci(want.address) if want.address else None
            backings[want.name] = target.backing() if target else want.dynamic_backing()
    diff = diff_devices(desired, own.current, backings, managed_keys(previous))
    # The 64-bit MMIO window goes with the devices, or into a VM that is off without it; a VM
    # running with all its devices already has what it needs (vm.mmio.power_on_problem).
    changing = bool(new) or not vm.powered_on
    extra = settings_change(vm, mmio) if changing else ()
    dynamic = any(w.kind is DeviceKind.DYNAMIC for w in new)
    return _changes(
        outcome, spec, vm, diff, now, grant, extra=extra, upgrade=dynamic and needs_upgrade(vm)
    )


def _check(  # noqa: PLR0917 -- one device's checks, all positional inputs of _plan_vm
    want: DesiredDevice,
    desired: tuple[DesiredDevice, ...],
    observed: VMObservation,
    vm: ObservedVM,
    me: Age,
    over_quota: Problem | None,
) -> DeviceCheck | None:
    if over_quota is not None:  # someone must raise maxDevices or free devices
        return DeviceCheck(want.name, over_quota, stalled=True)
    found = check_device(want, observed, vm, me)
    if found is not None:
        return found
    problem = dynamic_claimed(want, desired, observed, vm, me)
    return DeviceCheck(want.name, problem) if problem is not None else None


def _too_many(observed: VMObservation, vm: ObservedVM, count: int) -> Problem | None:
    """Over the per-VM maximum is a spec problem, reported before the rest (docs/design.md,
    "VM side: device limit")."""
    limit = passthrough_limit(observed.max_passthrough_devices, vm.host_version)
    if count <= limit:
        return None
    message = f"VM {vm.name} would have {count} passthrough devices; its host allows {limit}"
    return Problem(TOO_MANY_DEVICES, message)


def _reconfig(
    spec: VMDeviceAssignmentSpec,
    vm: ObservedVM,
    diff: DeviceDiff,
    extra: tuple[tuple[str, str], ...],
) -> ReconfigVM | None:
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
        extra_config=extra,
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


def _changes(  # noqa: PLR0917 -- the tail of _plan_vm, split off for length
    outcome: VMOutcome,
    spec: VMDeviceAssignmentSpec,
    vm: ObservedVM,
    diff: DeviceDiff,
    now: datetime,
    grant: Grant,
    *,
    extra: tuple[tuple[str, str], ...] = (),
    upgrade: bool = False,
) -> VMPlan:
    change = _reconfig(spec, vm, diff, extra)
    if change is not None and change.needs_power_off:
        step = before_change(
            vm,
            spec.power_policy,
            outcome.tracking,
            now,
            shutdown_timeout=parse_duration(spec.shutdown_timeout),
            power_off_allowed=grant.power_off_allowed,
        )
        if step.waiting:
            # Nothing else goes out while the VM waits for power-off, cluster overrides
            # included: Resolve edits HA/DRS only in the step that adds the devices.
            before = merge_previous(outcome.previous, vm_settings(vm, change))
            return waiting_for_power_off(replace(outcome, diff=diff, previous=before), step)
    if upgrade:
        return _upgrade(replace(outcome, diff=diff), vm)
    cluster = _cluster(spec, vm)
    found = []
    if change is not None:
        found.append(vm_settings(vm, change))
    if cluster is not None and vm.cluster is not None:
        found.append(cluster_settings(vm.cluster, cluster))
    after = after_change(vm, spec.restore_power_state, outcome.tracking)
    adds = frozenset(a.name for a in change.adds) if change is not None else frozenset()
    calls = VMCalls(cluster=cluster, reconfigure=change, power_after=after.action)
    return VMPlan(
        calls,
        replace(
            outcome,
            diff=diff,
            previous=merge_previous(outcome.previous, *found),
            # With a change under way the tracking stays until the VM is seen running again.
            tracking=after.tracking if change is None else outcome.tracking,
            power_message=after.message,
            added=outcome.added | adds,
        ),
    )


def _upgrade(outcome: VMOutcome, vm: ObservedVM) -> VMPlan:
    """The VM is off: upgrade its hardware version first, alone. UpgradeVM_Task moves
    changeVersion, so a ReconfigVM planned against the old one would fail; the devices go in on
    the next pass (soon: requeue), the VM still off and the power tracking kept."""
    recorded = PreviousSettings(hardware_version=vm.hardware_version or None)
    return VMPlan(
        VMCalls(upgrade=UpgradeVM(vm.moref, DYNAMIC_UPGRADE_TARGET, vm.hardware_version)),
        replace(
            outcome,
            previous=merge_previous(outcome.previous, recorded),
            requeue_after=UPGRADE_REQUEUE,
        ),
    )
