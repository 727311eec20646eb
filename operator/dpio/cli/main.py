"""`dpio`: the administrators' CLI of dpio-operator.

    dpio inventory [--host NAME]... [-o table|json|yaml]
    dpio plan -f FILE [-f FILE]... [--cluster] [-o text|json]
    dpio status [-n NS | -A] [-o table|json|yaml]

Exit codes: 0 success (for `plan`: nothing to change), 1 error, 2 (`plan` only) changes pending,
like `terraform plan -detailed-exitcode`. Nothing here writes to vCenter or Kubernetes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, TextIO

from dpio.cli import commands
from dpio.cli.connection import UsageError, add_vcenter_flags
from dpio.cli.kube import add_kube_flags
from dpio.cli.manifests import ManifestError
from dpio.cli.output import Format
from dpio.kube.client import KubeError
from dpio.vsphere.errors import VSphereError


class Parser(argparse.ArgumentParser):
    """Usage errors exit 1, not argparse's 2: for `plan`, 2 means "changes pending"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(commands.EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _output(parser: argparse.ArgumentParser, choices: Sequence[str], default: str) -> None:
    parser.add_argument(
        "-o", "--output", choices=choices, default=default, help=f"output format ({default})"
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="dpio",
        description="Inspect vSphere DirectPath I/O and what dpio-operator would do. Read only.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit codes: 0 ok / no changes, 1 error, 2 changes pending (plan).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inventory = sub.add_parser(
        "inventory",
        help="PCI devices of each host: passthrough capable, enabled, active, in use",
        description="Per host, the PCI devices and their passthrough state, as the vSphere "
        "Client shows them (Host > Configure > Hardware > PCI Devices).",
    )
    inventory.add_argument(
        "--host", action="append", default=[], metavar="NAME", help="only this host (repeatable)"
    )
    _output(inventory, [f.value for f in Format], Format.TABLE.value)
    add_vcenter_flags(inventory)
    add_kube_flags(inventory)

    plan = sub.add_parser(
        "plan",
        help="what the operator would change for the given manifests, changing nothing",
        description="Run the operator's planner on HostPassthroughPolicy manifests against the "
        "live vCenter inventory: per host the UpdatePassthruConfig changes, reboots, refused "
        "devices and conflicts. For pull-request review.",
    )
    plan.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="manifest file or directory, - for stdin (repeatable)",
    )
    plan.add_argument(
        "--cluster",
        action="store_true",
        help="also read the policies already in the cluster (conflicts, rolling reboots)",
    )
    _output(plan, ["text", "json"], "text")
    add_vcenter_flags(plan)
    add_kube_flags(plan)

    status = sub.add_parser(
        "status",
        help="every HostPassthroughPolicy and VMDeviceAssignment: Ready, reason, summary",
    )
    scope = status.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", help="assignments of this namespace (default: every namespace)"
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="assignments of every namespace"
    )
    _output(status, [f.value for f in Format], Format.TABLE.value)
    add_kube_flags(status)
    return parser


def run(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Parse `argv`, run the command, return the exit code (tests call this)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    context = commands.Context(env=dict(os.environ if env is None else env), out=out, err=err)
    try:
        if args.command == "inventory":
            return commands.inventory(args, context)
        if args.command == "plan":
            return commands.plan(args, context)
        return commands.status(args, context)
    except (UsageError, ManifestError, KubeError, VSphereError, commands.VCenterError) as error:
        print(f"dpio {args.command}: {error}", file=err)
        return commands.EXIT_ERROR
    finally:
        context.close()


def main() -> int:
    """The console script (`[project.scripts] dpio`); its return value is the exit code."""
    return run()


if __name__ == "__main__":
    sys.exit(main())
