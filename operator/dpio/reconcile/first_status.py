"""The first status of a new object, written as soon as the operator holds it: before any
vCenter call, so kstatus (Flux, kpt) never calls it Current before it was looked at
(docs/observability.md, "The first status").
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dpio.planner.conditions import AnyStatus, observing_status
from dpio.reconcile.ports import ObjectsPort, PortError


async def write_first_status(
    objects: ObjectsPort, body: Mapping[str, Any], kind: type[AnyStatus], now: datetime
) -> None:
    """Give `body` its first status if it has none yet (observedGeneration, Reconciling=True).

    Called right after the finalizer was added, whose write moved resourceVersion on: this one
    carries no precondition. Nothing else writes this object's status meanwhile (one reconcile
    per object at a time) and a status that exists is never replaced. A failed write is left
    to the reconcile that follows, which writes the whole status anyway.
    """
    if body.get("status"):
        return
    generation = int(body["metadata"].get("generation") or 0)
    status = observing_status(kind, generation, now)
    unguarded = {**body, "metadata": {**body["metadata"], "resourceVersion": ""}}
    with contextlib.suppress(PortError):
        await objects.patch_status(
            unguarded, status.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
