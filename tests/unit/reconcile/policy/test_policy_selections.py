"""Selections indexed by host (selections.py): `concerned` must pick exactly the policies that
`concerns` answers True for, through any history of plans, stalls and deletions; a policy
left out would miss a vCenter change of its hosts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.planner.builders import NOW, host, spec
from tests.unit.property.strategies import PROFILE

from dpio.api.policy import HostSelector
from dpio.planner import PolicyPlan, plan_policy
from dpio.planner.observed import ObservedInventory
from dpio.reconcile.policy.selections import Selections

HOSTS = tuple(f"esx{i}" for i in range(5))
INVENTORY = ObservedInventory(hosts=tuple(host(h) for h in HOSTS))
NAMES = ("a", "b", "c", "d")


def _stalled() -> PolicyPlan:
    """A plan that stalled (a reboot window in a time zone that does not exist)."""
    window = {"days": ["Mon"], "start": "22:00", "duration": "1h", "timeZone": "Nowhere/Land"}
    plan = plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec(hosts={"names": ["esx1"]}, reboot={"policy": "Rolling", "windows": [window]}),
        inventory=INVENTORY,
        now=NOW,
    )
    assert plan.stalled is not None
    return plan


def _plan(selected: frozenset[str]) -> PolicyPlan:
    return plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec(hosts={"names": sorted(selected) or ["nowhere"]}),
        inventory=INVENTORY,
        now=NOW,
    )


steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("record"),
            st.sampled_from(NAMES),
            st.frozensets(st.sampled_from(HOSTS), max_size=3),
        ),
        st.tuples(
            st.sampled_from(["forget", "stall"]), st.sampled_from(NAMES), st.just(frozenset())
        ),
    ),
    max_size=20,
)


@PROFILE
@given(
    steps,
    st.frozensets(st.sampled_from(NAMES)),
    st.frozensets(st.sampled_from([f"host-{h}" for h in HOSTS])),
)
def test_concerned_picks_what_concerns_answers(
    history: list[tuple[str, str, frozenset[str]]],
    cached_names: frozenset[str],
    report: frozenset[str],
) -> None:
    selections, stalled = Selections(), _stalled()
    for op, name, selected in history:
        if op == "record":
            selections.record(name, HostSelector(names=sorted(selected) or ["x"]), _plan(selected))
        elif op == "stall":
            selections.record(name, HostSelector(names=["esx1"]), stalled)
        else:
            selections.forget(name)
    cached = {("", n): {} for n in cached_names}
    expected = {key for key in cached if selections.concerns(key[1], report)}
    assert selections.concerned(report, cached.keys()) == expected


def test_a_recorded_policy_on_a_reported_host_is_picked_and_a_forgotten_one_by_every_report() -> (
    None
):
    selections = Selections()
    selections.record("a", HostSelector(names=["esx1"]), _plan(frozenset({"esx1"})))
    selections.record("b", HostSelector(names=["esx2"]), _plan(frozenset({"esx2"})))
    cached = {("", "a"): {}, ("", "b"): {}}
    assert selections.concerned(frozenset({"host-esx1"}), cached.keys()) == {("", "a")}
    selections.record("a", HostSelector(names=["esx3"]), _plan(frozenset({"esx3"})))  # moved
    assert selections.concerned(frozenset({"host-esx1"}), cached.keys()) == set()
    selections.forget("b")  # stalled or deleted: every report concerns it while cached
    assert selections.concerned(frozenset({"host-esx9"}), cached.keys()) == {("", "b")}
