"""Operator start and stop, settings, probes, the /metrics endpoint, and leader election.

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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from dpio.handlers.runtime import Config, Runtime
from dpio.kube.lease import KubeLeaseStore, LeaderElector, Timing
from dpio.observability import memory, metrics

METRICS_PORT_ENV = "DPIO_METRICS_PORT"
DEFAULT_METRICS_PORT = 9090  # the chart's Service and PodMonitor name it "metrics"
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


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # kopf's graceful stop, then `cleanup` below


def _elector(election: LeaderElection, namespace: str) -> LeaderElector:
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    timeout = election.timing.renew_deadline / 3
    store = KubeLeaseStore(k8s.ApiClient(), namespace, election.lease, timeout=timeout)
    return LeaderElector(store, identity(), election.timing)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The reconcilers manage their own finalizer (dpio.reconcile.policy.FINALIZER) and keep
    # what they need in status. kopf's finalizer must stay a different name: kopf removes its
    # own finalizer from objects that have no deletion handlers, and we register none.
    memory.tune()
    memory.trim()  # what importing pyVmomi, kopf and the kubernetes client left free
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # A thread of its own (prometheus_client), so scrapes work even when the loop is busy.
    memo.metrics = metrics.serve(metrics_port())
    config = Config.from_env()
    runtime = Runtime.build(config)
    memo.runtime = runtime
    election = LeaderElection.from_env()
    if election is None:
        metrics.set_leader(True)  # the only replica: it leads from the start
        runtime.start()
        return
    elector = _elector(election, config.namespace)
    memo.elector = elector

    async def stop_queues() -> None:
        await runtime.policies.stop()
        await runtime.assignments.stop()

    election_task = lead_then_stop(elector, runtime.start, stop_queues)
    memo.election = asyncio.create_task(election_task, name="leader election")
    _log.info("Following until this replica holds the Lease",
              extra={"lease": election.lease, "identity": elector.identity})  # fmt: skip


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
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
    server: metrics.Server | None = memo.get("metrics")
    if server is not None:
        server.stop()


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
