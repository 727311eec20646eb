"""Operator start and stop, settings, probes, and the /metrics endpoint."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from dpio.handlers.runtime import Config, Runtime
from dpio.observability import metrics

METRICS_PORT_ENV = "DPIO_METRICS_PORT"
DEFAULT_METRICS_PORT = 9090  # the chart's Service and PodMonitor name it "metrics"


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


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The reconcilers manage their own finalizer (dpio.reconcile.policy.FINALIZER) and keep
    # what they need in status. kopf's finalizer must stay a different name: kopf removes its
    # own finalizer from objects that have no deletion handlers, and we register none.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # A thread of its own (prometheus_client), so scrapes work even when the loop is busy.
    memo.metrics = metrics.serve(metrics_port())
    runtime = Runtime.build(Config.from_env())
    runtime.start()
    memo.runtime = runtime


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.stop()
    server: metrics.Server | None = memo.get("metrics")
    if server is not None:
        server.stop()


@kopf.on.probe(id="reconcileQueue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    """Liveness never depends on vCenter: the probe only reports the queue depth."""
    runtime: Runtime | None = memo.get("runtime")
    if runtime is None:
        return 0
    return len(runtime.policies.queue) + len(runtime.assignments.queue)
