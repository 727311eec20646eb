"""Static and Dynamic DirectPath entries for the same host devices on one VM (docs/design.md,
"VM side: devices and claims"):
a dynamic device gets a host device only at power-on, so no entry may take the host device an
entry before it needs: older assignments first, then the assignment's own entries in spec order.
Each case plans BOTH assignments, each seeing the other as a claim, as the reconciler does."""

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
    observe,
    plan,
    policy,
    row,
    target_pci,
    vm,
)

from dpio.api.conditions import CLAIMED_BY_ASSIGNMENT, NOT_FOUND, READY
from dpio.api.conditions import ConditionStatus as S
from dpio.planner.vm.devices import desired_devices
from dpio.planner.vm.observed import (
    AssignmentClaim,
    ConfigTarget,
    ConfigTargetDynamic,
    DynamicBacking,
    ObservedPciDevice,
    PolicyView,
)
from dpio.planner.vm.plan import VMPlan
from dpio.planner.vm.status import assignment_status

DYN: dict[str, Any] = {"dynamic": {"vendorID": "10de", "deviceID": "20b5", "label": "a100"}}
ANY_A100: dict[str, Any] = {"dynamic": {"vendorID": "10de", "deviceID": "20b5"}}


def dyn(name: str = "gpu0", entry: dict[str, Any] = DYN) -> dict[str, Any]:
    return {"name": name, **entry}


def pci(address: str = GPU, name: str = "gpu0") -> dict[str, Any]:
    return {"name": name, "pci": {"address": address}}


def host(**labels: str) -> dict[str, Any]:
    """`observe` fields: a host with these active A100s (address=label in the policy status)."""
    addresses = {GPU: labels.get("gpu", ""), GPU2: labels.get("gpu2", "")}
    present = {a: label for a, label in addresses.items() if label}
    target = ConfigTarget(
        pci_passthrough=tuple(target_pci(a) for a in present),
        dynamic_passthrough=tuple(
            ConfigTargetDynamic(A100_VENDOR, A100_DEVICE, label)
            for label in dict.fromkeys(present.values())
        ),
    )
    rows = tuple(row(a, hardware_label=label) for a, label in present.items())
    return {"config_target": target, "policy": PolicyView("gpu-hosts", policy(), rows)}


ONE = host(gpu="a100")
TWO = host(gpu="a100", gpu2="a100")


def claim(name: str, days_ago: int, devices: list[dict[str, Any]]) -> AssignmentClaim:
    """An assignment on our VM as the operator's cache holds it (its spec's devices)."""
    desired = desired_devices(assignment(devices=devices).devices)
    return AssignmentClaim(
        NS,
        name,
        NOW - timedelta(days=days_ago),
        "esx01",
        tuple(d.address for d in desired if d.address),
        vm_name="ml-trainer-01",
        dynamic=tuple((d.vendor_id, d.device_id, d.label or "") for d in desired if not d.address),
    )


def plan_both(
    older: list[dict[str, Any]],
    newer: list[dict[str, Any]],
    on_host: dict[str, Any],
    on_vm: tuple[ObservedPciDevice, ...] = (),
) -> tuple[VMPlan, VMPlan]:
    """The older (5 days) and the newer (today) assignment's plans for one powered-off VM."""
    # Its 64-bit MMIO window is already set (vm_mmio): only the devices are in question here.
    the_vm = vm(
        pci_devices=on_vm,
        memory_reservation_locked_to_max=True,
        use64bit_mmio="TRUE",
        mmio_size_gb="512",
    )

    def one(name: str, devices: list[dict[str, Any]], rival: AssignmentClaim) -> VMPlan:
        observed = observe(the_vm, claims=(rival,), **on_host)
        age = timedelta(days=-4 if name == "older" else 1)
        return plan(observed, assignment(devices=devices), name=name, age=age)

    return (
        one("older", older, claim("newer", 0, newer)),
        one("newer", newer, claim("older", 5, older)),
    )


def reasons(result: VMPlan) -> list[tuple[str, str]]:
    return [(c.name, c.problem.reason) for c in result.outcome.unavailable]


def adds(result: VMPlan) -> list[str]:
    return [a.name for a in result.calls.reconfigure.adds] if result.calls.reconfigure else []


CLAIMED = CLAIMED_BY_ASSIGNMENT


