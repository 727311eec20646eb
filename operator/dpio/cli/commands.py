"""The three commands: connect, read, compute with the operator's own code, print. Read only.

vSphere is reached through the operator's adapter (`VCenterClient` + `HostAdapter`), one session
per vCenter for the whole command, logged out at the end; Kubernetes through the official client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from dpio.cli import inventory as inventory_view
from dpio.cli import plan as plan_view
from dpio.cli import status as status_view
from dpio.cli.connection import UsageError, resolve
from dpio.cli.kube import Kube
from dpio.cli.manifests import ASSIGNMENT_KIND, POLICY_KIND, ManifestError, load, of_kind
from dpio.cli.output import Format
from dpio.cli.planning import candidates, plan_all
from dpio.planner import ObservedInventory
from dpio.vsphere.adapter import HostAdapter
from dpio.vsphere.credentials import Credentials
from dpio.vsphere.session import VCenterClient

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
#: A CLI waits less than the operator does (60 s) before calling vCenter unreachable.
TIMEOUT_SECONDS = 30.0


@dataclass
class Context:
    """What a command reads and writes besides its arguments; closed by `main.run`."""

    env: dict[str, str]
    out: TextIO
    err: TextIO
    kube: Kube = field(default_factory=Kube)
    clients: dict[tuple[str, str, str], VCenterClient] = field(default_factory=dict)

    def use_kube(self, args: argparse.Namespace) -> Kube:
        self.kube = Kube.from_args(args)
        return self.kube

    def read_inventory(
        self, credentials: Credentials, names: Sequence[str] = ()
    ) -> ObservedInventory:
        """One RetrievePropertiesEx through the operator's HostAdapter."""
        key = credentials.cache_key()
        client = self.clients.get(key)
        if client is None:
            client = self.clients[key] = VCenterClient(
                credentials, max_workers=1, timeout=TIMEOUT_SECONDS
            )
        adapter = HostAdapter(client)
        return asyncio.run(adapter.read_inventory(names=names, include_vms=True))

    def close(self) -> None:
        for client in self.clients.values():
            client.close()  # logs out: a CLI must not leave sessions behind on vCenter
        self.clients.clear()
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
    """0 nothing to change, 2 changes pending, 1 a policy can't be planned (Stalled)."""
    kube = ctx.use_kube(args)
    manifests = load(args.filename)
    policies = of_kind(manifests, POLICY_KIND)
    assignments = of_kind(manifests, ASSIGNMENT_KIND)
    if not policies and not assignments:
        raise ManifestError(f"no dpio.io objects in {', '.join(args.filename)}")
    for manifest in assignments:
        # DESIGN.md §3.2 planning needs the VM's observation (dpio.vsphere VM adapter).
        ctx.err.write(f"dpio plan: {manifest}: VMDeviceAssignment plans are not supported yet\n")
    now = datetime.now(UTC)
    live = kube.policies() if args.cluster else []
    everyone = candidates(policies, live, now)
    seen: dict[str | None, tuple[str, ObservedInventory]] = {}

    def inventory_for(secret_ref: str | None) -> tuple[str, ObservedInventory]:
        if secret_ref not in seen:
            source, credentials = resolve(args, ctx.env, kube.read_secret, secret_ref)
            seen[secret_ref] = (source, ctx.read_inventory(credentials))
        return seen[secret_ref]

    reports = plan_all(everyone, inventory_for, now)
    if args.output == "json":
        data = {
            "changed": any(r.changed for r in reports),
            "objects": [plan_view.to_dict(r) for r in reports],
        }
        ctx.out.write(json.dumps(data, indent=2) + "\n")
    else:
        ctx.out.write("\n".join(plan_view.render_text(r) for r in reports))
        ctx.out.write("\n" + plan_view.summary(reports))
    if any(r.plan.stalled is not None for r in reports):
        return EXIT_ERROR
    return EXIT_CHANGES if any(r.changed for r in reports) else EXIT_OK


def status(args: argparse.Namespace, ctx: Context) -> int:
    kube = ctx.use_kube(args)
    # Unlike kubectl, all namespaces by default: this is the cluster-wide view.
    namespace = None if args.all_namespaces else args.namespace
    bodies = [*kube.policies(), *kube.assignments(namespace)]
    ctx.out.write(status_view.render(bodies, Format(args.output)))
    return EXIT_OK
