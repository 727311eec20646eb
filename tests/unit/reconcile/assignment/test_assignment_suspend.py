"""A suspended VMDeviceAssignment (spec.suspend, or the operator's --dry-run) against fakes of
its ports: it observes and reports, and makes no vCenter write, deletion included."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.planner.vm.builders import converged_vm, observe, vm
from tests.unit.reconcile.assignment.fakes import World, body, condition

#: VMsPort methods that change vCenter.
WRITES = {"reconfigure", "reconfigure_cluster", "upgrade", "power"}
OURS = {"name": "gpu0", "kind": "pci", "attached": True, "key": 13000, "added": True}
SPEC = {
    "policyRef": {"name": "gpu-hosts"},
    "vm": {"name": "ml-trainer-01"},
    "devices": [{"name": "gpu0", "pci": {"address": "0000:3b:00.0"}}],
}


def suspended(**more: Any) -> dict[str, Any]:
    return body(spec={**SPEC, "suspend": True}, **more)


@pytest.mark.parametrize(
    ("world", "obj", "reason"),
    [
        pytest.param(World.make(observe()), suspended(), "Suspended", id="spec-suspend"),
        pytest.param(World.make(observe(), dry_run=True), body(), "DryRun", id="dry-run"),
    ],
)
def test_a_suspended_assignment_observes_and_reports_but_writes_nothing(
    world: World, obj: dict[str, Any], reason: str
) -> None:
    result = world.run(obj)

    assert not WRITES & set(world.calls())
    assert world.calls() == ["vms_for", "observe_vm", "status"]
    (status,) = world.statuses()
    assert condition(status, "Suspended") == ("True", reason)
    assert condition(status, "Ready") == ("False", reason)
    assert condition(status, "Reconciling") == ("False", reason)
    message = next(c["message"] for c in status["conditions"] if c["type"] == "Suspended")
    assert "Would: reconfigure the VM (1 device(s) to add, 0 to remove)" in message
    assert "previous" not in status  # nothing is about to change
    assert result.requeue_after is None


def test_resumed_it_makes_the_calls_it_held_back() -> None:
    world = World.make(observe())
    world.run(suspended())
    held = world.statuses()[0]

    world.run(body(status=held))  # spec.suspend back to false

    assert "reconfigure" in world.calls()
    assert condition(world.statuses()[-1], "Suspended") == ("False", "AsExpected")


def test_a_suspended_deletion_keeps_the_finalizer_and_says_why() -> None:
    world = World.make(observe(converged_vm()))
    status = {"devices": [OURS], "previous": {"memoryReservationLockedToMax": False}}

    result = world.run(suspended(deleting=True, status=status))

    assert not WRITES & set(world.calls())
    assert "finalizers" not in world.calls()  # the object stays until the cleanup may run
    (written,) = world.statuses()
    assert condition(written, "Suspended") == ("True", "Suspended")
    assert written["observedGeneration"] == 1  # the spec that says suspend was seen
    message = next(c["message"] for c in written["conditions"] if c["type"] == "Suspended")
    assert "Deletion waits" in message
    assert "reconfigure the VM (0 device(s) to add, 1 to remove)" in message
    assert ("Warning", "CleanupSuspended") in world.events()
    assert result.requeue_after is None
    assert not result.failed

    # Looked at again while still suspended: nothing new is written or told.
    again = World.make(observe(converged_vm()))
    again.run(suspended(deleting=True, status={**status, **written}))
    assert again.statuses() == []
    assert again.events() == []


def test_a_suspended_deletion_with_nothing_to_undo_goes() -> None:
    # Adopted device (added: false): the cleanup has nothing to write, so nothing waits.
    world = World.make(observe(converged_vm()))
    found = {**OURS, "added": False}

    world.run(suspended(deleting=True, status={"devices": [found]}))

    assert not WRITES & set(world.calls())
    assert world.log[-1] == ("finalizers", [])


def test_dry_run_holds_a_power_off_too() -> None:
    world = World.make(observe(vm(power_state="poweredOn")), dry_run=True)
    spec = {**SPEC, "powerPolicy": "PowerOff"}

    world.run(body(spec=spec))
    control = World.make(observe(vm(power_state="poweredOn")))
    control.run(body(spec=spec))

    assert not WRITES & set(world.calls())
    assert "power" in control.calls()  # the same world, for real, powers the VM off
