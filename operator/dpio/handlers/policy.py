"""HostPassthroughPolicy: every watch event feeds the controller; the queue does the rest."""

from __future__ import annotations

from typing import Any

import kopf

from dpio.handlers.runtime import Runtime


@kopf.on.event("dpio.io", "v1alpha1", "hostpassthroughpolicies")
def policy_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.policies.observe(str(event.get("type") or "ADDED"), event["object"])
