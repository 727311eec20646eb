"""VMDeviceAssignment: any spec the API accepts, against any VM, host offer, policy and claims,
gives a plan and a status without raising. The plan never gives a VM a device twice, never adds a
passthrough device without the full memory reservation, and never loses `status.previous`; the
status is a clear outcome and survives the round trip through the API server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError
from tests.unit.property.conditions_check import problems
from tests.unit.property.strategies import (
    NOW,
    PROFILE,
    addresses,
    assignment_specs,
    claims,
    config_targets,
    device_rows,
    observed_vms,
    policy_specs,
)

from dpio.api.assignment import VMDeviceAssignmentSpec, VMDeviceAssignmentStatus
from dpio.api.policy import HostPassthroughPolicySpec
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.observed import (
    ObservedVM,
    PolicyView,
    StaticBacking,
    VMObservation,
)
from dpio.planner.vm.plan import VMPlan, plan_assignment
from dpio.planner.vm.status import assignment_status

# ml-team's entry: its team folder and every action, so that the device, power and conflict
# rules stay reachable; the drawn VMs sit in that folder, below it or elsewhere
# (strategies.FOLDERS), and the quota is drawn, so tenancy refusals are drawn too.
ML_TEAM = {
    "namespaces": ["ml-team"],
    "vms": {"folders": ["/DC1/vm/ml-team"]},
    "powerPolicies": ["WaitForPowerOff", "ShutdownGuest", "PowerOff"],
    "conflictPolicies": ["Block", "Resolve"],
}


def _policy(body: dict[str, Any], quota: int | None) -> HostPassthroughPolicySpec | None:
    entry = {**ML_TEAM, "maxDevices": quota} if quota is not None else ML_TEAM
    try:
        return HostPassthroughPolicySpec.model_validate({**body, "consumers": [entry]})
    except ValidationError:
        return None


policy_views = st.none() | st.builds(
    PolicyView,
    name=st.just("gpu-hosts"),
    spec=st.builds(_policy, policy_specs, st.none() | st.integers(0, 3)).filter(
        lambda p: p is not None
    ),
    host_devices=st.lists(device_rows, max_size=3).map(tuple),
)
observations = st.builds(
    VMObservation,
    vm=st.none() | observed_vms,
    config_target=config_targets,
    max_passthrough_devices=st.none() | st.integers(-1, 130),
    gen2_supported=st.booleans(),
    gen2_unsupported_reasons=st.lists(st.sampled_from(["hostNptIncompatibleProduct"])).map(tuple),
    attached_to_vms=st.dictionaries(addresses, st.just(("other-vm",)), max_size=2),
    claims=st.lists(claims, max_size=2).map(tuple),
    policy=policy_views,
    namespace_labels=st.sampled_from([{}, {"team": "ml"}]),
)
previous_statuses = st.none() | st.builds(
    lambda devices, prev: VMDeviceAssignmentStatus.model_validate(
        {"devices": devices, "previous": prev}
    ),
    st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["gpu0", "gpu1"]),
                "kind": st.sampled_from(["pci", "dynamic"]),
                "attached": st.booleans(),
                "key": st.sampled_from([13000, 13001, None]),
                "added": st.booleans(),
            }
        ),
        max_size=2,
    ),
    st.none()
    | st.fixed_dictionaries(
        {
            "memoryReservationLockedToMax": st.booleans(),
            "cpuHotAddEnabled": st.booleans(),
            "nestedHVEnabled": st.booleans(),
        }
    ),
)


def _spec(body: dict[str, Any]) -> VMDeviceAssignmentSpec:
    try:
        return VMDeviceAssignmentSpec.model_validate(body)
    except ValidationError:
        assume(False)  # refused at admission: the planner never sees it
        raise


def _plan(
    spec: VMDeviceAssignmentSpec, observed: VMObservation, previous: VMDeviceAssignmentStatus | None
) -> VMPlan:
    return plan_assignment(
        namespace="ml-team",
        name="trainer-gpu",
        creation_timestamp=NOW,
        spec=spec,
        observed=observed,
        now=NOW,
        previous=previous,
    )


def _static_ids(vm: ObservedVM, without: set[int]) -> list[str]:
    return [
        d.backing.id
        for d in vm.pci_devices
        if isinstance(d.backing, StaticBacking) and d.key not in without
    ]


def _no_device_twice(plan: VMPlan, vm: ObservedVM) -> None:
    change = plan.calls.reconfigure
    if change is None:
        return
    keys = [a.key for a in change.adds]
    assert all(k < 0 for k in keys), "temporary device keys are negative"
    assert len(set(keys)) == len(keys), "temporary device keys are unique"
    added = [a.backing.id for a in change.adds if isinstance(a.backing, StaticBacking)]
    kept = _static_ids(vm, {r.key for r in change.removes})
    assert len(set(added)) == len(added), f"one PCI device added twice: {added}"
    assert not set(added) & set(kept), f"added a PCI device the VM already has: {added}"


def _full_reservation(plan: VMPlan, vm: ObservedVM) -> None:
    """Without `memoryReservationLockedToMax` power-on fails (BOSH vSphere CPI PR #372)."""
    change = plan.calls.reconfigure
    if change is None or not change.adds:
        return
    locked = change.memory_reservation_locked_to_max
    assert locked is True or (locked is None and vm.memory_reservation_locked_to_max)


def _wire(status: VMDeviceAssignmentStatus) -> Mapping[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


@PROFILE
@given(body=assignment_specs, observed=observations, previous=previous_statuses)
def test_any_accepted_assignment_is_planned_safely_with_a_clear_status(
    body: dict[str, Any],
    observed: VMObservation,
    previous: VMDeviceAssignmentStatus | None,
) -> None:
    spec = _spec(body)
    plan = _plan(spec, observed, previous)
    adapters = [n.adapter for n in spec.network_direct_path]
    status = assignment_status(plan, previous=previous, generation=2, now=NOW, adapters=adapters)
    assert problems(status.conditions) == []
    assert VMDeviceAssignmentStatus.model_validate(_wire(status)) == status
    if previous is not None and previous.previous is not None:
        assert status.previous == previous.previous, "status.previous lost or rewritten"
    if observed.vm is not None:
        _no_device_twice(plan, observed.vm)
        _full_reservation(plan, observed.vm)


@PROFILE
@given(body=assignment_specs, observed=observations, previous=previous_statuses)
def test_deletion_is_total_and_removes_only_what_it_added(
    body: dict[str, Any],
    observed: VMObservation,
    previous: VMDeviceAssignmentStatus | None,
) -> None:
    spec = _spec(body)
    plan = plan_assignment_deletion(
        namespace="ml-team", spec=spec, observed=observed, now=NOW, previous=previous
    )
    if observed.vm is None:
        assert plan.outcome.release, "a VM deleted in vCenter just releases the finalizer"
        return
    if (
        plan.outcome.release and plan.outcome.not_ready is not None
    ):  # refused (scope, policy): hands off
        assert plan.empty, "a refused deletion changes nothing"
        return
    change = plan.calls.reconfigure
    if change is not None:
        assert not change.adds, "deletion never adds a device"
        present = {d.key for d in observed.vm.pci_devices}
        assert {r.key for r in change.removes} <= present
        if previous is None or not any(d.added for d in previous.devices):
            assert not change.removes, "a device the operator did not add is never removed"
    status = assignment_status(plan, previous=previous, generation=2, now=NOW)
    assert problems(status.conditions) == []
