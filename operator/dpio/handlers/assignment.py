"""VMDeviceAssignment: every watch event feeds the controller; the queue does the rest.

Also what assignments depend on besides their own object: namespace labels (a policy's
consumers.namespaceSelector) and the referenced policy (its spec says who may consume what, its
status which devices are active: handlers/policy.py). Their changes re-enqueue the assignments
they concern.

The handlers are coroutines on purpose: kopf runs plain functions in a thread pool, and the
controller's cache and work queue belong to the event loop (asyncio.Queue is not thread-safe).
"""

from __future__ import annotations

from typing import Any

import kopf

from dpio.app.runtime import Runtime


@kopf.on.event("dpio.io", "v1alpha1", "vmdeviceassignments")
async def assignment_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.assignment_event(str(event.get("type") or "ADDED"), event["object"])


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.namespace_event(str(event.get("type") or "ADDED"), event["object"])
