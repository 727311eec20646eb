"""HostPassthroughPolicy: any spec the API accepts, against any inventory shape vSphere can send,
gives a plan and a status without raising; the status is a clear outcome and survives the
round trip through the API server (JSON with camelCase aliases, validated back)."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError
from tests.unit.property.conditions_check import problems
from tests.unit.property.strategies import NOW, PROFILE, observed_hosts, policy_specs

from dpio.api.policy import HostPassthroughPolicySpec, HostPassthroughPolicyStatus
from dpio.planner.host.deletion import plan_deletion
from dpio.planner.host.plan import PolicyPlan, plan_policy
from dpio.planner.host.rules import OtherPolicy
from dpio.planner.host.status import policy_status
from dpio.planner.observed import ObservedHost, ObservedInventory

inventories = st.builds(
    lambda hosts, members: ObservedInventory(
        hosts=tuple(hosts), clusters={"GPU-Cluster": tuple(members)}
    ),
    st.lists(observed_hosts, max_size=3),
    st.lists(st.sampled_from(["esx01", "esx02", "gone"]), max_size=2),
)


def _spec(body: dict[str, Any]) -> HostPassthroughPolicySpec:
    try:
        return HostPassthroughPolicySpec.model_validate(body)
    except ValidationError:
        assume(False)  # refused at admission: the planner never sees it
        raise


def _round_trip(status: HostPassthroughPolicyStatus) -> HostPassthroughPolicyStatus:
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return HostPassthroughPolicyStatus.model_validate(wire)


def _reconcile(
    spec: HostPassthroughPolicySpec,
    inventory: ObservedInventory,
    previous: HostPassthroughPolicyStatus | None,
    others: tuple[OtherPolicy, ...] = (),
    at: timedelta = timedelta(0),
) -> tuple[PolicyPlan, HostPassthroughPolicyStatus]:
    plan = plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec,
        inventory=inventory,
        now=NOW + at,
        others=others,
        previous=previous,
    )
    status = policy_status(
        plan, reboot_policy=spec.reboot.policy, previous=previous, generation=1, now=NOW + at
    )
    return plan, status


@PROFILE
@given(body=policy_specs, other=policy_specs, inventory=inventories)
def test_any_accepted_spec_gives_a_clear_status_that_round_trips(
    body: dict[str, Any], other: dict[str, Any], inventory: ObservedInventory
) -> None:
    spec = _spec(body)
    others: tuple[OtherPolicy, ...] = ()
    with contextlib.suppress(ValidationError):
        others = (OtherPolicy("older", NOW - timedelta(days=1), _other(other)),)
    plan, status = _reconcile(spec, inventory, None, others)
    assert problems(status.conditions) == []
    assert _round_trip(status) == status
    assert len({u.host for u in plan.updates}) == len(plan.updates), "one call per host"
    assert all(u.changes for u in plan.updates), "never an empty UpdatePassthruConfig"
    plan_deletion(name="p", spec=spec, inventory=inventory, others=others)


def _other(body: dict[str, Any]) -> HostPassthroughPolicySpec:
    return HostPassthroughPolicySpec.model_validate(body)


@PROFILE
@given(body=policy_specs, inventory=inventories, later=st.integers(1, 3600))
def test_recomputing_the_same_outcome_keeps_last_transition_times(
    body: dict[str, Any], inventory: ObservedInventory, later: int
) -> None:
    """Level-triggered: a second reconcile of the same world flips nothing and moves no
    lastTransitionTime (Flux and Argo CD would see a change that did not happen)."""
    spec = _spec(body)
    _, first = _reconcile(spec, inventory, None)
    _, second = _reconcile(spec, inventory, _round_trip(first), at=timedelta(seconds=later))
    assert [(c.type, c.status, c.last_transition_time) for c in second.conditions] == [
        (c.type, c.status, c.last_transition_time) for c in first.conditions
    ]


@PROFILE
@given(body=policy_specs, hosts=st.lists(observed_hosts, max_size=3))
def test_summary_counts_what_status_lists(body: dict[str, Any], hosts: list[ObservedHost]) -> None:
    spec = _spec(body)
    _, status = _reconcile(spec, ObservedInventory(hosts=tuple(hosts)), None)
    if status.summary is None:
        return
    rows = [d for h in status.hosts for d in h.devices]
    assert status.summary.active == sum(1 for d in rows if d.state == "Active")
    assert status.summary.devices == sum(1 for d in rows if d.state != "NotFound")
    # pendingReboot counts hosts (enabled != active on any device, listed or not: KB 309986).
    assert status.summary.pending_reboot == sum(1 for h in status.hosts if h.reboot_required)
