"""The plan for one HostPassthroughPolicy: every host's changes, reboot steps, what to report.

`plan_policy` is the entry point for the reconciler: observed inventory + spec (+ the other
policies, the previous status, `now`) -> `PolicyPlan`. Apply `updates` first (one
`UpdatePassthruConfig` per host), then `reboot_actions`; then write `policy_status(...)`.
An empty plan (`plan.empty`) means no vSphere call at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dpio.api.common import parse_duration
from dpio.api.conditions import HOST_UNREACHABLE, INVALID_SPEC
from dpio.api.policy import (
    HostPassthroughPolicySpec,
    HostPassthroughPolicyStatus,
    RebootPhase,
    RollingRebootStatus,
)
from dpio.planner.conditions import Problem
from dpio.planner.host.budget import ClusterLoad
from dpio.planner.host.host_plan import HostPlan, PassthruChange, plan_host
from dpio.planner.host.in_use import DeviceClaim
from dpio.planner.host.reboot import RebootAction, RebootCandidate, RebootPlan, plan_reboots
from dpio.planner.host.rules import OtherPolicy, OthersIndex, PolicyRules, Rivals
from dpio.planner.host.steps import TaskSeen
from dpio.planner.host.suspend import (
    describe_action,
    describe_update,
    frozen_reboot,
    unfinished_reboots,
)
from dpio.planner.host.windows import WindowState, window_state
from dpio.planner.observed import ObservedHost, ObservedInventory
from dpio.planner.selection import InvalidSpecError, select_hosts
from dpio.planner.suspension import Held, Suspension, held_calls


@dataclass(frozen=True, slots=True)
class UpdatePassthruConfig:
    """One `HostPciPassthruSystem.UpdatePassthruConfig(config[])` call: synchronous, not a task,
    needs privilege Host.Config.PciPassthru (vSphere API reference)."""

    host: str
    moref: str
    changes: tuple[PassthruChange, ...]


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    updates: tuple[UpdatePassthruConfig, ...] = ()
    reboot_actions: tuple[RebootAction, ...] = ()
    hosts: tuple[HostPlan, ...] = ()
    missing_hosts: tuple[str, ...] = ()  # named in the spec, unknown to vCenter
    reboot: RebootPlan = field(default_factory=lambda: RebootPlan(records={}))
    problems: tuple[Problem, ...] = ()  # Degraded, in host order
    stalled: Problem | None = None  # needs a human: the spec can't be acted on
    held: Held | None = None  # suspended: the calls held back (updates and actions are empty)

    @property
    def empty(self) -> bool:
        """No vSphere call to make."""
        return not self.updates and not self.reboot_actions

    @property
    def reboot_required(self) -> tuple[str, ...]:
        return tuple(p.host.name for p in self.hosts if p.reboot_required)


def _previous_records(
    previous: HostPassthroughPolicyStatus | None,
) -> dict[str, RollingRebootStatus]:
    if previous is None:
        return {}
    return {h.name: h.rolling_reboot for h in previous.hosts if h.rolling_reboot is not None}


def plan_policy(
    *,
    name: str,
    creation_timestamp: datetime,
    spec: HostPassthroughPolicySpec,
    inventory: ObservedInventory,
    now: datetime,
    others: Sequence[OtherPolicy] | OthersIndex = (),
    previous: HostPassthroughPolicyStatus | None = None,
    claims: Sequence[DeviceClaim] = (),
    suspension: Suspension | None = None,
    reserved: Collection[str] = (),
    seen: Mapping[str, TaskSeen] | None = None,
) -> PolicyPlan:
    """`suspension`: spec.suspend or the operator's dry-run; the plan then holds no call, its
    `held` says what would be done, and its hosts show what is observed (planner/suspension.py).
    `reserved`: hosts the other policies' rolling reboots hold (the reconciler's reservations);
    they count against their cluster's `maxUnavailable` like hosts vCenter shows down.
    `seen`: whether the recorded steps `reboot.unconfirmed` named were sent (planner/host/steps.py):
    plan, read the recent tasks of the hosts it names, plan again with what they say."""
    try:
        rules = PolicyRules.from_spec(spec)
        selection = select_hosts(spec.hosts, inventory)
        drain_timeout = parse_duration(spec.reboot.drain_timeout)
        window = window_state(spec.reboot.windows, now)
    except (InvalidSpecError, ValueError) as err:
        return PolicyPlan(stalled=Problem(INVALID_SPEC, str(err)))
    rivals = Rivals.build(name, creation_timestamp, others, inventory, selection.hosts)
    records = _previous_records(previous)
    project = suspension is None
    plans = tuple(plan_host(h, rules, rivals, claims, project=project) for h in selection.hosts)
    load = ClusterLoad.observe(inventory, reserved)
    reboot = _plan_reboots(
        spec, drain_timeout, plans, records, now, load=load, window=window, seen=seen
    )
    plans = tuple(_reachable(p, reboot) for p in plans)
    updates = tuple(
        UpdatePassthruConfig(p.host.name, p.host.moref, p.changes) for p in plans if p.changes
    )
    missing = tuple(
        Problem(HOST_UNREACHABLE, f"{n}: no such host in vCenter") for n in selection.missing_names
    )
    problems = [pr for p in plans for pr in p.problems] + list(missing) + list(reboot.problems)
    if suspension is not None:  # the rule: nothing is called, only described
        pending = [describe_update(u.host, u.changes) for u in updates]
        pending += [describe_action(a) for a in reboot.actions]
        pending += unfinished_reboots(records, reboot.actions)
        return PolicyPlan(
            hosts=plans,
            missing_hosts=selection.missing_names,
            reboot=frozen_reboot(records, suspension),
            problems=tuple(problems),
            held=held_calls(suspension, pending),
        )
    return PolicyPlan(
        updates=updates,
        reboot_actions=reboot.actions,
        hosts=plans,
        missing_hosts=selection.missing_names,
        reboot=reboot,
        problems=tuple(problems),
    )


def _plan_reboots(
    spec: HostPassthroughPolicySpec,
    drain_timeout: timedelta,
    plans: Sequence[HostPlan],
    records: dict[str, RollingRebootStatus],
    now: datetime,
    *,
    load: ClusterLoad,
    window: WindowState,
    seen: Mapping[str, TaskSeen] | None,
) -> RebootPlan:
    candidates = [RebootCandidate(p.host, p.reboot_required) for p in plans]
    return plan_reboots(
        spec.reboot, drain_timeout, candidates, records, now, load=load, window=window, seen=seen
    )


def _reachable(plan: HostPlan, reboot: RebootPlan) -> HostPlan:
    """A host that is not connected is Degraded (HostUnreachable), unless it is rebooting."""
    host: ObservedHost = plan.host
    if host.connected:
        return plan
    record = reboot.records.get(host.name)
    if record is not None and record.phase is RebootPhase.REBOOTING:
        return replace(plan, message="Rebooting")
    message = f"Host is {host.connection_state or 'not connected'}"
    problem = Problem(HOST_UNREACHABLE, f"{host.name}: {message}")
    return replace(plan, message=message, problems=(*plan.problems, problem))
