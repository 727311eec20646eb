"""The result of planning one VMDeviceAssignment, `VMPlan`: the calls to make (`VMCalls`) and
the outcome to report (`VMOutcome`); and what status says about the operator's own past
actions: which devices it added, which VM it pinned.

planner/vm/plan.py makes a `VMPlan`, planner/vm/deletion.py the one for a delete; the
reconciler makes the calls (reconcile/assignment/apply.py) and planner/vm/status.py turns the
plan into status.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from dpio.api.assignment import VMDeviceAssignmentStatus, VMotionStatus
from dpio.api.vm_settings import PreviousSettings
from dpio.planner.conditions import Problem
from dpio.planner.suspension import Held
from dpio.planner.vm.changes import ReconfigureCluster, ReconfigVM, UpgradeVM
from dpio.planner.vm.conflicts import FeatureConflict
from dpio.planner.vm.devices import DesiredDevice, DeviceDiff
from dpio.planner.vm.mmio import MmioNeed
from dpio.planner.vm.observed import ObservedVM
from dpio.planner.vm.power import PowerAction, PowerStep, PowerTracking
from dpio.planner.vm.rules import DeviceCheck


@dataclass(frozen=True, slots=True)
class VMCalls:
    """The vSphere calls to make, each None when not needed; the reconciler makes them in
    field order (reconcile/assignment/apply.py)."""

    cluster: ReconfigureCluster | None = None
    power_before: PowerAction | None = None
    upgrade: UpgradeVM | None = None  # UpgradeVM_Task, alone in its pass (vm.mmio)
    reconfigure: ReconfigVM | None = None
    power_after: PowerAction | None = None

    @property
    def empty(self) -> bool:
        """No vSphere call to make."""
        return (
            self.upgrade is None
            and self.reconfigure is None
            and self.cluster is None
            and self.power_before is None
            and self.power_after is None
        )


@dataclass(frozen=True, slots=True)
class VMOutcome:
    """What the plan found, for status, conditions and Events; and what status must record
    before the calls are made (`previous`, `tracking`)."""

    vm: ObservedVM | None = None
    desired: tuple[DesiredDevice, ...] = ()
    diff: DeviceDiff = field(default_factory=DeviceDiff)
    power_message: str = ""  # why the power calls are made, or why the VM must be off
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
    vcenter: str = ""  # the observed vCenter's instance UUID, pinned in status.vm
    added: frozenset[str] = frozenset()  # spec device names the operator added (or adds now)
    mmio: MmioNeed | None = None  # what the VM's devices map together, once known
    held: Held | None = None  # suspended: the calls held back (planner/vm/suspend.py)


@dataclass(frozen=True, slots=True)
class VMPlan:
    """The plan for one assignment: the calls to make and the outcome to report."""

    calls: VMCalls = field(default_factory=VMCalls)
    outcome: VMOutcome = field(default_factory=VMOutcome)

    @property
    def empty(self) -> bool:
        """No vSphere call to make."""
        return self.calls.empty


def waiting_for_power_off(outcome: VMOutcome, step: PowerStep) -> VMPlan:
    """`outcome` held back until the VM is off: only `step`'s power action (if any) goes out."""
    held = replace(
        outcome,
        change_pending=True,
        tracking=step.tracking,
        power_message=step.message,
        requeue_after=step.requeue_after,
    )
    return VMPlan(VMCalls(power_before=step.action), held)


def managed_keys(previous: VMDeviceAssignmentStatus | None) -> frozenset[int]:
    """Keys of the devices the operator added itself: the only ones it may remove."""
    if previous is None:
        return frozenset()
    return frozenset(
        d.key for d in previous.devices if d.attached and d.added and d.key is not None
    )


def added_names(previous: VMDeviceAssignmentStatus | None) -> frozenset[str]:
    """Spec device names recorded as added by the operator."""
    return frozenset(d.name for d in previous.devices if d.added) if previous else frozenset()


def pinned(previous: VMDeviceAssignmentStatus | None) -> tuple[str, str]:
    """(instance UUID, vCenter) the assignment's VM was pinned to; ("", "") before that."""
    vm = previous.vm if previous is not None else None
    return (vm.instance_uuid or "", vm.vcenter or "") if vm is not None else ("", "")
