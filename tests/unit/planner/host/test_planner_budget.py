"""maxUnavailable per vSphere cluster across all policies, and reboot windows, in the plan and
the policy's status."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, gpu_host, spec

from dpio.api.conditions import (
    CLUSTER_BUDGET_EXHAUSTED,
    DEGRADED,
    OUTSIDE_REBOOT_WINDOW,
    READY,
    REBOOT_REQUIRED,
    ROLLING_REBOOT,
)
from dpio.api.policy import (
    HostPassthroughPolicyStatus,
    HostStatus,
    RebootPhase,
    RebootPolicy,
    RollingRebootStatus,
)
from dpio.planner import PolicyPlan, plan_policy, policy_status
from dpio.planner.host.budget import ClusterLoad, budget_key
from dpio.planner.observed import ObservedHost, ObservedInventory

# NOW is Wednesday 2025-01-01 12:00 UTC.
OPEN_NOW = {"days": ["Wed"], "start": "11:00", "duration": "2h", "timeZone": "UTC"}
CLOSED_NOW = {"days": ["Wed"], "start": "22:00", "duration": "4h", "timeZone": "Europe/Berlin"}


def pending(name: str, cluster: str | None = "gpu", **state: Any) -> ObservedHost:
    """A host whose A100 is enabled, not active: it needs a reboot."""
    return gpu_host(name, enabled=True, cluster=cluster, **state)


def idle(name: str, cluster: str | None = "gpu", **state: Any) -> ObservedHost:
    return gpu_host(name, enabled=True, active=True, cluster=cluster, **state)


def plan(
    hosts: list[ObservedHost],
    selected: list[str],
    *,
    max_unavailable: int = 1,
    windows: list[dict[str, str]] | None = None,
    reserved: Collection[str] = (),
    previous: HostPassthroughPolicyStatus | None = None,
) -> PolicyPlan:
    reboot = {"policy": "Rolling", "maxUnavailable": max_unavailable, "windows": windows or []}
    return plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec(hosts={"names": selected}, reboot=reboot),
        inventory=ObservedInventory(hosts=tuple(hosts)),
        now=NOW,
        reserved=reserved,
        previous=previous,
    )


def started(result: PolicyPlan) -> list[str]:
    return [a.host for a in result.reboot_actions if type(a).__name__ == "EnterMaintenanceMode"]


def conditions(result: PolicyPlan) -> dict[str, tuple[str, str, str]]:
    status = policy_status(
        result, reboot_policy=RebootPolicy.ROLLING, previous=None, generation=1, now=NOW
    )
    return {c.type: (c.status.value, c.reason, c.message) for c in status.conditions}


@pytest.mark.parametrize(
    ("others", "max_unavailable", "expected"),
    [
        pytest.param([], 1, ["esx01"], id="empty-cluster-one-slot"),
        pytest.param([], 2, ["esx01", "esx02"], id="empty-cluster-two-slots"),
        # Hosts no policy selects still count: whoever took them down.
        pytest.param([idle("esx09", in_maintenance_mode=True)], 1, [], id="unselected-in-mm"),
        pytest.param([idle("esx09", connection_state="notResponding")], 1, [],
                     id="unselected-disconnected"),
        pytest.param([idle("esx09", in_maintenance_mode=True)], 2, ["esx01"],
                     id="unselected-in-mm-one-slot-left"),
        # Another cluster's hosts don't.
        pytest.param([idle("esx09", "cpu", in_maintenance_mode=True)], 1, ["esx01"],
                     id="other-cluster-in-mm"),
        pytest.param([idle("esx09", None, in_maintenance_mode=True)], 1, ["esx01"],
                     id="standalone-in-mm"),
    ],
)  # fmt: skip
def test_the_budget_counts_every_host_of_the_cluster(
    others: list[ObservedHost], max_unavailable: int, expected: list[str]
) -> None:
    hosts = [pending("esx01"), pending("esx02"), *others]
    result = plan(hosts, ["esx01", "esx02"], max_unavailable=max_unavailable)
    assert started(result) == expected


def test_each_cluster_has_its_own_budget_and_a_standalone_host_is_one() -> None:
    hosts = [pending("a1", "A"), pending("a2", "A"), pending("b1", "B"), pending("s1", None),
             pending("s2", None)]  # fmt: skip
    result = plan(hosts, [h.name for h in hosts])
    assert started(result) == ["a1", "b1", "s1", "s2"]
    assert result.reboot.reasons == {"a2": CLUSTER_BUDGET_EXHAUSTED}


def test_hosts_another_policy_holds_count_before_vcenter_shows_them_down() -> None:
    hosts = [pending("esx01"), idle("esx05")]  # esx05: another policy's drain, still running
    assert started(plan(hosts, ["esx01"], reserved=["esx05"])) == []
    assert started(plan(hosts, ["esx01"], reserved=["esx05"], max_unavailable=2)) == ["esx01"]
    assert started(plan(hosts, ["esx01"], reserved=["no-such-host"])) == ["esx01"]


def test_the_strictest_policy_wins_when_it_starts_a_host() -> None:
    """One host of the cluster is down: a policy allowing 2 takes the second slot, a policy
    allowing 1 takes none (its own number caps the cluster total when it starts a host)."""
    hosts = [pending("esx01"), pending("esx02"), idle("esx09", in_maintenance_mode=True)]
    assert started(plan(hosts, ["esx01"], max_unavailable=2)) == ["esx01"]
    assert started(plan(hosts, ["esx02"], max_unavailable=1)) == []


def test_own_hosts_under_way_take_their_slots() -> None:
    record = RollingRebootStatus(
        phase=RebootPhase.DRAINING, since=NOW - timedelta(minutes=1), entered_by_operator=True
    )
    previous = HostPassthroughPolicyStatus(hosts=[HostStatus(name="esx01", rolling_reboot=record)])
    hosts = [pending("esx01"), pending("esx02")]
    result = plan(hosts, ["esx01", "esx02"], previous=previous)
    assert started(result) == []
    assert result.reboot.in_progress == ("esx01",)
    # ...but RollingReboot stays the reason while the policy's own reboot is under way.
    assert conditions(result)[REBOOT_REQUIRED][1] == ROLLING_REBOOT


def test_a_host_waiting_for_the_cluster_says_why_and_is_not_degraded() -> None:
    hosts = [pending("esx01"), idle("esx09", in_maintenance_mode=True)]
    result = plan(hosts, ["esx01"])
    status = policy_status(
        result, reboot_policy=RebootPolicy.ROLLING, previous=None, generation=1, now=NOW
    )
    (host,) = status.hosts
    assert host.message is not None
    assert "unavailable in cluster gpu: 1 (esx09), maxUnavailable is 1" in host.message
    found = {c.type: (c.status.value, c.reason, c.message) for c in status.conditions}
    assert found[DEGRADED][:2] == ("False", "AsExpected")
    assert found[REBOOT_REQUIRED][:2] == ("True", CLUSTER_BUDGET_EXHAUSTED)
    assert "esx01: unavailable in cluster gpu: 1 (esx09)" in found[REBOOT_REQUIRED][2]
    assert found[READY][:2] == ("False", CLUSTER_BUDGET_EXHAUSTED)
    assert status.reboot is None  # no windows


def test_budget_keys() -> None:
    assert budget_key(idle("x", "gpu")) != budget_key(idle("y", None))
    assert budget_key(idle("x", None)) != budget_key(idle("y", None))
    load = ClusterLoad.observe(
        ObservedInventory(hosts=(idle("a", in_maintenance_mode=True), idle("b"))), reserved=["b"]
    )
    assert load.of(idle("c")) == frozenset({"a", "b"})


# Reboot windows.


def test_outside_every_window_no_maintenance_mode_starts() -> None:
    result = plan([pending("esx01"), pending("esx02")], ["esx01", "esx02"], windows=[CLOSED_NOW])
    assert result.reboot_actions == ()
    assert result.reboot.reasons == {"esx01": OUTSIDE_REBOOT_WINDOW, "esx02": OUTSIDE_REBOOT_WINDOW}
    status = policy_status(
        result, reboot_policy=RebootPolicy.ROLLING, previous=None, generation=1, now=NOW
    )
    found = {c.type: (c.status.value, c.reason, c.message) for c in status.conditions}
    assert found[REBOOT_REQUIRED][:2] == ("True", OUTSIDE_REBOOT_WINDOW)
    # 22:00 in Berlin is 21:00 UTC in winter.
    assert "the next opens at 2025-01-01T21:00:00Z" in found[REBOOT_REQUIRED][2]
    assert found[DEGRADED][0] == "False"
    assert status.reboot is not None
    assert (status.reboot.window_open, status.reboot.window_closes) == (False, None)
    assert status.reboot.next_window == NOW.replace(hour=21)
    assert status.model_dump(mode="json", by_alias=True, exclude_none=True)["reboot"] == {
        "windowOpen": False,
        "nextWindow": "2025-01-01T21:00:00Z",
    }


def test_inside_a_window_the_reboot_proceeds() -> None:
    result = plan([pending("esx01")], ["esx01"], windows=[CLOSED_NOW, OPEN_NOW])
    assert started(result) == ["esx01"]
    status = policy_status(
        result, reboot_policy=RebootPolicy.ROLLING, previous=None, generation=1, now=NOW
    )
    assert status.reboot is not None
    assert status.reboot.window_open
    assert status.reboot.window_closes == NOW.replace(hour=13)
    assert status.reboot.next_window is None


@pytest.mark.parametrize(
    ("phase", "in_maintenance_mode", "action"),
    [
        (RebootPhase.DRAINING, True, "RebootHost"),  # drained after the window closed
        (RebootPhase.EXITING, True, "ExitMaintenanceMode"),
    ],
)
def test_a_host_in_the_operators_maintenance_mode_is_finished_after_the_window_closed(
    phase: RebootPhase, in_maintenance_mode: bool, action: str
) -> None:
    record = RollingRebootStatus(
        phase=phase, since=NOW - timedelta(minutes=10), entered_by_operator=True
    )
    previous = HostPassthroughPolicyStatus(hosts=[HostStatus(name="esx01", rolling_reboot=record)])
    observed = pending("esx01", in_maintenance_mode=in_maintenance_mode)
    result = plan([observed, pending("esx02")], ["esx01", "esx02"], windows=[CLOSED_NOW],
                  previous=previous, max_unavailable=2)  # fmt: skip
    assert [(type(a).__name__, a.host) for a in result.reboot_actions] == [(action, "esx01")]
    assert result.reboot.reasons == {"esx02": OUTSIDE_REBOOT_WINDOW}


def test_no_status_reboot_without_windows_or_without_pending_reboots() -> None:
    for result in (
        plan([pending("esx01")], ["esx01"]),
        plan([idle("esx01")], ["esx01"], windows=[CLOSED_NOW]),
    ):
        status = policy_status(
            result, reboot_policy=RebootPolicy.ROLLING, previous=None, generation=1, now=NOW
        )
        assert status.reboot is None


def test_an_unknown_time_zone_stalls_the_policy() -> None:
    window = dict(CLOSED_NOW, timeZone="Europe/Atlantis")
    result = plan([pending("esx01")], ["esx01"], windows=[window])
    assert result.stalled is not None
    assert result.stalled.reason == "InvalidSpec"
    assert "unknown time zone 'Europe/Atlantis'" in result.stalled.message
    assert result.empty
