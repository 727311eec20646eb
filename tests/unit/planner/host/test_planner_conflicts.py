"""Two policies wanting opposite states for one device on one host: the older one wins."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.unit.planner.builders import GPU, NIC, NOW, X710, dev, host, info, spec

from dpio.api.conditions import POLICY_CONFLICT
from dpio.api.policy import HostPassthroughPolicySpec
from dpio.planner.host.plan import PolicyPlan, plan_policy
from dpio.planner.host.rules import OtherPolicy
from dpio.planner.observed import ObservedInventory

INVENTORY = ObservedInventory(
    hosts=(host("esx01", (dev(GPU), dev(NIC, X710)), (info(GPU), info(NIC))),)
)
WANTS_GPU = spec(devices=[{"address": GPU}])
NIC_ONLY_EXCLUSIVE = spec(devices=[{"address": NIC}], exclusive=True)
OLDER, NEWER = NOW - timedelta(days=1), NOW + timedelta(days=1)


def plan(
    name: str,
    me: HostPassthroughPolicySpec,
    others: list[OtherPolicy],
    inventory: ObservedInventory = INVENTORY,
) -> PolicyPlan:
    return plan_policy(
        name=name, creation_timestamp=NOW, spec=me, inventory=inventory, now=NOW, others=others
    )


@pytest.mark.parametrize(
    ("other_name", "other_created", "i_yield"),
    [
        ("exclusive", OLDER, True),  # older exclusive policy wants the GPU off
        ("exclusive", NEWER, False),  # I am older: I win, the other reports the conflict
        ("aaa", NOW, True),  # same creationTimestamp: the name decides
        ("zzz", NOW, False),
    ],
)
def test_older_policy_wins(other_name: str, other_created: datetime, i_yield: bool) -> None:
    other = OtherPolicy(other_name, other_created, NIC_ONLY_EXCLUSIVE)
    result = plan("mmm", WANTS_GPU, [other])
    enabled = [c.id for u in result.updates for c in u.changes]
    assert enabled == ([] if i_yield else [GPU])
    conflicts = [p for p in result.problems if p.reason == POLICY_CONFLICT]
    assert bool(conflicts) is i_yield
    if i_yield:
        assert other_name in conflicts[0].message
        row = result.hosts[0].devices[0]
        assert other_name in row.message


def test_the_newer_exclusive_policy_leaves_the_device_to_the_older_one() -> None:
    enabled_gpu = ObservedInventory(
        hosts=(host("esx01", (dev(GPU), dev(NIC, X710)), (info(GPU, enabled=True), info(NIC))),)
    )
    older_gpu = OtherPolicy("gpu", OLDER, WANTS_GPU)
    result = plan("exclusive", NIC_ONLY_EXCLUSIVE, [older_gpu], enabled_gpu)
    # It still enables its NIC, but does not disable the GPU the older policy selects.
    assert [c.id for u in result.updates for c in u.changes] == [NIC]
    assert [p.reason for p in result.problems] == [POLICY_CONFLICT]
    assert "gpu" in result.problems[0].message


def test_without_the_older_policy_exclusive_disables_it() -> None:
    enabled_gpu = ObservedInventory(
        hosts=(host("esx01", (dev(GPU), dev(NIC, X710)), (info(GPU, enabled=True), info(NIC))),)
    )
    result = plan("exclusive", NIC_ONLY_EXCLUSIVE, [], enabled_gpu)
    assert [(c.id, c.passthru_enabled) for u in result.updates for c in u.changes] == [
        (NIC, True),
        (GPU, False),
    ]


def test_no_conflict_between_policies_that_agree() -> None:
    same = OtherPolicy("twin", OLDER, WANTS_GPU)
    result = plan("mine", WANTS_GPU, [same])
    assert [c.id for u in result.updates for c in u.changes] == [GPU]
    assert result.problems == ()


def test_policy_on_other_hosts_does_not_conflict() -> None:
    elsewhere = OtherPolicy(
        "far", OLDER, spec(hosts={"names": ["esx99"]}, devices=[{"address": NIC}], exclusive=True)
    )
    result = plan("mine", WANTS_GPU, [elsewhere])
    assert [c.id for u in result.updates for c in u.changes] == [GPU]
