"""Power handling around a device change (docs/design.md, "VM side: power"): PCI devices are
added or removed only while the VM is powered off (vSphere Virtual Machine Administration,
"Add a PCI Device").

Nothing power-cycles silently: the plan says which power action to take, and the reconciler
records what the operator did (`PowerTracking`) in status BEFORE doing it, so a crash between
power-off and power-on does not lose the promise to power the VM back on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dpio.api.assignment import PowerPolicy, PowerStatus, VMDeviceAssignmentStatus
from dpio.planner.vm.observed import POWERED_OFF, SUSPENDED, ObservedVM

# How long a guest gets to shut down before a hard power-off (ShutdownGuest), unless the spec
# says otherwise (spec.shutdownTimeout, the same default).
GUEST_SHUTDOWN_TIMEOUT = timedelta(minutes=5)


class PowerAction(StrEnum):
    """One power call: `ShutdownGuest` (VMware Tools, returns at once), `PowerOffVM_Task`,
    `PowerOnVM_Task`."""

    SHUTDOWN_GUEST = "ShutdownGuest"
    POWER_OFF = "PowerOff"
    POWER_ON = "PowerOn"


@dataclass(frozen=True, slots=True)
class PowerTracking:
    """What the operator did to the VM's power state, kept in status between reconciles."""

    powered_off_by_operator: bool = False
    shutdown_requested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PowerStep:
    """The power part of a plan: the action (if any), whether the change must wait, and the
    tracking to record (before acting)."""

    action: PowerAction | None
    waiting: bool  # the change waits for the VM to be powered off
    tracking: PowerTracking
    message: str = ""
    requeue_after: timedelta | None = None  # when to look again without a vCenter event


def before_change(
    vm: ObservedVM,
    policy: PowerPolicy,
    tracking: PowerTracking,
    now: datetime,
    *,
    shutdown_timeout: timedelta = GUEST_SHUTDOWN_TIMEOUT,
    power_off_allowed: bool = True,
) -> PowerStep:
    """A change needs the VM powered off; how to get there from its current state.

    A guest that did not shut down within `shutdown_timeout` is powered off hard only where
    the tenant's consumer entry allows PowerOff (`power_off_allowed`); else the operator keeps
    waiting, and says so."""
    if vm.power_state == POWERED_OFF:
        return PowerStep(None, False, tracking)
    if policy is PowerPolicy.WAIT_FOR_POWER_OFF:
        return PowerStep(None, True, tracking, f"Waiting for VM {vm.name} to be powered off")
    off = PowerTracking(powered_off_by_operator=True)
    if policy is PowerPolicy.POWER_OFF:
        return PowerStep(PowerAction.POWER_OFF, True, off, f"Powering off VM {vm.name}")
    if vm.power_state == SUSPENDED:
        # A suspended guest can't shut down; a hard power-off would discard its memory state,
        # which ShutdownGuest promises not to do. Wait for a human to resume or power it off.
        return PowerStep(None, True, tracking, f"VM {vm.name} is suspended; resume or power off")
    asked = tracking.shutdown_requested_at
    if asked is None:
        step = PowerTracking(powered_off_by_operator=True, shutdown_requested_at=now)
        return PowerStep(
            PowerAction.SHUTDOWN_GUEST,
            True,
            step,
            f"Shutting down the guest of VM {vm.name}",
            requeue_after=shutdown_timeout,
        )
    if now - asked >= shutdown_timeout:
        late = f"Guest of VM {vm.name} did not shut down within {shutdown_timeout}"
        if not power_off_allowed:
            return PowerStep(
                None,
                True,
                tracking,
                f"{late}; waiting for it to be powered off (the policy's consumer entry does not "
                "allow PowerOff for this namespace)",
            )
        return PowerStep(PowerAction.POWER_OFF, True, tracking, f"{late}; powering off")
    return PowerStep(
        None,
        True,
        tracking,
        f"Waiting for the guest of VM {vm.name} to shut down",
        requeue_after=shutdown_timeout - (now - asked),
    )


def after_change(vm: ObservedVM, restore: bool, tracking: PowerTracking) -> PowerStep:
    """No change left: power the VM back on if the operator powered it off (restorePowerState),
    and forget the tracking once the VM runs again or a human started it."""
    if not tracking.powered_off_by_operator:
        return PowerStep(None, False, tracking)
    if vm.power_state == POWERED_OFF and restore:
        # Tracking stays until the VM is seen running: a crash before PowerOn repeats it.
        return PowerStep(PowerAction.POWER_ON, False, tracking, f"Powering VM {vm.name} back on")
    return PowerStep(None, False, PowerTracking())


def tracking_in(status: VMDeviceAssignmentStatus) -> PowerTracking:
    """The power tracking status keeps between reconciles (what the operator powered off)."""
    power = status.power
    if power is None:
        return PowerTracking()
    return PowerTracking(
        powered_off_by_operator=power.powered_off_by_operator,
        shutdown_requested_at=power.shutdown_requested_at,
    )


def power_status(tracking: PowerTracking) -> PowerStatus | None:
    if tracking == PowerTracking():
        return None  # nothing promised: keep status small
    return PowerStatus(
        powered_off_by_operator=tracking.powered_off_by_operator,
        shutdown_requested_at=tracking.shutdown_requested_at,
    )
