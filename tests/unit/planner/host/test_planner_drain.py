"""A drain that maintenance mode can't finish is not started: the VMs are named (DrainBlocked)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.unit.planner.builders import NOW, gpu_host, host, spec

from dpio.api.conditions import DEGRADED, DRAIN_BLOCKED
from dpio.api.policy import RebootPolicy, RebootSpec
from dpio.planner import plan_policy, policy_status
from dpio.planner.host.drain import drain_blockers
from dpio.planner.host.reboot import RebootCandidate, plan_reboots
from dpio.planner.observed import ObservedInventory, ObservedVM

ROLLING = RebootSpec(policy=RebootPolicy.ROLLING, max_unavailable=1)
AUTO = "fullyAutomated"


def vm(name: str, power: str = "poweredOn", drs: str | None = AUTO, **fields: bool) -> ObservedVM:
    return ObservedVM(name=name, power_state=power, drs_behavior=drs, **fields)


@pytest.mark.parametrize(
    ("vms", "blocked"),
    [
        ((vm("web"),), ()),  # DRS moves it
        ((vm("gpu", passthrough=True),), ("gpu (PCI passthrough device)",)),
        ((vm("ft", fault_tolerance=True),), ("ft (Fault Tolerance)",)),
        ((vm("batch", drs="manual"),), ("batch (DRS manual)",)),
        ((vm("half", drs="partiallyAutomated"),), ("half (DRS partiallyAutomated)",)),
        ((vm("off", drs="disabled"),), ("off (DRS disabled)",)),
        ((vm("alone", drs=None),), ("alone (host is in no DRS cluster)",)),
        # Powered off: not evacuated (evacuatePoweredOffVms=False), so no obstacle.
        ((vm("gpu", "poweredOff", passthrough=True), vm("x", "poweredOff", drs=None)), ()),
        ((vm("gpu", "suspended", passthrough=True),), ()),
        (
            (vm("b", drs="manual"), vm("a", passthrough=True), vm("c")),
            ("a (PCI passthrough device)", "b (DRS manual)"),
        ),
    ],
)
def test_drain_blockers(vms: tuple[ObservedVM, ...], blocked: tuple[str, ...]) -> None:
    assert drain_blockers(host("esx01", vms=vms)) == blocked


def test_a_blocked_host_is_not_drained_and_the_next_one_is() -> None:
    blocked = host("esx01", vms=(vm("gpu-vm", passthrough=True), vm("web")))
    free = host("esx02", vms=(vm("web-2"),))
    result = plan_reboots(
        ROLLING,
        timedelta(minutes=30),
        [RebootCandidate(blocked, True), RebootCandidate(free, True)],
        {},
        NOW,
    )
    assert [(type(a).__name__, a.host) for a in result.actions] == [
        ("EnterMaintenanceMode", "esx02")
    ]
    assert "esx01" not in result.records
    assert [p.reason for p in result.problems] == [DRAIN_BLOCKED]
    assert "gpu-vm (PCI passthrough device)" in result.problems[0].message
    assert "web" not in result.problems[0].message.replace("esx01", "")


def test_drain_blocked_is_reported_by_name_in_the_policy_status() -> None:
    observed = gpu_host(enabled=True, vms=(vm("train-7", passthrough=True), vm("db", drs="manual")))
    rolling = spec(reboot={"policy": "Rolling"})
    plan = plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=rolling,
        inventory=ObservedInventory(hosts=(observed,)),
        now=NOW,
    )
    assert plan.reboot_actions == ()
    status = policy_status(
        plan, reboot_policy=RebootPolicy.ROLLING, previous=None, generation=1, now=NOW
    )
    degraded = next(c for c in status.conditions if c.type == DEGRADED)
    assert (degraded.status.value, degraded.reason) == ("True", DRAIN_BLOCKED)
    assert "train-7 (PCI passthrough device)" in degraded.message
    assert "db (DRS manual)" in degraded.message
    assert status.hosts[0].rolling_reboot is None
    assert "train-7" in (status.hosts[0].message or "")
