"""Operator start and stop, settings, probes."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from dpio.handlers.runtime import Config, Runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The reconcilers manage their own finalizer (dpio.reconcile.policy.FINALIZER) and keep
    # what they need in status. kopf's finalizer must stay a different name: kopf removes its
    # own finalizer from objects that have no deletion handlers, and we register none.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    runtime = Runtime.build(Config.from_env())
    runtime.start()
    memo.runtime = runtime


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.stop()


@kopf.on.probe(id="reconcileQueue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    """Liveness never depends on vCenter: the probe only reports the queue depth."""
    runtime: Runtime | None = memo.get("runtime")
    return 0 if runtime is None else len(runtime.policies.queue)
