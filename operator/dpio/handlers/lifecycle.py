"""Operator start and stop, settings, probes, the /metrics endpoint, and leader election.

/metrics (`DPIO_METRICS_PORT`) is plain HTTP unless `DPIO_METRICS_SECURE=true`: then HTTPS with
`DPIO_METRICS_CERT_FILE`/`DPIO_METRICS_KEY_FILE`, and only for bearer tokens the API server
authenticates and authorizes to `get` the non-resource URL /metrics (docs/observability.md).

With `DPIO_LEASE` set (`--lease`), every replica watches and caches everything, but only the
holder of that coordination.k8s.io Lease starts the work queues: a follower makes no vCenter
call and no status write (docs/high-availability.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

import kopf

from dpio.app.runtime import Config, Runtime, kube_credentials
from dpio.handlers.watching import WatchTimeouts
from dpio.kube.credentials import Credentials
from dpio.kube.lease import KubeLeaseStore, LeaderElector, Timing
from dpio.kube.rest import ApiServer
from dpio.kube.reviews import KubeReviewer
from dpio.observability import alloc_trace, memory, memory_report, metrics
from dpio.observability.metrics_auth import AuthFilter
from dpio.observability.tls import CertFiles

METRICS_PORT_ENV = "DPIO_METRICS_PORT"
DEFAULT_METRICS_PORT = 9090  # the chart's Service and PodMonitor name it "metrics"
METRICS_SECURE_ENV = "DPIO_METRICS_SECURE"
METRICS_CERT_ENV = "DPIO_METRICS_CERT_FILE"
METRICS_KEY_ENV = "DPIO_METRICS_KEY_FILE"
LEASE_ENV = "DPIO_LEASE"
LEASE_DURATION_ENV = "DPIO_LEASE_DURATION"
#: client-go's default for controllers; the takeover bound is this plus two retry periods.
DEFAULT_LEASE_DURATION = 15.0
_log = logging.getLogger(__name__)


def metrics_port(env: dict[str, str] | None = None) -> int:
    """`DPIO_METRICS_PORT` (default 9090; 0 turns the endpoint off)."""
    raw = (os.environ if env is None else env).get(METRICS_PORT_ENV, "")
    try:
        port = int(raw) if raw.strip() else DEFAULT_METRICS_PORT
    except ValueError as err:
        raise ValueError(f"{METRICS_PORT_ENV} must be a port number, not {raw!r}") from err
    if not 0 <= port <= 65535:
        raise ValueError(f"{METRICS_PORT_ENV} must be between 0 and 65535, not {port}")
    return port


@dataclass(frozen=True)
class MetricsSettings:
    """The /metrics endpoint: `port` (0: off); `tls` set means secure (HTTPS, and every request
    authenticated and authorized by the API server)."""

    port: int
    tls: CertFiles | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> MetricsSettings:
        values = os.environ if env is None else env
        port = metrics_port(dict(values))
        raw = values.get(METRICS_SECURE_ENV, "").strip().lower()
        if raw not in ("", "true", "false"):
            raise ValueError(f"{METRICS_SECURE_ENV} must be true or false, not {raw!r}")
        if raw != "true":
            return cls(port)
        cert = values.get(METRICS_CERT_ENV, "").strip()
        key = values.get(METRICS_KEY_ENV, "").strip()
        if not cert or not key:
            raise ValueError(
                f"{METRICS_SECURE_ENV}=true needs {METRICS_CERT_ENV} and {METRICS_KEY_ENV} "
                "(a PEM certificate and its key, e.g. a kubernetes.io/tls Secret's files)"
            )
        return cls(port, CertFiles(cert, key))


def serve_metrics(
    settings: MetricsSettings, creds: Credentials
) -> tuple[metrics.Server | None, KubeReviewer | None]:
    """The endpoint `settings` describe, and the reviewer its filter asks (None when plain)."""
    if settings.port == 0 or settings.tls is None:
        return metrics.serve(settings.port), None
    reviewer = KubeReviewer.of(creds)
    server = metrics.serve(settings.port, tls=settings.tls, auth=AuthFilter(reviewer))
    return server, reviewer


@dataclass(frozen=True)
class LeaderElection:
    """`DPIO_LEASE` (the Lease's name, in DPIO_NAMESPACE) and `DPIO_LEASE_DURATION` (seconds)."""

    lease: str
    timing: Timing

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LeaderElection | None:
        """None without `DPIO_LEASE`: one replica, reconciling from the start."""
        values = os.environ if env is None else env
        name = values.get(LEASE_ENV, "").strip()
        if not name:
            return None
        raw = values.get(LEASE_DURATION_ENV, "").strip()
        try:
            duration = float(raw) if raw else DEFAULT_LEASE_DURATION
        except ValueError as err:
            raise ValueError(f"{LEASE_DURATION_ENV} must be seconds, not {raw!r}") from err
        return cls(name, Timing.for_duration(duration))


def identity() -> str:
    """Unique per process: the pod name (HOSTNAME in a pod) plus a random suffix, so that a
    restarted container never mistakes its predecessor's Lease for its own."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


async def lead_then_stop(
    elector: LeaderElector,
    start: Callable[[], None],
    stop: Callable[[], Awaitable[None]],
    end_process: Callable[[], None] | None = None,
) -> None:
    """The gate: the work queues `start` only once we hold the Lease; when we lose it they
    `stop` at once and the process ends (the pod restarts as a follower with fresh state)."""

    async def started() -> None:
        metrics.set_leader(True)
        start()

    async def stopped() -> None:
        metrics.set_leader(False)
        await stop()
        (end_process or _terminate)()

    metrics.set_leader(False)  # following until the Lease is ours
    await elector.run(started, stopped)


def _memory_roots(runtime: Runtime | None) -> dict[str, object]:
    """The operator's parts, for the memory report: the runtime's, then what kopf's tasks and
    every thread's frames hold beyond them."""
    roots: dict[str, object] = {}
    if runtime is not None:
        roots.update({f"runtime.{f.name}": getattr(runtime, f.name) for f in fields(runtime)})
    roots["asyncio tasks (kopf)"] = [task.get_coro() for task in asyncio.all_tasks()]
    roots["thread frames"] = list(sys._current_frames().values())
    return roots


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # kopf's graceful stop, then `cleanup` below


def _elector(election: LeaderElection, namespace: str, creds: Credentials) -> LeaderElector:
    timeout = election.timing.renew_deadline / 3
    api = ApiServer(creds)
    store = KubeLeaseStore(api, namespace, election.lease, timeout=timeout)
    return LeaderElector(store, identity(), election.timing)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The reconcilers manage their own finalizer (dpio.reconcile.finalizers.FINALIZER) and keep
    # what they need in status. kopf's finalizer must stay a different name: kopf removes its
    # own finalizer from objects that have no deletion handlers, and we register none.
    memory.tune()
    memory.trim()  # what importing pyVmomi and kopf left free
    memo.tracing = alloc_trace.from_env()  # benchmarks only: DPIO_TRACEMALLOC_DIR
    memo.memory_report = memory_report.from_env()  # benchmarks only: DPIO_MEMORY_REPORT_DIR
    settings.posting.level = logging.WARNING
    WatchTimeouts.from_env().apply(settings)  # a silent watch is noticed (handlers/watching.py)
    # Read once for our own calls (kopf's login reads them again, as it asks for each re-login).
    creds = kube_credentials()
    # Threads of its own, so scrapes work even when the loop is busy.
    memo.metrics, memo.metrics_reviewer = serve_metrics(MetricsSettings.from_env(), creds)
    config = Config.from_env()
    if config.dry_run:
        _log.warning("Dry-run: observing and planning only, no vCenter write is made")
    runtime = Runtime.build(config, creds)
    memo.runtime = runtime
    runtime.watch_for_ghosts()  # every replica: a follower's caches are the next leader's
    election = LeaderElection.from_env()
    if election is None:
        metrics.set_leader(True)  # the only replica: it leads from the start
        runtime.start()
        return
    elector = _elector(election, config.namespace, creds)
    memo.elector = elector

    election_task = lead_then_stop(elector, runtime.start, runtime.stop_queues)
    memo.election = asyncio.create_task(election_task, name="leader election")
    _log.info("Following until this replica holds the Lease",
              extra={"lease": election.lease, "identity": elector.identity})  # fmt: skip


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    tracing: alloc_trace.Tracing | None = memo.get("tracing")
    if tracing is not None:  # before the caches are let go
        tracing.dump()
    reporting: memory_report.Reporting | None = memo.get("memory_report")
    if reporting is not None:  # likewise
        reporting.dump(_memory_roots(memo.get("runtime")))
    election: asyncio.Task[None] | None = memo.get("election")
    if election is not None:
        election.cancel()
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.stop()
    elector: LeaderElector | None = memo.get("elector")
    if elector is not None:  # only now: no reconcile of ours is in flight any more
        await elector.release()
        metrics.set_leader(False)
        await elector.store.close()
    server: metrics.Server | None = memo.get("metrics")
    if server is not None:
        server.stop()
    reviewer: KubeReviewer | None = memo.get("metrics_reviewer")
    if reviewer is not None:
        reviewer.close()


@kopf.on.probe(id="reconcileQueue")
def queue_depth(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    """Liveness never depends on vCenter: the probe only reports each work queue's depth,
    by kind as `dpio_queue_depth` labels it (a follower's queues stay empty)."""
    runtime: Runtime | None = memo.get("runtime")
    if runtime is None:
        return {}
    return {
        runtime.policies.kind: len(runtime.policies.queue),
        runtime.assignments.kind: len(runtime.assignments.queue),
    }
