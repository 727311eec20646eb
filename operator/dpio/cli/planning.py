"""`dpio plan` inputs: the policies of the files, the other policies they compete with, and the
inventory each one's vCenter reports, put together as the operator's reconciler does
(`dpio.reconcile.policy.reconciler.PolicyReconciler`), without writing anything anywhere.

Competing policies (the older one wins: docs/design.md, "Host side: policy conflicts") are the
other policies in the files and, with `--cluster`, the ones already in the cluster. An object in
a file replaces the live object of the same name; a new object counts as created now, in file
order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from dpio.api.policy import HostPassthroughPolicy
from dpio.cli.manifests import Manifest, ManifestError
from dpio.cli.plan import PolicyReport
from dpio.planner import ObservedInventory, OtherPolicy, plan_policy
from dpio.planner.suspension import suspension_of

#: Reads the inventory a policy's vCenter reports: (secretRef name or None) -> (source, inventory).
InventoryFor = Callable[[str | None], tuple[str, ObservedInventory]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A policy as it would be once applied: its spec from the file, identity from the cluster."""

    policy: HostPassthroughPolicy
    creation_timestamp: datetime
    from_file: bool


def parse_policy(manifest: Manifest) -> HostPassthroughPolicy:
    try:
        return HostPassthroughPolicy.model_validate(manifest.body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(
            f"{manifest.source}: {manifest}: {where}: {first['msg']}"
            + (f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else "")
        ) from err


def candidates(
    files: Sequence[Manifest], live: Sequence[Mapping[str, Any]], now: datetime
) -> list[Candidate]:
    """Every policy that will exist: the files' (merged with live identity), then the rest live."""
    live_by_name: dict[str, HostPassthroughPolicy] = {}
    for body in live:
        try:
            policy = HostPassthroughPolicy.model_validate(body)
        except ValidationError:
            continue  # the operator skips these too
        if policy.metadata.deletion_timestamp is None:
            live_by_name[policy.metadata.name] = policy
    found: list[Candidate] = []
    for index, manifest in enumerate(files):
        policy = parse_policy(manifest)
        current = live_by_name.pop(policy.metadata.name, None)
        created = (
            (current.metadata.creation_timestamp if current else None)
            or policy.metadata.creation_timestamp
            or now + timedelta(microseconds=index)  # new: created in file order
        )
        if current is not None:  # keep the live status: rolling reboots under way
            policy = policy.model_copy(update={"status": current.status})
        found.append(Candidate(policy, created, from_file=True))
    for policy in live_by_name.values():
        created = policy.metadata.creation_timestamp or now
        found.append(Candidate(policy, created, from_file=False))
    return found


def others(everyone: Sequence[Candidate], name: str) -> list[OtherPolicy]:
    return [
        OtherPolicy(
            name=c.policy.metadata.name,
            creation_timestamp=c.creation_timestamp,
            spec=c.policy.spec,
        )
        for c in everyone
        if c.policy.metadata.name != name
    ]


def plan_all(
    everyone: Sequence[Candidate], inventory_for: InventoryFor, now: datetime
) -> list[PolicyReport]:
    """A report per policy from the files, by the operator's planner, in file order."""
    reports = []
    for candidate in everyone:
        if not candidate.from_file:
            continue
        policy = candidate.policy
        ref = policy.spec.vcenter.secret_ref.name if policy.spec.vcenter else None
        source, inventory = inventory_for(ref)
        plan = plan_policy(
            name=policy.metadata.name,
            creation_timestamp=candidate.creation_timestamp,
            spec=policy.spec,
            inventory=inventory,
            now=now,
            others=others(everyone, policy.metadata.name),
            previous=policy.status,
            # spec.suspend: the operator would make none of the calls; the note says which.
            suspension=suspension_of(suspend=policy.spec.suspend, dry_run=False),
        )
        notes = (plan.held.message,) if plan.held is not None else ()
        reports.append(
            PolicyReport(policy.metadata.name, source, policy.spec.reboot.policy, plan, notes)
        )
    return reports
