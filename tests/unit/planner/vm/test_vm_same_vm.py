"""Two VMDeviceAssignments naming one VM (docs/design.md, "VM side: devices and claims"): a
device is attached once, the older assignment has it, the newer reports DevicesUnavailable /
ClaimedByAssignment naming it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.vm.builders import (
    A100_DEVICE,
    A100_VENDOR,
    GPU,
    GPU2,
    NOW,
    NS,
    assignment,
    attached,
    observe,
    plan,
    policy,
    row,
    target_pci,
    vm,
)

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import CLAIMED_BY_ASSIGNMENT, DEVICES_UNAVAILABLE, NOT_FOUND, READY
from dpio.api.conditions import ConditionStatus as S
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.observed import (
    AssignmentClaim,
    ConfigTarget,
    ConfigTargetDynamic,
    DynamicBacking,
    ObservedPciDevice,
    PolicyView,
)
from dpio.planner.vm.status import assignment_status

A100 = (A100_VENDOR, A100_DEVICE, "a100")
DYNAMIC = [{"name": "gpu0", "dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}}]
UUID = "5003a1b2-0000-0000-0000-000000000042"


def rival(days_ago: int, *, vm_name: str = "ml-trainer-01", host: str = "esx01",
          static: tuple[str, ...] = (GPU,), dynamic: tuple[Any, ...] = (),
          uuid: str = "") -> AssignmentClaim:  # fmt: skip
    """Another assignment, `days_ago` old (we are 1 day old)."""
    return AssignmentClaim(
        "ml-team", f"rival-{days_ago}d", NOW - timedelta(days=days_ago), host, static,
        vm_name=vm_name if not uuid else "", vm_instance_uuid=uuid, dynamic=dynamic,
    )  # fmt: skip


def dynamic_on_vm(key: int = 13000) -> ObservedPciDevice:
    return ObservedPciDevice(key, f"PCI device {key}", DynamicBacking((A100[:2],), "a100"))


def a100_host(*addresses: str) -> dict[str, Any]:
    """`observe` fields: a host with these active A100s, each labelled a100 in the policy."""
    target = ConfigTarget(
        pci_passthrough=tuple(target_pci(a) for a in addresses),
        dynamic_passthrough=(ConfigTargetDynamic(A100_VENDOR, A100_DEVICE, "a100"),),
    )
    rows = tuple(row(a, hardware_label="a100") for a in addresses)
    return {"config_target": target, "policy": PolicyView("gpu-hosts", policy(), rows)}


def _reasons(result: Any) -> list[str]:
    return [c.problem.reason for c in result.outcome.unavailable]


@pytest.mark.parametrize(
    ("devices", "claim", "winner"),
    [
        # Static, older on the same VM: it has the device (attached or not yet), we wait.
        ((attached(),), rival(5), "(rival-5d)"),
        ((), rival(5), "(rival-5d)"),
        ((attached(),), rival(5, uuid=UUID.upper()), "(rival-5d)"),  # by instanceUUID
        # Newer on the same VM: we are the older one and keep the device.
        ((attached(),), rival(0), None),
        # An older one naming another VM of the host: the device on our VM stays ours, as before.
        ((attached(),), rival(5, vm_name="other-vm"), None),
        # Same VM name, but its status saw it on another host: not this VM (reconcile.claims).
        ((attached(),), rival(5, host="esx09"), None),
    ],
)
def test_static_device_on_one_vm_goes_to_the_older(
    devices: tuple[ObservedPciDevice, ...], claim: AssignmentClaim, winner: str | None
) -> None:
    the_vm = vm(
        pci_devices=devices,
        instance_uuid=UUID,
        memory_reservation_locked_to_max=True,
        use64bit_mmio="TRUE",  # the A100s' 64-bit MMIO window is in place (vm_mmio)
        mmio_size_gb="512",
    )
    result = plan(observe(the_vm, claims=(claim,)))
    status = assignment_status(result, previous=None, generation=1, now=NOW)
    ready = next(c for c in status.conditions if c.type == READY)
    if winner is None:
        assert _reasons(result) == []
        if devices:
            assert ready.status is S.TRUE
        else:
            assert result.calls.reconfigure is not None
        return
    assert _reasons(result) == [CLAIMED_BY_ASSIGNMENT]
    assert winner in result.outcome.unavailable[0].problem.message
    assert (ready.status, ready.reason) == (S.FALSE, CLAIMED_BY_ASSIGNMENT)
    unavailable = next(c for c in status.conditions if c.type == DEVICES_UNAVAILABLE)
    assert unavailable.status is S.TRUE
    assert [d.attached for d in status.devices] == [False]  # the older one's device, not ours
    assert result.empty  # nothing to add, and never the older one's device to remove


@pytest.mark.parametrize(
    ("host", "on_vm", "claims", "reasons", "adds"),
    [
        # One A100 on the host; an older assignment on the VM wants it dynamically.
        (a100_host(GPU), (), (rival(5, static=(), dynamic=(A100,)),), [CLAIMED_BY_ASSIGNMENT], 0),
        # ... and already has it on the VM: that device is its, not ours.
        (a100_host(GPU), (dynamic_on_vm(),), (rival(5, static=(), dynamic=(A100,)),),
         [CLAIMED_BY_ASSIGNMENT], 0),
        # ... or holds the host's only A100 statically.
        (a100_host(GPU), (), (rival(5, static=(GPU,)),), [CLAIMED_BY_ASSIGNMENT], 0),
        # Two A100s: each assignment gets its own device on the VM.
        (a100_host(GPU, GPU2), (dynamic_on_vm(),), (rival(5, static=(), dynamic=(A100,)),), [], 1),
        # A newer assignment on the VM does not take our device from us.
        (a100_host(GPU), (dynamic_on_vm(),), (rival(0, static=(), dynamic=(A100,)),), [], 0),
        # An older one on another VM: a dynamic device is picked at power-on, so no claim.
        (a100_host(GPU), (), (rival(5, vm_name="x", static=(), dynamic=(A100,)),), [], 1),
    ],
)  # fmt: skip
def test_dynamic_devices_on_one_vm_fit_the_host(
    host: dict[str, Any],
    on_vm: tuple[ObservedPciDevice, ...],
    claims: tuple[AssignmentClaim, ...],
    reasons: list[str],
    adds: int,
) -> None:
    the_vm = vm(pci_devices=on_vm, memory_reservation_locked_to_max=True)
    result = plan(observe(the_vm, claims=claims, **host), assignment(devices=DYNAMIC))
    assert _reasons(result) == reasons
    if reasons:
        assert "(rival-5d)" in result.outcome.unavailable[0].problem.message
    assert len(result.calls.reconfigure.adds if result.calls.reconfigure else ()) == adds
    assert (result.calls.reconfigure.removes if result.calls.reconfigure else ()) == ()


@pytest.mark.parametrize(("addresses", "reasons"), [((GPU,), [NOT_FOUND]), ((GPU, GPU2), [])])
def test_one_assignment_asks_no_more_dynamic_devices_than_the_host_has(
    addresses: tuple[str, ...], reasons: list[str]
) -> None:
    spec = assignment(devices=[*DYNAMIC, {**DYNAMIC[0], "name": "gpu1"}])
    result = plan(observe(vm(), **a100_host(*addresses)), spec)
    assert _reasons(result) == reasons
    assert [c.name for c in result.outcome.unavailable] == (["gpu1"] if reasons else [])


@pytest.mark.parametrize(
    ("claims", "removed"),
    [
        ((), [13000]),
        ((rival(0),), []),  # a newer assignment on the VM wants it: left for it
        ((rival(5),), []),  # an older one too
        ((rival(0, vm_name="other-vm"),), [13000]),  # one naming another VM takes nothing here
    ],
)
def test_deletion_leaves_devices_another_assignment_on_the_vm_asks_for(
    claims: tuple[AssignmentClaim, ...], removed: list[int]
) -> None:
    status = VMDeviceAssignmentStatus.model_validate(
        {
            "devices": [
                {"name": "gpu0", "kind": "pci", "attached": True, "key": 13000, "added": True}
            ]
        }
    )
    result = plan_assignment_deletion(
        namespace=NS,
        spec=assignment(),
        observed=observe(vm(pci_devices=(attached(),)), claims=claims),
        now=NOW,
        previous=status,
    )
    assert [
        r.key for r in (result.calls.reconfigure.removes if result.calls.reconfigure else ())
    ] == removed