@pytest.mark.parametrize(
    ("older", "newer", "on_host", "newer_reasons"),
    [
        # The gap: the host's only A100, wanted dynamically by the older, statically by the newer.
        ([dyn()], [pci(GPU)], ONE, [("gpu0", CLAIMED)]),
        # The same with no label on the dynamic entry: any A100 backs it.
        ([dyn(entry=ANY_A100)], [pci(GPU)], ONE, [("gpu0", CLAIMED)]),
        # Two A100s but the older asks for both.
        ([dyn(), dyn("gpu1")], [pci(GPU)], TWO, [("gpu0", CLAIMED)]),
        # Two A100s, the older holds one statically and needs the other dynamically.
        ([pci(GPU2), dyn("gpu1")], [pci(GPU)], TWO, [("gpu0", CLAIMED)]),
        # The mirror: the older holds the only A100 statically, the newer's dynamic can't fit.
        ([pci(GPU)], [dyn()], ONE, [("gpu0", CLAIMED)]),
    ],
    ids=["only-a100", "no-label", "older-wants-both", "older-static-and-dynamic", "mirror"],
)
def test_the_older_assignment_keeps_the_host_device_its_dynamic_or_static_entry_needs(
    older: list[dict[str, Any]],
    newer: list[dict[str, Any]],
    on_host: dict[str, Any],
    newer_reasons: list[tuple[str, str]],
) -> None:
    first, second = plan_both(older, newer, on_host)
    assert reasons(first) == []
    assert adds(first) == [d["name"] for d in older]  # all of the older one's entries go on
    assert reasons(second) == newer_reasons
    assert "(older)" in second.outcome.unavailable[0].problem.message
    assert second.empty  # nothing of the newer one's goes on the VM


def test_the_newer_static_entry_reports_claimed_by_the_older_and_is_not_attached() -> None:
    _, newer = plan_both([dyn()], [pci(GPU)], ONE)
    status = assignment_status(newer, previous=None, generation=1, now=NOW)
    ready = next(c for c in status.conditions if c.type == READY)
    assert (ready.status, ready.reason) == (S.FALSE, CLAIMED_BY_ASSIGNMENT)
    assert f"{GPU} is needed for Dynamic DirectPath 10de:20b5 (a100)" in ready.message
    assert "older VMDeviceAssignment on the same VM (older)" in ready.message
    assert [d.attached for d in status.devices] == [False]


def test_an_older_dynamic_device_already_on_the_vm_keeps_its_host_device() -> None:
    on_vm = (ObservedPciDevice(13000, "PCI device 0", DynamicBacking(((0x10DE, 0x20B5),), "a100")),)
    older, newer = plan_both([dyn()], [pci(GPU)], ONE, on_vm)
    assert (reasons(older), older.empty) == ([], True)  # converged: its device is there
    assert (reasons(newer), newer.empty) == ([("gpu0", CLAIMED)], True)


@pytest.mark.parametrize(
    ("older", "newer", "on_host"),
    [
        ([dyn()], [pci(GPU)], TWO),  # a second A100 for the older one's dynamic entry
        ([dyn()], [pci(GPU2)], host(gpu="a100", gpu2="t4")),  # GPU2 can't back an a100 entry
        ([pci(GPU)], [dyn()], TWO),  # the mirror with a second A100
    ],
)
def test_static_and_dynamic_entries_that_fit_the_host_all_go_on(
    older: list[dict[str, Any]], newer: list[dict[str, Any]], on_host: dict[str, Any]
) -> None:
    first, second = plan_both(older, newer, on_host)
    assert (reasons(first), reasons(second)) == ([], [])
    assert (adds(first), adds(second)) == (["gpu0"], ["gpu0"])


def test_a_label_the_static_device_does_not_have_is_no_claim_on_it() -> None:
    # GPU is labelled t4: the older's a100 entry is backed by GPU2 alone, which it needs.
    on_host = host(gpu="t4", gpu2="a100")
    _, on_t4 = plan_both([dyn()], [pci(GPU)], on_host)
    _, on_a100 = plan_both([dyn()], [pci(GPU2)], on_host)
    assert (reasons(on_t4), adds(on_t4)) == ([], ["gpu0"])
    assert reasons(on_a100) == [("gpu0", CLAIMED)]


@pytest.mark.parametrize(
    ("devices", "on_host", "expected"),
    [
        # One assignment: entries take host devices in spec order, the later one is NotFound.
        ([dyn(), pci(GPU, "gpu1")], ONE, [("gpu1", NOT_FOUND)]),
        ([pci(GPU), dyn("gpu1")], ONE, [("gpu1", NOT_FOUND)]),
        ([dyn(), pci(GPU, "gpu1")], TWO, []),
        ([pci(GPU), dyn("gpu1")], TWO, []),
    ],
)
def test_one_assignment_mixing_static_and_dynamic_entries_fits_the_host(
    devices: list[dict[str, Any]], on_host: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    result = plan(observe(vm(memory_reservation_locked_to_max=True), **on_host),
                  assignment(devices=devices))  # fmt: skip
    assert reasons(result) == expected
    assert adds(result) == ([] if expected else ["gpu0", "gpu1"])
    if expected:
        assert (
            "taken by this assignment's earlier devices"
            in result.outcome.unavailable[0].problem.message
        )
