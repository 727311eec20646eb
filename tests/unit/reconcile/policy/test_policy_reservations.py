"""The in-process reservations that keep two policies from taking a cluster's last slot."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, gpu_host, spec

from dpio.planner import ObservedInventory, PolicyPlan, plan_policy
from dpio.reconcile.policy.reservations import RebootReservations

POLICIES = 8
# Every policy selects one host of cluster "gpu"; each host needs a reboot.
INVENTORY = ObservedInventory(
    hosts=tuple(gpu_host(f"esx{i:02d}", enabled=True, cluster="gpu") for i in range(POLICIES))
)


def plan_for(index: int, held: Collection[str], max_unavailable: int = 2) -> PolicyPlan:
    reboot = {"policy": "Rolling", "maxUnavailable": max_unavailable}
    return plan_policy(
        name=f"p{index}",
        creation_timestamp=NOW,
        spec=spec(hosts={"names": [f"esx{index:02d}"]}, reboot=reboot),
        inventory=INVENTORY,
        now=NOW,
        reserved=held,
    )


def started(plan: PolicyPlan) -> list[str]:
    return [a.host for a in plan.reboot_actions]


@pytest.mark.parametrize("max_unavailable", [1, 2, 3])
def test_policies_deciding_at_the_same_moment_never_overdraw_the_cluster(
    max_unavailable: int,
) -> None:
    """Eight policies on eight threads, released together; each plan sleeps after reading the
    holds, so without the reservation's lock every one of them would see an empty cluster."""
    reservations = RebootReservations()
    names = [f"p{i}" for i in range(POLICIES)]
    barrier = threading.Barrier(POLICIES)

    def reconcile(index: int) -> list[str]:
        def slow_plan(held: frozenset[str]) -> PolicyPlan:
            time.sleep(0.01)  # the decision takes a while: others would read stale holds
            return plan_for(index, held, max_unavailable)

        barrier.wait()
        return started(reservations.decide(f"p{index}", names, slow_plan))

    with ThreadPoolExecutor(POLICIES) as pool:
        results = list(pool.map(reconcile, range(POLICIES)))
    drained = sorted(h for hosts in results for h in hosts)
    assert len(drained) == max_unavailable
    held = set().union(*(reservations.held(n) for n in names))
    assert held == set(drained)


def test_without_holds_each_policy_would_take_a_slot() -> None:
    """The control: the plan itself sees no other policy's drain unless it is held."""
    assert all(started(plan_for(i, frozenset(), 1)) == [f"esx{i:02d}"] for i in range(3))


def test_a_hold_lasts_until_the_policys_next_decision_replaces_it() -> None:
    reservations = RebootReservations()
    names = ["p0", "p1"]
    first = reservations.decide("p0", names, lambda held: plan_for(0, held, 1))
    assert started(first) == ["esx00"]
    # p1 decides while vCenter does not show esx00 down yet: the hold keeps the slot.
    assert started(reservations.decide("p1", names, lambda held: plan_for(1, held, 1))) == []
    # p0's next decision finds nothing under way (a plan with no records): the slot is free.
    reservations.decide("p0", names, lambda held: plan_for(0, held, 1).__class__())
    assert reservations.held("p0") == frozenset()
    assert started(reservations.decide("p1", names, lambda held: plan_for(1, held, 1))) == ["esx01"]


def test_a_stalled_plan_keeps_what_the_policy_held() -> None:
    reservations = RebootReservations()
    reservations.decide("p0", ["p0"], lambda held: plan_for(0, held, 1))
    stalled = plan_policy(
        name="p0",
        creation_timestamp=NOW,
        spec=spec(reboot={"policy": "Rolling", "windows": [
            {"days": ["Mon"], "start": "22:00", "duration": "1h", "timeZone": "Nowhere/Land"}]}),
        inventory=INVENTORY,
        now=NOW,
    )  # fmt: skip
    assert stalled.stalled is not None
    reservations.decide("p0", ["p0"], lambda held: stalled)
    assert reservations.held("p0") == {"esx00"}


def test_deleted_policies_release_their_holds() -> None:
    reservations = RebootReservations()
    reservations.decide("p0", ["p0", "p1"], lambda held: plan_for(0, held, 1))
    reservations.decide("p1", ["p1"], lambda held: plan_for(1, held, 1))  # p0 is gone
    assert reservations.held("p0") == frozenset()
    assert reservations.held("p1") == {"esx01"}
    reservations.forget("p1")
    assert reservations.held("p1") == frozenset()


def rolling(name: str, phase: str, entered: bool) -> dict[str, Any]:
    since = (NOW - timedelta(minutes=1)).isoformat()
    record = {"phase": phase, "since": since, "enteredByOperator": entered}
    hosts = [{"name": "esx00", "rollingReboot": record}, {"name": "esx07"}]
    return {"metadata": {"name": name}, "status": {"hosts": hosts}}


@pytest.mark.parametrize(
    ("phase", "entered", "held"),
    [
        ("Draining", True, {"esx00"}),
        ("Draining", False, set()),  # the drain timed out: the host was left running
        ("Rebooting", True, {"esx00"}),
        ("Exiting", True, {"esx00"}),
    ],
)
def test_after_a_restart_holds_come_from_the_cached_statuses(
    phase: str, entered: bool, held: set[str]
) -> None:
    reservations = RebootReservations()
    reservations.seed(lambda: [rolling("p9", phase, entered), {"metadata": {"name": "p1"}}])
    assert reservations.held("p9") == held
    names = ["p1", "p9"]
    result = reservations.decide("p1", names, lambda others: plan_for(1, others, 1))
    assert started(result) == ([] if held else ["esx01"])


def test_seeding_happens_once() -> None:
    reservations = RebootReservations()
    calls = []

    def bodies() -> list[dict[str, Any]]:
        calls.append(1)
        return [rolling("p9", "Rebooting", True)]

    reservations.seed(bodies)
    reservations.seed(bodies)
    assert len(calls) == 1


def test_only_policies_holding_hosts_are_kept() -> None:
    """Every decision walks the holds: with an entry per policy, 5,000 policies made each
    reconcile O(policies) (docs/benchmarks.md, finding 27)."""
    reservations = RebootReservations()
    names = [f"p{i}" for i in range(POLICIES)]
    for i in range(POLICIES):  # nothing to reboot: no hold
        reservations.decide(f"p{i}", names, lambda held: PolicyPlan())
    assert len(reservations) == 0
    reservations.decide("p0", names, lambda held: plan_for(0, held, 1))
    assert len(reservations) == 1
    reservations.decide("p0", names, lambda held: PolicyPlan())  # its reboot is done
    assert len(reservations) == 0
    assert reservations.held("p0") == frozenset()
