"""The other policies for the conflict rule: parsed once per generation, compiled once, and
matched only against the hosts being planned, with the same answers as before."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.planner.builders import GPU, NIC, NOW, X710, dev, host, info, spec

from dpio.api.policy import HostSelector
from dpio.planner import OtherPolicy, plan_policy
from dpio.planner.host.rules import HostMatcher
from dpio.planner.observed import ObservedInventory
from dpio.planner.selection import select_hosts
from dpio.reconcile.cache import ObjectCache, key_of
from dpio.reconcile.policy.others import OtherPolicies


def body(name: str, generation: int | None = 1, rv: str = "1", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": generation,
                     "resourceVersion": rv, "creationTimestamp": "2025-01-01T00:00:00Z", **meta},
        "spec": {"hosts": {"names": ["esx01"]}, "devices": [{"address": GPU}]},
    }  # fmt: skip


def test_each_policy_is_parsed_once_per_generation_not_per_status_write() -> None:
    cache = OtherPolicies()
    cache.others([body("a"), body("b"), body("c")], "a")
    assert cache.parses == 3

    # Status writes move every resourceVersion; the generation stays: nothing is parsed again.
    got = cache.others([body("a", rv="9"), body("b", rv="8"), body("c", rv="7")], "a")
    assert cache.parses == 3
    assert [o.name for o in got] == ["b", "c"]
    assert all(o.compiled is not None for o in got)

    cache.others([body("a"), body("b", generation=2), body("c")], "c")  # b's spec changed
    assert cache.parses == 4


@pytest.mark.parametrize(
    ("bodies", "expected"),
    [
        pytest.param([body("me"), body("b")], ["b"], id="self-left-out"),
        pytest.param([body("b", deletionTimestamp="2025-01-02T00:00:00Z")], [], id="deleting"),
        pytest.param([{**body("b"), "spec": {"hosts": {}, "devices": "x"}}], [], id="no-parse"),
        pytest.param([{**body("b"), "spec": {"hosts": {"namePattern": "("}, "devices": []}}],
                     [], id="bad-regex"),
        pytest.param([body("b", uid="", generation=None, resourceVersion="3")], ["b"],
                     id="no-generation"),
    ],
)  # fmt: skip
def test_who_counts_as_another_policy(bodies: list[dict[str, Any]], expected: list[str]) -> None:
    assert [o.name for o in OtherPolicies().others(bodies, "me")] == expected


def test_a_policy_gone_from_the_cache_is_forgotten() -> None:
    cache = OtherPolicies()
    cache.others([body("a"), body("b")], "x")
    cache.others([body("a")], "x")
    cache.others([body("a"), body("b")], "x")  # b came back (recreated): parsed anew
    assert cache.parses == 3


INVENTORY = ObservedInventory(
    hosts=(
        host("esx01", cluster="gpu"),
        host("esx02", cluster="gpu"),
        host("esx03"),
        host("lab-esx04", cluster="lab"),
    ),
    clusters={"gpu": ("esx01", "esx02"), "lab": ("lab-esx04",), "empty": ()},
)


@pytest.mark.parametrize(
    "selector",
    [
        {"names": ["esx03"]},
        {"names": ["esx03", "nowhere"]},
        {"clusters": ["gpu"]},
        {"clusters": ["lab", "empty", "missing"]},
        {"namePattern": "^esx0[23]$"},
        {"names": ["esx01"], "clusters": ["lab"], "namePattern": "3$"},
        {"namePattern": "^nothing$"},
    ],
)
def test_the_compiled_host_matcher_selects_what_select_hosts_selects(
    selector: dict[str, Any],
) -> None:
    parsed = HostSelector.model_validate(selector)
    matcher = HostMatcher.from_selector(parsed)
    by_matcher = [h.name for h in INVENTORY.hosts if matcher.selects(h, INVENTORY)]
    assert by_matcher == [h.name for h in select_hosts(parsed, INVENTORY).hosts]


CONFLICT = ObservedInventory(
    hosts=(
        host("esx01", (dev(GPU), dev(NIC, X710)), (info(GPU), info(NIC))),
        host("esx02", (dev(GPU),), (info(GPU),)),
    )
)


@pytest.mark.parametrize("compiled", [False, True])
def test_a_compiled_other_policy_plans_exactly_like_a_plain_one(compiled: bool) -> None:
    exclusive = spec(hosts={"names": ["esx01", "esx02"]}, devices=[{"address": NIC}],
                     exclusive=True)  # fmt: skip
    unrelated = spec(hosts={"names": ["esx02"]}, devices=[{"address": GPU}])
    older = NOW.replace(year=2024)
    make = OtherPolicy.compile if compiled else OtherPolicy
    others = [make("older", older, exclusive), make("elsewhere", older, unrelated)]

    plan = plan_policy(name="me", creation_timestamp=NOW, spec=spec(), inventory=CONFLICT,
                       now=NOW, others=others)  # fmt: skip

    assert plan.updates == ()  # the older exclusive policy keeps esx01's GPU off
    assert [p.reason for p in plan.problems] == ["PolicyConflict"]
    assert "older" in plan.problems[0].message


def test_the_other_policies_are_walked_again_only_when_the_cache_says_one_changed() -> None:
    cache = ObjectCache()
    for name in ("a", "b", "c"):
        cache.put(body(name))
    others = OtherPolicies()

    def names(me: str) -> list[str]:
        return [o.name for o in others.others_at(cache.desired_changes, cache.objects, me)]

    assert names("a") == ["b", "c"]
    assert names("b") == ["a", "c"]
    status_only = {**body("c", rv="2"), "status": {"observedGeneration": 1}}
    cache.put(status_only)  # a status write: nobody's rules changed
    assert names("c") == ["a", "b"]
    assert others.walks == 1
    cache.delete(key_of(body("b")))
    assert names("a") == ["c"]
    assert others.walks == 2


def test_the_index_is_built_again_only_when_the_cache_says_a_policy_changed() -> None:
    cache = ObjectCache()
    for name in ("a", "b"):
        cache.put(body(name))
    others = OtherPolicies()

    first = others.index_at(cache.desired_changes, cache.objects)
    cache.put({**body("b", rv="2"), "status": {"observedGeneration": 1}})  # status only
    assert others.index_at(cache.desired_changes, cache.objects) is first
    assert first.names == {"a", "b"}
    assert others.walks == 1

    cache.put(body("c"))
    again = others.index_at(cache.desired_changes, cache.objects)
    assert again is not first
    assert again.names == {"a", "b", "c"}
    assert others.walks == 2
    # others_at shares the walk the index was built from.
    assert [o.name for o in others.others_at(cache.desired_changes, cache.objects, "a")] == [
        "b",
        "c",
    ]
    assert others.walks == 2
