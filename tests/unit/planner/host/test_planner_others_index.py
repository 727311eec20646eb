"""OthersIndex: the other policies indexed by the hosts and clusters their selectors name, so a
plan asks only those that can select its hosts (docs/benchmarks.md, finding 22). It must never
leave out a policy that selects a planned host: the plans with and without it are the same."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError
from tests.unit.planner.builders import NOW, host, spec
from tests.unit.property.strategies import PROFILE, observed_hosts, policy_specs

from dpio.api.policy import HostPassthroughPolicySpec
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.rules import OtherPolicy, OthersIndex, Rivals
from dpio.planner.observed import ObservedInventory


def _other(name: str, **fields: Any) -> OtherPolicy:
    return OtherPolicy.compile(name, NOW, spec(**fields))


BY_NAME = _other("by-name", hosts={"names": ["esx01"]})
ELSEWHERE = _other("elsewhere", hosts={"names": ["esx09"]})
BY_CLUSTER = _other("by-cluster", hosts={"clusters": ["GPU-Cluster"]})
BY_MEMBERSHIP = _other("by-membership", hosts={"clusters": ["Listed"]})
OTHER_CLUSTER = _other("other-cluster", hosts={"clusters": ["CPU-Cluster"]})
BY_PATTERN = _other("by-pattern", hosts={"namePattern": "^nomatch"})


def test_near_keeps_the_policies_that_may_select_the_hosts_in_the_order_given() -> None:
    others = [BY_PATTERN, ELSEWHERE, BY_NAME, OTHER_CLUSTER, BY_MEMBERSHIP, BY_CLUSTER]
    index = OthersIndex(others)
    esx01 = host("esx01", cluster="GPU-Cluster")
    inventory = ObservedInventory(hosts=(esx01,), clusters={"Listed": ("esx01",)})

    near = [o.name for o in index.near((esx01,), inventory)]

    # A name pattern is always asked (Rivals.build decides); a name or a cluster only when it
    # names a planned host, by the host's cluster or by the inventory's list of members.
    assert near == ["by-pattern", "by-name", "by-membership", "by-cluster"]
    assert index.near((), inventory) == (BY_PATTERN,)
    assert index.names == {o.name for o in others}


def test_a_spec_that_does_not_compile_is_listed_but_never_near() -> None:
    broken = OtherPolicy("broken", NOW, spec(hosts={"names": ["esx01"], "namePattern": "["}))
    index = OthersIndex([broken, BY_NAME])
    esx01 = host("esx01")

    assert index.names == {"broken", "by-name"}
    near = index.near((esx01,), ObservedInventory(hosts=(esx01,)))
    assert [o.name for o in near] == ["by-name"]


def test_an_uncompiled_policy_is_compiled_once_by_the_index() -> None:
    raw = OtherPolicy("raw", NOW, spec(hosts={"names": ["esx01"]}))
    esx01 = host("esx01")
    index = OthersIndex([raw])

    (first,) = index.near((esx01,), ObservedInventory(hosts=(esx01,)))
    (again,) = index.near((esx01,), ObservedInventory(hosts=(esx01,)))

    assert first.compiled is not None
    assert again.compiled is first.compiled


def _spec(body: dict[str, Any]) -> HostPassthroughPolicySpec:
    try:
        return HostPassthroughPolicySpec.model_validate(body)
    except ValidationError:
        assume(False)  # refused at admission: never in the cache as a valid policy
        raise


inventories = st.builds(
    lambda hosts, members: ObservedInventory(
        hosts=tuple(hosts), clusters={"GPU-Cluster": tuple(members)}
    ),
    st.lists(observed_hosts, max_size=3),
    st.lists(st.sampled_from(["esx01", "esx02", "gone"]), max_size=2),
)


@PROFILE
@given(
    mine=policy_specs,
    bodies=st.lists(policy_specs, max_size=4),
    inventory=inventories,
    ages=st.lists(st.integers(-2, 2), min_size=4, max_size=4),
)
def test_the_index_plans_exactly_as_the_whole_list(
    mine: dict[str, Any],
    bodies: list[dict[str, Any]],
    inventory: ObservedInventory,
    ages: list[int],
) -> None:
    others = [
        OtherPolicy(f"other-{i}", NOW + timedelta(days=ages[i]), _spec(body))
        for i, body in enumerate(bodies)
    ]
    me = _spec(mine)

    def plan(given_others: list[OtherPolicy] | OthersIndex) -> Any:
        return plan_policy(
            name="mine", creation_timestamp=NOW, spec=me, inventory=inventory, now=NOW,
            others=given_others,
        )  # fmt: skip

    whole, indexed = plan(others), plan(OthersIndex(others))
    assert indexed.updates == whole.updates
    assert indexed.problems == whole.problems
    assert indexed.hosts == whole.hosts

    def rivals(given_others: list[OtherPolicy] | OthersIndex) -> list[tuple[str, frozenset[str]]]:
        built = Rivals.build("mine", NOW, given_others, inventory)
        return [(r.name, r.host_names) for r in built.rivals]

    assert rivals(OthersIndex(others)) == rivals(others)


def test_a_compiled_policy_keeps_no_spec_and_still_claims_its_hosts() -> None:
    kept = OtherPolicy.compile("kept", NOW, spec(hosts={"names": ["esx01"]}))
    esx01 = host("esx01")

    assert kept.spec is None  # the compiled form is all a plan asks
    (near,) = OthersIndex([kept]).near((esx01,), ObservedInventory(hosts=(esx01,)))
    assert near.name == "kept"
    assert OthersIndex([OtherPolicy("neither", NOW, None)]).names == {"neither"}
