"""`dpio-operator`: the container's entry point and `make run`'s, one code path.

Logs: `DPIO_LOG_FORMAT=json` for one JSON object per line (text by default), `DPIO_LOG_LEVEL`
(INFO by default; `--verbose` is DEBUG). Metrics: `DPIO_METRICS_PORT` (9090; 0 turns it off),
`DPIO_METRICS_SECURE=true` with `DPIO_METRICS_CERT_FILE` and `DPIO_METRICS_KEY_FILE` for HTTPS and
Kubernetes authentication and authorization of every scrape (docs/observability.md).
Several replicas: `--lease NAME` / `DPIO_LEASE` (leader election on that coordination.k8s.io
Lease in DPIO_NAMESPACE; only its holder reconciles), `--lease-duration` / `DPIO_LEASE_DURATION`
(15 s): a follower takes over within that plus two retry periods (docs/high-availability.md).
Dry-run: `--dry-run` / `DPIO_DRY_RUN=true` observes, plans and reports but never writes to
vCenter (docs/design.md#suspend-and-dry-run).
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":
    # The operator talks to the API server without the kubernetes client (dpio.kube.rest), but
    # kopf imports it whenever it can (kopf/_cogs/helpers/thirdparty.py): 9.5 MiB of imports,
    # and ~30 MiB of peak in a running operator with 1,000 objects of each kind.
    # The image does not install it; a development environment has it for the tests, and
    # blocking it here keeps the process what it is in a Pod (docs/benchmarks.md, finding 36).
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]

import kopf

# Importing the handler modules registers them with kopf.
from dpio.app import runtime
from dpio.handlers import assignment, lifecycle, login, policy, watching  # noqa: F401
from dpio.handlers.memories import EventOnlyMemories
from dpio.observability import logging as logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dpio-operator", description=__doc__)
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz")
    parser.add_argument("--standalone", action="store_true", help="no peering (one replica)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--lease", help=f"leader election on this Lease (${lifecycle.LEASE_ENV})")
    parser.add_argument(
        "--lease-duration", help=f"seconds (${lifecycle.LEASE_DURATION_ENV}, default 15)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=f"plan and report, never write to vCenter (${runtime.DRY_RUN_ENV}=true)",
    )
    args = parser.parse_args(argv)
    # The startup handler reads its settings from the environment; the flags only override it.
    if args.lease is not None:
        os.environ[lifecycle.LEASE_ENV] = args.lease
    if args.lease_duration is not None:
        os.environ[lifecycle.LEASE_DURATION_ENV] = args.lease_duration
    if args.dry_run:
        os.environ[runtime.DRY_RUN_ENV] = "true"
    try:
        logs.configure(verbose=args.verbose)
        lifecycle.MetricsSettings.from_env()  # a bad value stops us here, not in kopf's startup
        watching.WatchTimeouts.from_env()
        election = lifecycle.LeaderElection.from_env()
        runtime.dry_run_from_env()
    except ValueError as err:
        parser.error(str(err))
    # With our Lease, kopf peering must stay off: a kopf-paused leader would reconcile from a
    # stale cache while the Lease keeps the other replica idle (docs/high-availability.md).
    standalone = args.standalone or election is not None
    kopf.run(
        clusterwide=True,
        liveness_endpoint=args.liveness,
        standalone=standalone,
        memories=EventOnlyMemories(),
    )


if __name__ == "__main__":
    main()
