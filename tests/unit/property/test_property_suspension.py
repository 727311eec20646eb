"""The pause switch for any input: whatever spec the API accepts, whatever vSphere reports and
whatever status came before, a suspended plan (spec.suspend or dry-run) holds no vCenter call,
for either kind and for deletion, and its status stays a clear outcome."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.property.conditions_check import problems
from tests.unit.property.strategies import NOW, PROFILE, assignment_specs, policy_specs
from tests.unit.property.test_property_assignment import _spec as _assignment_spec
from tests.unit.property.test_property_assignment import observations, previous_statuses
from tests.unit.property.test_property_policy import _spec as _policy_spec
from tests.unit.property.test_property_policy import inventories

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import DRY_RUN, SUSPENDED, ConditionStatus
from dpio.planner.conditions import find
from dpio.planner.host.deletion import held_deletion, plan_deletion
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.status import policy_status
from dpio.planner.observed import ObservedInventory
from dpio.planner.suspension import Suspension
from dpio.planner.vm.deletion import plan_assignment_deletion
from dpio.planner.vm.observed import VMObservation
from dpio.planner.vm.plan import plan_assignment
from dpio.planner.vm.status import assignment_status
from dpio.planner.vm.suspend import held_plan

suspensions = st.sampled_from([Suspension(SUSPENDED), Suspension(DRY_RUN)])


@PROFILE
@given(body=policy_specs, inventory=inventories, suspension=suspensions)
def test_a_suspended_policy_plan_never_holds_a_call(
    body: dict[str, Any], inventory: ObservedInventory, suspension: Suspension
) -> None:
    spec = _policy_spec(body)
    plan = plan_policy(
        name="p", creation_timestamp=NOW, spec=spec, inventory=inventory, now=NOW,
        suspension=suspension,
    )  # fmt: skip
    assert plan.empty
    status = policy_status(
        plan, reboot_policy=spec.reboot.policy, previous=None, generation=1, now=NOW
    )
    assert problems(status.conditions) == []
    suspended = find(status.conditions, SUSPENDED)
    if plan.stalled is None:
        assert suspended is not None
        assert (suspended.status, suspended.reason) == (ConditionStatus.TRUE, suspension.reason)
    updates = plan_deletion(name="p", spec=spec, inventory=inventory)
    held = held_deletion(suspension, updates)
    assert (held is not None) == bool(updates), "a deletion that would write is held"


@PROFILE
@given(
    body=assignment_specs,
    observed=observations,
    previous=previous_statuses,
    suspension=suspensions,
)
def test_a_suspended_assignment_plan_never_holds_a_call_and_keeps_its_records(
    body: dict[str, Any],
    observed: VMObservation,
    previous: VMDeviceAssignmentStatus | None,
    suspension: Suspension,
) -> None:
    spec = _assignment_spec(body)
    before = previous or VMDeviceAssignmentStatus()
    free = plan_assignment(
        namespace="ml-team", name="trainer-gpu", creation_timestamp=NOW, spec=spec,
        observed=observed, now=NOW, previous=previous,
    )  # fmt: skip
    plan = held_plan(free, suspension, before)
    assert plan.empty
    assert plan.outcome.previous == before.previous, "nothing changes, so nothing is recorded"
    status = assignment_status(plan, previous=previous, generation=2, now=NOW)
    assert problems(status.conditions) == []
    assert status.previous == before.previous
    deletion = plan_assignment_deletion(
        namespace="ml-team", spec=spec, observed=observed, now=NOW, previous=previous
    )
    assert held_plan(deletion, suspension, before).empty
