"""The pause switch (spec.suspend) and the operator's dry-run, in the pure planner: a suspended
plan holds no vCenter call, says which calls it holds back, and reports what is observed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner import builders as hpp
from tests.unit.planner.vm import builders as vmda

from dpio.api.assignment import VMDeviceAssignmentStatus
from dpio.api.conditions import DRY_RUN, SUSPENDED, ConditionStatus
from dpio.api.policy import (
    DeviceState,
    HostPassthroughPolicyStatus,
    HostStatus,
    RebootPhase,
    RebootPolicy,
    RollingRebootStatus,
)
from dpio.planner.conditions import find
from dpio.planner.host.deletion import held_deletion, plan_deletion
from dpio.planner.host.plan import PolicyPlan, plan_policy
from dpio.planner.host.status import policy_status
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.suspension import Suspension, suspension_of
from dpio.planner.vm.status import assignment_status
from dpio.planner.vm.suspend import held_plan

T, F = ConditionStatus.TRUE, ConditionStatus.FALSE
SUSPEND, DRY = Suspension(SUSPENDED), Suspension(DRY_RUN)


@pytest.mark.parametrize(
    ("suspend", "dry_run", "reason"),
    [
        (False, False, None),
        (True, False, SUSPENDED),
        (False, True, DRY_RUN),
        (True, True, SUSPENDED),
    ],
)
def test_the_objects_switch_wins_over_the_operators_mode(
    suspend: bool, dry_run: bool, reason: str | None
) -> None:
    got = suspension_of(suspend=suspend, dry_run=dry_run)
    assert (got.reason if got else None) == reason


def plan(
    *hosts: ObservedHost,
    suspension: Suspension | None,
    previous: HostPassthroughPolicyStatus | None = None,
    **fields: Any,
) -> PolicyPlan:
    return plan_policy(
        name="gpu-hosts",
        creation_timestamp=hpp.NOW,
        spec=hpp.spec(hosts={"names": [h.name for h in hosts]}, **fields),
        inventory=ObservedInventory(hosts=hosts),
        now=hpp.NOW,
        previous=previous,
        suspension=suspension,
    )


def status(p: PolicyPlan, previous: HostPassthroughPolicyStatus | None = None) -> Any:
    return policy_status(
        p, reboot_policy=RebootPolicy.MANUAL, previous=previous, generation=2, now=hpp.NOW
    )


def conditions(s: Any) -> dict[str, tuple[ConditionStatus, str]]:
    return {c.type: (c.status, c.reason) for c in s.conditions}


@pytest.mark.parametrize("suspension", [SUSPEND, DRY], ids=["suspend", "dry-run"])
def test_a_suspended_policy_makes_no_call_and_names_the_ones_it_holds_back(
    suspension: Suspension,
) -> None:
    hosts = (hpp.gpu_host("esx01"), hpp.gpu_host("esx02", enabled=True))  # esx02: reboot
    free = plan(*hosts, suspension=None)
    assert free.updates
    assert not free.empty

    held = plan(*hosts, suspension=suspension)

    assert held.empty
    assert (held.updates, held.reboot_actions) == ((), ())
    assert held.held is not None
    assert held.held.pending == (f"update passthrough on esx01 (enable {hpp.GPU})",)
    s = status(held)
    got = conditions(s)
    assert got["Suspended"] == (T, suspension.reason)
    assert got["Ready"] == (F, suspension.reason)  # changes wait: the spec is not in effect
    assert got["Reconciling"] == (F, suspension.reason)  # nothing is under way
    assert got["Stalled"][0] is F
    suspended = find(s.conditions, "Suspended")
    assert suspended is not None
    assert f"update passthrough on esx01 (enable {hpp.GPU})" in (suspended.message)
    # Rows are what vSphere reports, not the projection of a call that is not made.
    states = {h.name: h.devices[0].state for h in s.hosts}
    assert states == {"esx01": DeviceState.DISABLED, "esx02": DeviceState.PENDING_REBOOT}


def test_a_suspended_converged_policy_is_ready_and_says_it_is_suspended() -> None:
    held = plan(hpp.gpu_host(enabled=True, active=True), suspension=SUSPEND)

    got = conditions(status(held))

    assert held.empty
    assert held.held is not None
    assert held.held.pending == ()
    assert got["Ready"] == (T, "Reconciled")
    assert got["Suspended"] == (T, SUSPENDED)


def test_not_suspended_the_condition_is_false_as_expected() -> None:
    got = conditions(status(plan(hpp.gpu_host(), suspension=None)))
    assert got["Suspended"] == (F, "AsExpected")


def _draining(name: str) -> HostStatus:
    record = RollingRebootStatus(
        phase=RebootPhase.DRAINING, since=hpp.NOW - timedelta(minutes=2), entered_by_operator=True
    )
    return HostStatus(name=name, rolling_reboot=record)


def test_a_rolling_reboot_in_flight_stops_before_its_next_step() -> None:
    # esx01 entered maintenance mode on the operator's request; the next step would reboot it.
    in_mm = hpp.gpu_host("esx01", enabled=True, in_maintenance_mode=True)
    previous = HostPassthroughPolicyStatus(hosts=[_draining("esx01")])
    rolling = {"reboot": {"policy": "Rolling"}}
    free = plan(in_mm, suspension=None, previous=previous, **rolling)
    assert [type(a).__name__ for a in free.reboot_actions] == ["RebootHost"]

    held = plan(in_mm, suspension=SUSPEND, previous=previous, **rolling)

    assert held.reboot_actions == ()
    assert held.held is not None
    assert held.held.pending == ("reboot esx01",)
    assert held.reboot.records == {"esx01": previous.hosts[0].rolling_reboot}
    assert held.reboot.in_progress == ()
    (host_status,) = status(held, previous).hosts
    assert host_status.rolling_reboot == previous.hosts[0].rolling_reboot  # kept, not advanced
    assert host_status.message is not None
    assert "spec.suspend" in host_status.message


def test_a_suspended_deletion_is_held_only_when_it_would_write() -> None:
    spec = hpp.spec(deletionPolicy="Disable")
    on = ObservedInventory(hosts=(hpp.gpu_host(enabled=True, active=True),))
    updates = plan_deletion(name="gpu-hosts", spec=spec, inventory=on)
    assert updates  # the A100 would be disabled

    held = held_deletion(SUSPEND, updates)

    assert held is not None
    assert held.pending == (f"update passthrough on esx01 (disable {hpp.GPU})",)
    assert held_deletion(None, updates) is None  # not suspended: the cleanup runs
    assert held_deletion(SUSPEND, ()) is None  # nothing to write: the object may go


def test_a_suspended_assignment_makes_no_call_and_keeps_what_status_recorded() -> None:
    previous = VMDeviceAssignmentStatus()
    free = vmda.plan(vmda.observe())  # attach the A100 to a powered-off VM
    assert free.calls.reconfigure is not None

    held = held_plan(free, SUSPEND, previous)

    assert held.empty
    assert held.outcome.previous is None  # nothing recorded: nothing is changed
    assert held.outcome.added == frozenset()
    assert held.outcome.held is not None
    assert held.outcome.held.pending == ("reconfigure the VM (1 device(s) to add, 0 to remove)",)
    s = assignment_status(held, previous=previous, generation=1, now=vmda.NOW)
    got = conditions(s)
    assert got["Suspended"] == (T, SUSPENDED)
    assert got["Ready"] == (F, SUSPENDED)
    assert got["Reconciling"] == (F, SUSPENDED)
    assert [d.attached for d in s.devices] == [False]  # as observed
    assert held_plan(free, None, previous) is free


def test_a_suspended_power_cycle_is_held_too() -> None:
    running = vmda.observe(vmda.vm(power_state="poweredOn"))
    free = vmda.plan(running, vmda.assignment(powerPolicy="PowerOff"))
    assert free.calls.power_before is not None

    held = held_plan(free, DRY, VMDeviceAssignmentStatus())

    assert held.empty
    assert held.outcome.held is not None
    assert held.outcome.held.pending[0] == "power the VM off"
    assert held.outcome.held.suspension.reason == DRY_RUN
