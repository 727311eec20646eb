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
from dpio.reconcile.cache import ObjectCache
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
    st.tuples(
        st.sampled_from(["record", "stall", "forget", "put", "delete"]),
        st.sampled_from(NAMES),
        st.frozensets(st.sampled_from(HOSTS), max_size=3),
    ),
    max_size=25,
)


@PROFILE
@given(steps, st.frozensets(st.sampled_from([f"host-{h}" for h in HOSTS])))
def test_concerned_picks_what_concerns_answers(
    history: list[tuple[str, str, frozenset[str]]], report: frozenset[str]
) -> None:
    """Plans and the policy cache's changes in any order (a policy planned, then deleted from
    the cache; cached, never planned; stalled; recreated)."""
    selections, stalled = Selections(), _stalled()
    cache = ObjectCache(indexes=(selections.cache_index(),))
    for op, name, selected in history:
        if op == "record":
            selections.record(name, HostSelector(names=sorted(selected) or ["x"]), _plan(selected))
        elif op == "stall":
            selections.record(name, HostSelector(names=["esx1"]), stalled)
        elif op == "forget":
            selections.forget(name)
        elif op == "put":
            cache.put({"metadata": {"name": name}})
        else:
            cache.delete(("", name))
        expected = {key for key in cache.keys_snapshot() if selections.concerns(key[1], report)}
        assert selections.concerned(report) == expected


def test_a_recorded_policy_on_a_reported_host_is_picked_and_a_forgotten_one_by_every_report() -> (
    None
):
    selections = Selections()
    cache = ObjectCache(indexes=(selections.cache_index(),))
    cache.put({"metadata": {"name": "a"}})
    cache.put({"metadata": {"name": "b"}})
    assert selections.concerned(frozenset({"host-esx9"})) == {("", "a"), ("", "b")}  # no plans
    selections.record("a", HostSelector(names=["esx1"]), _plan(frozenset({"esx1"})))
    selections.record("b", HostSelector(names=["esx2"]), _plan(frozenset({"esx2"})))
    assert selections.concerned(frozenset({"host-esx1"})) == {("", "a")}
    selections.record("a", HostSelector(names=["esx3"]), _plan(frozenset({"esx3"})))  # moved
    assert selections.concerned(frozenset({"host-esx1"})) == set()
    selections.forget("b")  # stalled: every report concerns it while cached
    assert selections.concerned(frozenset({"host-esx9"})) == {("", "b")}
    cache.delete(("", "b"))
    cache.delete(("", "a"))  # deleted with its plan still recorded: no longer picked
    assert selections.concerned(frozenset({"host-esx3", "host-esx9"})) == set()


def test_a_kept_selector_plans_as_the_one_recorded() -> None:
    """The selector is kept as its JSON (finding 37): each way of selecting a host reads back
    the same, so an unchanged inventory does not differ and a changed one does."""
    selector = HostSelector.model_validate({"clusters": ["c1"], "namePattern": "^esx[34]$"})
    inventory = ObservedInventory(
        hosts=(host("esx0", cluster="c1"), host("esx3"), host("esx4"), host("esx1"))
    )
    plan = plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec(hosts={"clusters": ["c1"], "namePattern": "^esx[34]$"}),
        inventory=inventory,
        now=NOW,
    )
    assert {h.host.name for h in plan.hosts} == {"esx0", "esx3", "esx4"}
    selections = Selections()
    selections.record("p", selector, plan)
    assert not selections.differs("p", inventory)
    assert selections.differs("p", ObservedInventory(hosts=inventory.hosts[1:]))
