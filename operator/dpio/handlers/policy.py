"""HostPassthroughPolicy: every watch event feeds the controller (and the assignments that name
the policy look again, if what it offers them changed); the queue does the rest.

The handler is a coroutine on purpose: kopf runs plain functions in a thread pool, and the
controller's cache and work queue belong to the event loop (asyncio.Queue is not thread-safe).
"""

from __future__ import annotations

from typing import Any

import kopf

from dpio.app.runtime import Runtime


@kopf.on.event("dpio.io", "v1alpha1", "hostpassthroughpolicies")
async def policy_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.policy_event(str(event.get("type") or "ADDED"), event["object"])
