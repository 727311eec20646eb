"""VMDeviceAssignment: every watch event feeds the controller; the queue does the rest.

Also what assignments depend on besides their own object: the referenced policy (its spec says
who may consume what, its status which devices are active) and namespace labels (a policy's
consumers.namespaceSelector). Their changes re-enqueue the assignments they concern.

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
    runtime.assignment_triggers.assignment_event(str(event.get("type") or "ADDED"), event["object"])


@kopf.on.event("dpio.io", "v1alpha1", "hostpassthroughpolicies", id="assignments-of-policy")
async def policy_event_for_assignments(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.assignment_triggers.policy_event(str(event.get("type") or "ADDED"), event["object"])


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.assignment_triggers.namespace_event(str(event.get("type") or "ADDED"), event["object"])
