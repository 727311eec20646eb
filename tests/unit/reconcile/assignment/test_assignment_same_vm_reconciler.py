"""The reconciler side of two VMDeviceAssignments on one VM: claims carry the VM and the dynamic
devices from `spec`, the newer one waits, and deleting one leaves the other's device."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.vm.builders import NOW, converged_vm, observe
from tests.unit.reconcile.assignment.fakes import World, body, condition

from dpio.planner.vm.observed import AssignmentClaim
from dpio.reconcile.assignment.inputs import claims

GPU = "0000:3b:00.0"
UUID = "5003a1b2-0000-0000-0000-000000000042"
A100 = {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}


def spec(vm: dict[str, str], *devices: dict[str, Any]) -> dict[str, Any]:
    return {"policyRef": {"name": "gpu-hosts"}, "vm": vm, "devices": list(devices)}


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (
            spec({"name": "ml-trainer-01"}, {"name": "g", "pci": {"address": GPU.upper()}}),
            AssignmentClaim("ml-team", "rival", NOW - timedelta(days=5), "esx01", (GPU,),
                            vm_name="ml-trainer-01"),
        ),
        (   # dynamic only: a claim all the same (it needs a device of the VM's host)
            spec({"instanceUUID": UUID.upper()}, {"name": "g", "dynamic": A100}),
            AssignmentClaim("ml-team", "rival", NOW - timedelta(days=5), "esx01", (),
                            vm_instance_uuid=UUID, dynamic=((0x10DE, 0x20B5, "a100"),)),
        ),
        (   # not hex: that assignment is invalid and claims nothing
            spec({"name": "x"}, {"name": "g", "dynamic": {"vendorID": "zz", "deviceID": "1"}}),
            None,
        ),
    ],
)  # fmt: skip
def test_claims_name_the_vm_and_dynamic_devices(
    other: dict[str, Any], expected: AssignmentClaim | None
) -> None:
    rival = body("rival", spec=other, age_days=5)
    found, unknown = claims([rival, body("trainer-gpu")], ("ml-team", "trainer-gpu"), "esx01")
    assert found == ((expected,) if expected else ())
    assert unknown is (expected is not None)  # never reconciled: counts on our host for now


def _on_vm(name: str, age_days: int) -> dict[str, Any]:
    status = {"observedGeneration": 1, "vm": {"moref": "vm-42", "host": "esx01"}}
    return body(name, age_days=age_days, status=status)


def test_the_newer_assignment_on_the_vm_waits_for_the_device_the_older_has() -> None:
    world = World.make(observe(converged_vm()), assignments=[_on_vm("older", 5)])
    world.run(body("newer", age_days=1))
    assert "reconfigure" not in world.calls()
    status = world.statuses()[0]
    assert condition(status, "Ready") == ("False", "ClaimedByAssignment")
    assert condition(status, "DevicesUnavailable") == ("True", "ClaimedByAssignment")
    assert status["devices"][0]["attached"] is False
    assert "key" not in status["devices"][0]  # not recorded as ours: never removed by us


@pytest.mark.parametrize(("others", "removed"), [([], [13000]), ([_on_vm("newer", 0)], None)])
def test_deleting_leaves_the_device_another_assignment_on_the_vm_asks_for(
    others: list[dict[str, Any]], removed: list[int] | None
) -> None:
    status = {
        "vm": {"moref": "vm-42", "host": "esx01"},
        "devices": [{"name": "gpu0", "kind": "pci", "attached": True, "key": 13000, "added": True}],
        "previous": {"memoryReservationLockedToMax": True},
    }
    world = World.make(observe(converged_vm()), assignments=others)
    world.run(body("older", deleting=True, status=status, age_days=5))
    if removed is None:
        assert "reconfigure" not in world.calls()
        assert world.calls()[-1] == "finalizers"
    else:
        assert [r.key for r in world.arg("reconfigure").removes] == removed
