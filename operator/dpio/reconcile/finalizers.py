"""The operator's finalizer, the same on both kinds, and where a reconcile stands with it.

A reconciler holds its object with this finalizer before it changes anything in vSphere, so a
delete waits until the reconciler has undone its changes (docs/design.md,
"Host side: deletion" and "VM side: deletion"). kopf's
own finalizer has another name: kopf removes it from kinds without deletion handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from dpio.reconcile.ports import ObjectsPort, PortError
from dpio.reconcile.queue import Result

FINALIZER = "dpio.io/finalizer"

Body = Mapping[str, Any]


class Stage(Enum):
    """What the reconcile does next, decided by deletionTimestamp and the finalizer."""

    RECONCILE = "reconcile"  # alive and held: observe, plan, apply
    CLEAN_UP = "clean-up"  # being deleted and still held: undo our changes, then release
    # Nothing more this run: the finalizer was just added (its watch event brings a fresh
    # body back), or the object is being deleted and is no longer ours.
    DONE = "done"
    #: The finalizer could not be added (409: a newer copy is on its way; or the API server
    #: failed): nothing was done, the run is retried.
    FAILED = "failed"


def _finalizers(body: Body) -> list[str]:
    return list(body["metadata"].get("finalizers") or [])


async def stage(objects: ObjectsPort, body: Body, *, deleting: bool) -> Stage:
    """Where `body` stands; adds the finalizer to a live object that lacks it."""
    held = FINALIZER in _finalizers(body)
    if deleting:
        return Stage.CLEAN_UP if held else Stage.DONE
    if not held:
        try:
            await objects.set_finalizers(body, [*_finalizers(body), FINALIZER])
        except PortError:
            return Stage.FAILED
        return Stage.DONE
    return Stage.RECONCILE


async def release(objects: ObjectsPort, body: Body) -> Result:
    """Cleanup is done (or there was none to do): the API server may delete the object. A
    write that fails (409 on a stale copy, an API error) is retried: the run goes again."""
    try:
        await objects.set_finalizers(body, [f for f in _finalizers(body) if f != FINALIZER])
    except PortError:
        return Result(failed=True)
    return Result()
