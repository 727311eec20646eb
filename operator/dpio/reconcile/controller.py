"""One controller per kind: a cache of the latest objects fed by the watch, and a work queue.

The watch (kopf, in `dpio.handlers`) calls `observe` with every raw event; vCenter change
notifications call `enqueue`. Reconcile never branches on the event type (kubebuilder's rule):
it reads the latest cached object when its turn comes, so ten events make one reconcile.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from dpio.observability import memory, metrics
from dpio.observability.logging import object_ref
from dpio.reconcile.queue import Backoff, Result, WorkQueue

_log = logging.getLogger(__name__)

Body = Mapping[str, Any]
#: (namespace or "", name) — the policy is cluster-scoped, so its namespace is "".
Key = tuple[str, str]
ReconcileFn = Callable[[Body], Awaitable[Result]]


def key_of(body: Body) -> Key:
    meta = body.get("metadata", {})
    return (str(meta.get("namespace") or ""), str(meta.get("name", "")))


def _desired(body: Body) -> tuple[Any, ...]:
    """What a reconcile depends on: all but status, resourceVersion and managedFields."""
    meta = {
        k: v for k, v in body.get("metadata", {}).items()
        if k not in ("resourceVersion", "managedFields")
    }  # fmt: skip
    return (meta, body.get("spec"), {k: v for k, v in body.items() if k not in _SKIP})


_SKIP = frozenset({"metadata", "spec", "status"})


def _cached(body: Body) -> dict[str, Any]:
    """A copy to keep, without `metadata.managedFields`: no reconcile reads it, and at 1,000
    objects it is a good part of what the cache holds (docs/benchmarks.md, memory)."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
    return copy.deepcopy({**body, "metadata": meta})


def without_nulls(value: Any) -> Any:
    """A status as the API server keeps it after a merge patch: null means "remove the field"."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class Controller:
    """Latest objects of one kind, and the queue that reconciles them."""

    def __init__(
        self, kind: str, reconcile: ReconcileFn, *, workers: int = 4, backoff: Backoff | None = None
    ) -> None:
        self.kind = kind
        self._reconcile = reconcile
        self._objects: dict[Key, Body] = {}
        #: Moves whenever an object is added or deleted or anything but its status changes: what
        #: other objects' reconciles read of it can only have changed then (policy/others.py).
        self.desired_changes = 0
        # The status this operator last wrote per object: its own writes come back as watch
        # events and need no reconcile; a status anyone else wrote does (it is put right).
        self._written: dict[Key, Any] = {}
        # What reconciles freed goes back to the system every few seconds while they run.
        self.queue: WorkQueue[Key] = WorkQueue(
            self._run, workers=workers, backoff=backoff, after_each=memory.trimmer
        )
        # Scrapes read the cache and the queue as they are (metrics.track): nothing is copied.
        self._metrics = metrics.Source(objects=self.objects, depth=lambda: len(self.queue))

    def observe(self, event_type: str, body: Body) -> None:
        """Feed one watch event (ADDED / MODIFIED / DELETED, or None for the initial listing)."""
        key = key_of(body)
        if event_type == "DELETED":
            self._objects.pop(key, None)
            self._written.pop(key, None)
            self.queue.forget(key)
            self.desired_changes += 1
            return
        previous = self._objects.get(key)
        self._objects[key] = _cached(body)
        if previous is None or _desired(previous) != _desired(body):
            self.desired_changes += 1
            self.queue.add(key)
            return
        # Only the status changed. Our own writes come back like this: nothing to do for those;
        # a status someone else wrote (or a stale copy restored) is reconciled back.
        expected = self._written.get(key, previous.get("status"))
        if body.get("status") != expected:
            self.queue.add(key)

    def expect_status(self, key: Key, status: Mapping[str, Any]) -> None:
        """Called just before this operator writes `status` (merge-patch form) to `key`."""
        self._written[key] = without_nulls(status)

    def enqueue(self, key: Key) -> None:
        if key in self._objects:
            self.queue.add(key)

    def enqueue_all(self) -> None:
        for key in list(self._objects):
            self.queue.add(key)

    def enqueue_where(self, wanted: Callable[[Key], bool]) -> int:
        """Queue the cached objects `wanted` picks (e.g. those a vCenter change concerns);
        how many it picked."""
        picked = [key for key in list(self._objects) if wanted(key)]
        for key in picked:
            self.queue.add(key)
        return len(picked)

    def get(self, key: Key) -> Body | None:
        return self._objects.get(key)

    def objects(self) -> Iterator[Body]:
        """A snapshot of every cached object (for cross-object rules such as policy conflicts)."""
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)

    def start(self) -> None:
        metrics.track(self.kind, self._metrics)
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        metrics.untrack(self.kind, self._metrics)

    async def _run(self, key: Key) -> Result:
        body = self._objects.get(key)
        if body is None:  # deleted since it was queued
            return Result()
        started = time.monotonic()
        try:
            result = await self._reconcile(body)
        except asyncio.CancelledError:  # shutdown, not a failed reconcile
            raise
        except BaseException:
            # The queue logs it and retries with backoff; here it only counts as an error.
            self._finished(body, started, failed=True)
            raise
        self._finished(body, started, failed=result.failed)
        return result

    def _finished(self, body: Body, started: float, *, failed: bool) -> None:
        seconds = time.monotonic() - started
        metrics.record_reconcile(self.kind, seconds, failed=failed)
        extra = {"kind": self.kind, **object_ref(body), "seconds": round(seconds, 3)}
        _log.debug("Reconciled" if not failed else "Reconcile failed", extra=extra)
