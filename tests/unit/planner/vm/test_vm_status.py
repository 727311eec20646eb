"""VMDeviceAssignment status and conditions from a plan."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.planner.vm.builders import (
    GPU,
    NOW,
    assignment,
    converged_vm,
    observe,
    plan,
    vm,
)

from dpio.api.assignment import VMDeviceAssignmentSpec
from dpio.api.conditions import (
    DEVICES_UNAVAILABLE,
    FEATURE_CONFLICT,
    FORBIDDEN,
    IN_USE_BY_VM,
    NOT_A_CONSUMER,
    POWER_OFF_REQUIRED,
    READY,
    RECONCILING,
    SNAPSHOTS,
    STALLED,
    TOO_MANY_DEVICES,
    VM_POWERED_ON,
    VMOTION_COMPATIBLE,
    ConditionStatus,
)
from dpio.planner.conditions import find
from dpio.planner.vm.conflicts import UNAVAILABLE_FEATURES
from dpio.planner.vm.observed import VMObservation
from dpio.planner.vm.status import assignment_status

T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


def status_of(observed: VMObservation, spec: VMDeviceAssignmentSpec | None = None) -> Any:
    return assignment_status(plan(observed, spec), previous=None, generation=3, now=NOW)


def conditions(observed: VMObservation, **spec: Any) -> dict[str, tuple[str, str]]:
    result = status_of(observed, assignment(**spec) if spec else None)
    return {c.type: (c.status, c.reason) for c in result.conditions}


@pytest.mark.parametrize(
    ("observed", "spec", "expected"),
    [
        (observe(converged_vm()), {}, {READY: T, RECONCILING: F, STALLED: F, FORBIDDEN: F}),
        (observe(), {}, {READY: F, RECONCILING: T, STALLED: F}),
        (observe(vm(power_state="poweredOn")), {}, {READY: F, POWER_OFF_REQUIRED: T}),
        (observe(vm(snapshot_count=2)), {}, {READY: F, FEATURE_CONFLICT: T}),
        (observe(policy=None), {}, {READY: F, STALLED: T, FORBIDDEN: T}),
        (observe(attached_to_vms={GPU: ("x",)}), {}, {READY: F, DEVICES_UNAVAILABLE: T}),
        (
            observe(
                vm(host_version="4.0.0", pci_devices=converged_vm().pci_devices * 1),
                max_passthrough_devices=1,
            ),
            {
                "devices": [
                    {"name": "a", "pci": {"address": GPU}},
                    {"name": "b", "pci": {"address": "0000:01:00.0"}},
                ]
            },
            {STALLED: T},
        ),
        (observe(converged_vm()), {}, {VMOTION_COMPATIBLE: F}),
    ],
)
def test_conditions(
    observed: VMObservation, spec: dict[str, Any], expected: dict[str, ConditionStatus]
) -> None:
    found = conditions(observed, **spec)
    assert {k: found[k][0] for k in expected} == expected


@pytest.mark.parametrize(
    ("observed", "condition", "reason"),
    [
        (observe(vm(power_state="poweredOn")), POWER_OFF_REQUIRED, VM_POWERED_ON),
        (observe(vm(snapshot_count=2)), FEATURE_CONFLICT, SNAPSHOTS),
        (observe(attached_to_vms={GPU: ("x",)}), DEVICES_UNAVAILABLE, IN_USE_BY_VM),
        (observe(policy=observe().policy, namespace_labels={}), FORBIDDEN, "Allowed"),
    ],
)
def test_condition_reasons(observed: VMObservation, condition: str, reason: str) -> None:
    assert conditions(observed)[condition][1] == reason


def test_not_a_consumer_is_stalled_with_the_reason() -> None:
    result = assignment_status(
        plan(observe(), namespace="web"), previous=None, generation=1, now=NOW
    )
    assert find(result.conditions, FORBIDDEN) is not None
    assert find(result.conditions, STALLED).reason == NOT_A_CONSUMER  # type: ignore[union-attr]


def test_too_many_devices_reason() -> None:
    spec = assignment(
        devices=[{"name": f"g{i}", "pci": {"address": f"0000:0{i}:00.0"}} for i in range(3)]
    )
    found = conditions(
        observe(vm(host_version="4.1.0")), devices=spec.model_dump(by_alias=True)["devices"]
    )
    assert found[STALLED] == (T, TOO_MANY_DEVICES)


def test_status_of_a_converged_vm() -> None:
    result = status_of(observe(converged_vm(hardware_version="vmx-19")))
    assert result.observed_generation == 3
    assert result.vm.moref == "vm-42"
    assert result.vm.power_state == "poweredOff"
    (row,) = result.devices
    assert (row.name, row.kind, row.address, row.host, row.attached, row.key) == (
        "gpu0",
        "pci",
        GPU,
        "esx01",
        True,
        13000,
    )
    assert result.attached == "1/1"
    assert result.unavailable_features == list(UNAVAILABLE_FEATURES)
    assert result.vmotion.reason == "StaticPassthrough"


def test_status_of_a_pending_device() -> None:
    result = status_of(observe(vm(snapshot_count=1)))
    (row,) = result.devices
    assert not row.attached
    assert result.attached == "0/1"
    assert result.unavailable_features == []  # nothing attached yet, nothing lost yet
    assert [c.feature for c in result.feature_conflicts] == [SNAPSHOTS]
    assert result.feature_conflicts[0].resolvable is False


def test_status_is_stable_when_nothing_changes() -> None:
    observed = observe(converged_vm())
    first = assignment_status(plan(observed), previous=None, generation=1, now=NOW)
    later = NOW.replace(hour=13)
    second = assignment_status(plan(observed), previous=first, generation=1, now=later)
    assert second == first
