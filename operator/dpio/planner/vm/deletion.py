"""What happens to the VM when a VMDeviceAssignment is deleted (docs/design.md,
"VM side: deletion").

Only the pinned VM, and only while the namespace may still act on it. Remove the devices this
assignment added itself (`status.devices[].added`; one it found attached stays), put back what
`status.previous` recorded (reservation lock, hot add, nested HV, 64-bit MMIO) and the cluster
overrides it set, except what the devices left on the VM still need to power on; the power
policy applies as for any device change. A VM that no longer exists in vCenter has nothing to
clean: the finalizer can go at once.
`uptCompatibilityEnabled` is left on: PreviousSettings has no field for it and it is harmless
without a Gen2 port group.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dpio.api.assignment import VMDeviceAssignmentSpec, VMDeviceAssignmentStatus
from dpio.api.common import parse_duration
from dpio.api.conditions import VM_NOT_FOUND
from dpio.planner.conditions import Problem
from dpio.planner.selection import InvalidSpecError
from dpio.planner.vm.changes import ReconfigVM, restore_cluster, restore_mmio, restore_vm
from dpio.planner.vm.claims import holdings
from dpio.planner.vm.devices import DeviceDiff, desired_devices, removal
from dpio.planner.vm.mmio import need
from dpio.planner.vm.observed import VMObservation
from dpio.planner.vm.plan import (
    VMCalls,
    VMOutcome,
    VMPlan,
    added_names,
    managed_keys,
    pinned,
    waiting_for_power_off,
)
from dpio.planner.vm.power import PowerTracking, after_change, before_change
from dpio.planner.vm.tenancy import authorize, consumer_problem, pin_problem


def plan_assignment_deletion(
    *,
    namespace: str,
    spec: VMDeviceAssignmentSpec,
    observed: VMObservation,
    now: datetime,
    previous: VMDeviceAssignmentStatus | None = None,
    tracking: PowerTracking | None = None,
) -> VMPlan:
    """The cleanup plan; `release` True when the finalizer can be removed.

    Only the pinned VM is touched, and only while the namespace may still act on it (scope,
    power policy): otherwise the finalizer goes with nothing changed, and `not_ready` says why
    (for an Event). Only devices the operator added itself are removed. A device another
    assignment naming the same VM also asks for (`observed.claims`) is left for it, older or
    newer: removing it would only make that one add it back."""
    tracking = tracking or PowerTracking()
    vm = observed.vm
    if vm is None:
        gone = Problem(VM_NOT_FOUND, "The VM no longer exists in vCenter; nothing to clean up")
        return VMPlan(outcome=VMOutcome(tracking=PowerTracking(), release=True, not_ready=gone))
    refused = consumer_problem(observed, spec.policy_ref.name, namespace)
    grant = refused or authorize(observed, spec, namespace, vm)
    if isinstance(grant, Problem):
        return VMPlan(outcome=VMOutcome(release=True, not_ready=grant))
    swapped = pin_problem(pinned(previous), observed, vm)
    if swapped is not None:
        return VMPlan(outcome=VMOutcome(release=True, not_ready=swapped))
    kept = previous.previous if previous is not None else None
    try:
        desired = desired_devices(spec.devices)
    except InvalidSpecError:
        desired = ()  # only recorded keys can be ours then
    ours = added_names(previous)
    mine = tuple(d for d in desired if d.name in ours)  # never a device found attached
    current = holdings(observed, vm, desired, None).current
    removes = removal(mine, current, managed_keys(previous))
    restored = restore_vm(vm, kept)
    taken = {r.key for r in removes}
    left = [d.backing for d in vm.pci_devices if d.key not in taken]
    if left:
        # Devices stay (other assignments', hand-added): the VM still needs its memory
        # reserved to power on (vm.changes), so the lock is not undone.
        restored.pop("memory_reservation_locked_to_max", None)
    # The 64-bit MMIO settings go back only if the devices left fit without them (vm.mmio).
    mmio = () if need(left, observed).needs_64bit else restore_mmio(vm, kept)
    change = ReconfigVM(
        moref=vm.moref,
        change_version=vm.change_version,
        removes=removes,
        memory_reservation_locked_to_max=restored.get("memory_reservation_locked_to_max"),
        cpu_hot_add_enabled=restored.get("cpu_hot_add_enabled"),
        memory_hot_add_enabled=restored.get("memory_hot_add_enabled"),
        nested_hv_enabled=restored.get("nested_hv_enabled"),
        extra_config=mmio,
    )
    cluster = restore_cluster(vm, kept)
    outcome = VMOutcome(
        vm=vm,
        desired=desired,
        diff=DeviceDiff(removes=removes),
        tracking=tracking,
        previous=kept,
        added=ours,
    )
    if change.empty:
        after = after_change(vm, spec.restore_power_state, tracking)
        release = cluster is None and after.action is None
        return VMPlan(
            VMCalls(cluster=cluster, power_after=after.action),
            replace(outcome, tracking=after.tracking, release=release),
        )
    if change.needs_power_off:
        step = before_change(
            vm,
            spec.power_policy,
            tracking,
            now,
            shutdown_timeout=parse_duration(spec.shutdown_timeout),
            power_off_allowed=grant.power_off_allowed,
        )
        if step.waiting:
            return waiting_for_power_off(outcome, step)
    after = after_change(vm, spec.restore_power_state, tracking)
    return VMPlan(VMCalls(cluster=cluster, reconfigure=change, power_after=after.action), outcome)
