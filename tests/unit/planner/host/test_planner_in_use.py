"""exclusive: true and deletionPolicy: Disable never pull a device from under a VM (issue 15,
item 5): not one attached, not one a powered-off VM's Dynamic DirectPath device needs."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.planner.builders import GPU, NOW, T4, dev, host, info
from tests.unit.planner.builders import spec as make_spec

from dpio.planner.host.deletion import plan_deletion
from dpio.planner.host.host_plan import plan_host
from dpio.planner.host.in_use import DeviceClaim
from dpio.planner.host.rules import PolicyRules, Rivals
from dpio.planner.observed import DynamicPassthrough, ObservedHost, ObservedInventory, ObservedVM

GPU2 = "0000:5e:00.0"
GPU3 = "0000:af:00.0"
AUDIO = "0000:5e:00.1"
A100_IDS = ((0x10DE, 0x20B5),)


def dynamic(label: str = "", assigned: str = "") -> DynamicPassthrough:
    return DynamicPassthrough(allowed=A100_IDS, label=label, assigned_id=assigned)


def vm(name: str, *devices: DynamicPassthrough, power: str = "poweredOff") -> ObservedVM:
    return ObservedVM(name=name, power_state=power, passthrough=True, dynamic=devices)


def a100s(*vms: ObservedVM, label: str = "a100", **fields: Any) -> ObservedHost:
    """Two enabled A100s (GPU, GPU2) and an enabled T4 (GPU3)."""
    return host(
        "esx01",
        (dev(GPU), dev(GPU2), dev(GPU3, T4)),
        (
            info(GPU, enabled=True, active=True, label=label),
            info(GPU2, enabled=True, active=True, label=label),
            info(GPU3, enabled=True, active=True),
        ),
        vms=vms,
        **fields,
    )


def exclusive_off(observed: ObservedHost) -> list[str]:
    """Devices `exclusive: true` with only the T4 selected disables."""
    rules = PolicyRules.from_spec(make_spec(devices=[{"address": GPU3}], exclusive=True))
    inventory = ObservedInventory(hosts=(observed,))
    plan = plan_host(observed, rules, Rivals.build("p", NOW, (), inventory))
    return [c.id for c in plan.changes if not c.passthru_enabled]


def deletion_off(observed: ObservedHost) -> list[str]:
    """Devices `deletionPolicy: Disable` of a policy selecting both A100s disables."""
    selected = make_spec(
        devices=[{"vendorID": "10de", "deviceID": "20b5"}], deletionPolicy="Disable"
    )
    updates = plan_deletion(name="p", spec=selected, inventory=ObservedInventory(hosts=(observed,)))
    return [c.id for u in updates for c in u.changes if not c.passthru_enabled]


CASES = [
    pytest.param((), [GPU, GPU2], id="no-vm-needs-them"),
    pytest.param((vm("off-1", dynamic("a100")),), [GPU2], id="one-powered-off-vm-keeps-one"),
    pytest.param((vm("off-1", dynamic()), vm("off-2", dynamic("a100"))), [], id="two-keep-two"),
    pytest.param((vm("two", dynamic("a100"), dynamic("a100")),), [], id="one-vm-two-devices"),
    pytest.param((vm("other-label", dynamic("h100")),), [GPU, GPU2], id="label-it-cannot-use"),
    # Running with GPU assigned: GPU reads as attached (kept as ever); a powered-off VM keeps GPU2.
    pytest.param(
        (vm("on", dynamic("a100", GPU), power="poweredOn"), vm("off", dynamic("a100"))),
        [],
        id="running-one-plus-powered-off-one",
    ),
]


@pytest.mark.parametrize(("vms", "off"), CASES)
def test_exclusive_keeps_what_powered_off_dynamic_vms_need(
    vms: tuple[ObservedVM, ...], off: list[str]
) -> None:
    attached = {d.assigned_id: (v.name,) for v in vms for d in v.dynamic if d.assigned_id}
    assert exclusive_off(a100s(*vms, attached_to_vms=attached)) == off


@pytest.mark.parametrize(("vms", "off"), CASES)
def test_deletion_keeps_what_powered_off_dynamic_vms_need(
    vms: tuple[ObservedVM, ...], off: list[str]
) -> None:
    attached = {d.assigned_id: (v.name,) for v in vms for d in v.dynamic if d.assigned_id}
    assert deletion_off(a100s(*vms, attached_to_vms=attached)) == off


def test_a_kept_device_says_why_and_keeps_its_dependent_device() -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(GPU2), dev(AUDIO, (0x10DE, 0x10F7, "audio")), dev(GPU3, T4)),
        (
            info(GPU, enabled=True, active=True),
            info(GPU2, enabled=True, active=True, dependent=GPU2),
            info(AUDIO, enabled=True, active=True, dependent=GPU2),
            info(GPU3, enabled=True, active=True),
        ),
        vms=(vm("off-1", dynamic()), vm("off-2", dynamic())),
    )
    assert exclusive_off(observed) == []
    assert deletion_off(observed) == []
    rules = PolicyRules.from_spec(make_spec(devices=[{"address": GPU3}], exclusive=True))
    plan = plan_host(
        observed, rules, Rivals.build("p", NOW, (), ObservedInventory(hosts=(observed,)))
    )
    notes = {row.id: row.message for row in plan.devices}
    assert "powered-off VM off-1 has a Dynamic DirectPath device" in notes[GPU]


def test_a_powered_off_vm_with_a_static_device_already_keeps_it() -> None:
    """Closed before issue 15: a static backing names its device (`backing.id`) whether the VM
    runs or not, so the adapter reads it as attached and both rules leave it."""
    observed = host(
        "esx01",
        (dev(GPU), dev(GPU3, T4)),
        (info(GPU, enabled=True, active=True), info(GPU3, enabled=True, active=True)),
        attached_to_vms={GPU: ("static-off",)},
        vms=(ObservedVM(name="static-off", power_state="poweredOff", passthrough=True),),
    )
    assert exclusive_off(observed) == []
    assert deletion_off(observed) == []


# Assignments still converging: they claim a device their VM does not have yet.
STATIC_CLAIM = DeviceClaim("ml/train", "esx01", address="0000:3B:00.0")
DYNAMIC_CLAIM = DeviceClaim("ml/infer", "esx01", dynamic=dynamic("a100"))
OTHER_HOST_CLAIM = DeviceClaim("ml/elsewhere", "esx02", address=GPU)


def exclusive_plan(observed: ObservedHost, claims: tuple[DeviceClaim, ...]) -> Any:
    rules = PolicyRules.from_spec(make_spec(devices=[{"address": GPU3}], exclusive=True))
    inventory = ObservedInventory(hosts=(observed,))
    return plan_host(observed, rules, Rivals.build("p", NOW, (), inventory), claims)


def deletion_with(observed: ObservedHost, claims: tuple[DeviceClaim, ...]) -> list[str]:
    selected = make_spec(
        devices=[{"vendorID": "10de", "deviceID": "20b5"}], deletionPolicy="Disable"
    )
    inventory = ObservedInventory(hosts=(observed,))
    updates = plan_deletion(name="p", spec=selected, inventory=inventory, claims=claims)
    return [c.id for u in updates for c in u.changes if not c.passthru_enabled]


@pytest.mark.parametrize(
    ("claims", "off"),
    [
        pytest.param((), [GPU, GPU2], id="no-claim"),
        pytest.param((STATIC_CLAIM,), [GPU2], id="static-claim-keeps-its-device"),
        pytest.param((DYNAMIC_CLAIM,), [GPU2], id="dynamic-claim-keeps-one-match"),
        pytest.param((STATIC_CLAIM, DYNAMIC_CLAIM), [], id="both"),
        pytest.param((OTHER_HOST_CLAIM,), [GPU, GPU2], id="a-claim-on-another-host"),
    ],
)
def test_devices_claimed_by_converging_assignments_are_kept(
    claims: tuple[DeviceClaim, ...], off: list[str]
) -> None:
    observed = a100s()
    plan = exclusive_plan(observed, claims)
    assert [c.id for c in plan.changes if not c.passthru_enabled] == off
    assert deletion_with(observed, claims) == off


def test_a_claimed_device_says_which_assignment_holds_it() -> None:
    plan = exclusive_plan(a100s(), (STATIC_CLAIM, DYNAMIC_CLAIM))
    notes = {row.id: row.message for row in plan.devices}
    assert "VMDeviceAssignment ml/train claims it and has not attached it yet" in notes[GPU]
    assert "VMDeviceAssignment ml/infer has a Dynamic DirectPath device" in notes[GPU2]
