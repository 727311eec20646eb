"""The three commands: connect, read, compute with the operator's own code, print. Read only.

vSphere is reached through the operator's adapter (`VCenterClient` + `HostAdapter`), one session
per vCenter for the whole command, logged out at the end; Kubernetes through `dpio.kube.rest`
(cli/kube.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from dpio.api.assignment import VMDeviceAssignment
from dpio.api.policy import HostPassthroughPolicy
from dpio.cli import inventory as inventory_view
from dpio.cli import plan as plan_view
from dpio.cli import status as status_view
from dpio.cli import vm_plan as vm_view
from dpio.cli.connection import UsageError, resolve
from dpio.cli.kube import Kube
from dpio.cli.manifests import (
    ASSIGNMENT_KIND,
    POLICY_KIND,
    Manifest,
    ManifestError,
    load,
    of_kind,
)
from dpio.cli.output import Format
from dpio.cli.plan import PolicyReport
from dpio.cli.planning import Candidate, candidates, plan_all
from dpio.cli.vm_plan import AssignmentReport
from dpio.cli.vm_planning import (
    assignment_candidates,
    changing_hosts,
    plan_one,
    projected_policies,
)
from dpio.planner import ObservedInventory
from dpio.planner.vm.observed import VMObservation
from dpio.reconcile.assignment.others import AssignmentIndex
from dpio.vsphere.credentials import Credentials
from dpio.vsphere.errors import VSphereError
from dpio.vsphere.host.adapter import HostAdapter
from dpio.vsphere.session import VCenterClient
from dpio.vsphere.vm.adapter import VMAdapter

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
#: A CLI waits less than the operator does (60 s) before calling vCenter unreachable.
TIMEOUT_SECONDS = 30.0


class VCenterError(RuntimeError):
    """A vCenter call failed; the message names the server (the adapter's says what failed)."""


@contextmanager
def _vcenter(credentials: Credentials) -> Iterator[None]:
    try:
        yield
    except VSphereError as err:
        raise VCenterError(f"vCenter {credentials.server}: {err}") from err


@dataclass
class Context:
    """What a command reads and writes besides its arguments; closed by `main.run`."""

    env: dict[str, str]
    out: TextIO
    err: TextIO
    kube: Kube = field(default_factory=Kube)
    clients: dict[tuple[str, str, str], VCenterClient] = field(default_factory=dict)
    vm_adapters: dict[tuple[str, str, str], VMAdapter] = field(default_factory=dict)

    def use_kube(self, args: argparse.Namespace) -> Kube:
        self.kube = Kube.from_args(args)
        return self.kube

    def client(self, credentials: Credentials) -> VCenterClient:
        """One session per vCenter for the whole command."""
        key = credentials.cache_key()
        client = self.clients.get(key)
        if client is None:
            client = self.clients[key] = VCenterClient(
                credentials, max_workers=1, timeout=TIMEOUT_SECONDS
            )
        return client

    def observe_vm(self, credentials: Credentials, name: str, instance_uuid: str) -> VMObservation:
        """The operator's VM read (VMAdapter.observe_vm): at most 3 calls."""
        key = credentials.cache_key()
        adapter = self.vm_adapters.get(key)
        if adapter is None:  # kept: its reader caches QueryConfigOption per host
            adapter = self.vm_adapters[key] = VMAdapter(self.client(credentials))
        with _vcenter(credentials):
            return asyncio.run(adapter.observe_vm(name=name, instance_uuid=instance_uuid))

    def read_inventory(
        self, credentials: Credentials, names: Sequence[str] = ()
    ) -> ObservedInventory:
        """One RetrievePropertiesEx through the operator's HostAdapter."""
        adapter = HostAdapter(self.client(credentials))
        with _vcenter(credentials):
            return asyncio.run(adapter.read_inventory(names=names, include_vms=True))

    def close(self) -> None:
        for client in self.clients.values():
            client.close()  # logs out: a CLI must not leave sessions behind on vCenter
        self.clients.clear()
        self.vm_adapters.clear()
        self.kube.close()


def inventory(args: argparse.Namespace, ctx: Context) -> int:
    kube = ctx.use_kube(args)
    _, credentials = resolve(args, ctx.env, kube.read_secret)
    observed = ctx.read_inventory(credentials, names=args.host)
    unknown = inventory_view.missing(observed, args.host)
    if unknown:
        raise UsageError(f"no such host in vCenter: {', '.join(unknown)}")
    ctx.out.write(inventory_view.render(observed, Format(args.output), args.host))
    return EXIT_OK


def plan(args: argparse.Namespace, ctx: Context) -> int:
    """0 nothing to change, 2 changes pending, 1 an object can't be planned (Stalled)."""
    kube = ctx.use_kube(args)
    manifests = load(args.filename)
    policies = of_kind(manifests, POLICY_KIND)
    assignments = of_kind(manifests, ASSIGNMENT_KIND)
    if not policies and not assignments:
        raise ManifestError(f"no dpio.io objects in {', '.join(args.filename)}")
    now = datetime.now(UTC)
    everyone = candidates(policies, kube.policies() if args.cluster else [], now)
    seen: dict[str | None, tuple[str, ObservedInventory]] = {}

    def inventory_for(secret_ref: str | None) -> tuple[str, ObservedInventory]:
        if secret_ref not in seen:
            source, credentials = resolve(args, ctx.env, kube.read_secret, secret_ref)
            seen[secret_ref] = (source, ctx.read_inventory(credentials))
        return seen[secret_ref]

    reports = plan_all(everyone, inventory_for, now)
    vm_reports = _plan_assignments(
        args, ctx, manifests=assignments, everyone=everyone, reports=reports, now=now
    )
    if args.output == "json":
        objects = [plan_view.to_dict(r) for r in reports] + [vm_view.to_dict(r) for r in vm_reports]
        data = {"changed": any(o["changed"] for o in objects), "objects": objects}
        ctx.out.write(json.dumps(data, indent=2) + "\n")
    else:
        texts = [plan_view.render_text(r) for r in reports]
        texts += [vm_view.render_text(r) for r in vm_reports]
        ctx.out.write("\n".join(texts))
        ctx.out.write("\n" + plan_view.summary(reports))
        changed_vms = sum(1 for r in vm_reports if r.changed)
        if vm_reports:
            ctx.out.write(f"      {changed_vms} of {len(vm_reports)} VM(s) to change.\n")
    if any(r.plan.stalled for r in reports) or any(r.plan.outcome.stalled for r in vm_reports):
        return EXIT_ERROR
    changed = any(r.changed for r in reports) or any(r.changed for r in vm_reports)
    return EXIT_CHANGES if changed else EXIT_OK


def _plan_assignments(
    args: argparse.Namespace,
    ctx: Context,
    *,
    manifests: Sequence[Manifest],
    everyone: Sequence[Candidate],
    reports: Sequence[PolicyReport],
    now: datetime,
) -> list[AssignmentReport]:
    if not manifests:
        return []
    kube = ctx.kube
    live = kube.assignments(None) if args.cluster else []
    mine, bodies = assignment_candidates(manifests, live, now)
    policies = projected_policies(everyone, reports, now)
    changing = changing_hosts(reports)

    def labels(namespace: str) -> Mapping[str, str]:
        # consumers.namespaceSelector needs the namespace's labels: only the cluster has them.
        return kube.namespace_labels(namespace) if args.cluster else {}

    def observe(policy: HostPassthroughPolicy, vmda: VMDeviceAssignment) -> tuple[str, Any]:
        ref = policy.spec.vcenter.secret_ref.name if policy.spec.vcenter else None
        source, credentials = resolve(args, ctx.env, kube.read_secret, ref)
        vm = vmda.spec.vm
        return source, ctx.observe_vm(credentials, vm.name or "", vm.instance_uuid or "")

    others = AssignmentIndex.of(bodies)
    return [
        plan_one(
            c,
            policies=policies,
            others=others,
            namespace_labels=labels,
            observe=observe,
            now=now,
            changing_hosts=changing,
        )
        for c in mine
    ]


def status(args: argparse.Namespace, ctx: Context) -> int:
    kube = ctx.use_kube(args)
    # Unlike kubectl, all namespaces by default: this is the cluster-wide view.
    namespace = None if args.all_namespaces else args.namespace
    bodies = [*kube.policies(), *kube.assignments(namespace)]
    ctx.out.write(status_view.render(bodies, Format(args.output)))
    return EXIT_OK
