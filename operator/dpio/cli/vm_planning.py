"""`dpio plan` inputs for VMDeviceAssignments, put together as the operator's reconciler does
(`dpio.reconcile.assignment`: the reconciler, with its own helpers from `inputs`).

The referenced policy is the one in the files (with the status its own plan projects: the
devices it is about to enable count as enabled) or, with `--cluster`, the live one. Claims of
other assignments (the oldest wins: docs/design.md, "VM side: devices and claims") come from the
other assignments in the files and, with `--cluster`, the live ones; a new one counts as created
now, in file order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.policy import HostPassthroughPolicy
from dpio.cli.manifests import Manifest, ManifestError
from dpio.cli.plan import PolicyReport
from dpio.cli.planning import Candidate
from dpio.cli.vm_plan import AssignmentReport
from dpio.planner import policy_status
from dpio.planner.suspension import suspension_of
from dpio.planner.vm.observed import VMObservation
from dpio.planner.vm.plan import plan_for
from dpio.planner.vm.suspend import held_plan
from dpio.reconcile.assignment import inputs
from dpio.reconcile.assignment.others import AssignmentIndex, ObjectKey

#: Observes the VM of an assignment through the policy's vCenter -> (source, observation).
ObserveVM = Callable[[HostPassthroughPolicy, VMDeviceAssignment], tuple[str, VMObservation]]
Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AssignmentCandidate:
    assignment: VMDeviceAssignment
    body: Body  # with creationTimestamp set, for the claims of the others


def projected_policies(
    everyone: Sequence[Candidate], reports: Sequence[PolicyReport], now: datetime
) -> dict[str, HostPassthroughPolicy]:
    """Policies by name; those from the files carry the status their plan leads to."""
    by_name = {r.name: r for r in reports}
    found = {}
    for candidate in everyone:
        policy = candidate.policy
        report = by_name.get(policy.metadata.name)
        if candidate.from_file and report is not None and report.plan.stalled is None:
            status = policy_status(
                report.plan,
                reboot_policy=policy.spec.reboot.policy,
                previous=policy.status,
                generation=policy.metadata.generation or 1,
                now=now,
            )
            policy = policy.model_copy(update={"status": status})
        found[policy.metadata.name] = policy
    return found


def changing_hosts(reports: Sequence[PolicyReport]) -> dict[str, str]:
    return {u.host: r.name for r in reports for u in r.plan.updates}


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name", ""))


def assignment_candidates(
    files: Sequence[Manifest], live: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[list[AssignmentCandidate], list[Body]]:
    """(the files' assignments, every assignment body for claims: files' + live-only)."""
    live_by_key = {_key(b): b for b in live}
    mine, bodies = [], []
    for index, manifest in enumerate(files):
        body = copy.deepcopy(manifest.body)
        meta = body.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        current = live_by_key.pop(_key(body), None)
        if current is not None:  # same object: its identity and status are the live ones
            meta["creationTimestamp"] = current["metadata"].get("creationTimestamp")
            body["status"] = current.get("status") or {}
        else:
            meta.setdefault("creationTimestamp", (now + timedelta(microseconds=index)).isoformat())
        try:
            assignment = VMDeviceAssignment.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ManifestError(f"{manifest.source}: {manifest}: {where}: {first['msg']}") from err
        mine.append(AssignmentCandidate(assignment, body))
        bodies.append(body)
    return mine, bodies + [dict(b) for b in live_by_key.values()]


def plan_one(
    candidate: AssignmentCandidate,
    *,
    policies: Mapping[str, HostPassthroughPolicy],
    others: AssignmentIndex,
    namespace_labels: Callable[[str], Mapping[str, str] | None],
    observe: ObserveVM,
    now: datetime,
    changing_hosts: Mapping[str, str] | None = None,
) -> AssignmentReport:
    """`changing_hosts`: host name -> the policy of the files that updates it."""
    assignment = candidate.assignment
    meta, spec = assignment.metadata, assignment.spec
    namespace = meta.namespace or "default"
    policy = policies.get(spec.policy_ref.name)
    notes: tuple[str, ...] = ()
    if policy is None:
        notes = (
            f"policy {spec.policy_ref.name} is neither in the files nor (with --cluster) "
            "in the cluster",
        )
    labels = namespace_labels(namespace)
    observed, allowed = inputs.before_vcenter(policy, assignment, namespace, labels)
    source = "-"
    if policy is not None and allowed:
        source, seen = observe(policy, assignment)
        observed, _ = inputs.completed(
            seen, policy, namespace_labels, others, ObjectKey(namespace, meta.name)
        )
    plan = plan_for(assignment, namespace, observed, now)
    # spec.suspend: the operator would make none of the calls; the note says which.
    suspension = suspension_of(suspend=spec.suspend, dry_run=False)
    plan = held_plan(plan, suspension, assignment.status)
    if plan.outcome.held is not None:
        notes += (plan.outcome.held.message,)
    host = plan.outcome.vm.host if plan.outcome.vm is not None else ""
    changing_hosts = changing_hosts or {}
    if plan.outcome.unavailable and host in changing_hosts:
        # ConfigTarget lists only devices active now: the policy's changes come first.
        notes += (
            f"HostPassthroughPolicy {changing_hosts[host]} changes {host} first; devices it "
            "makes active become available once it is applied: plan again then",
        )
    return AssignmentReport(namespace, meta.name, source, plan, notes)
