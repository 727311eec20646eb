"""One controller per kind: the watch feeds its object cache, its work queue reconciles.

The watch (kopf, in `dpio.handlers`) calls `observe` with every raw event; vCenter change
notifications call `enqueue`. Reconcile never branches on the event type (kubebuilder's rule):
it reads the latest cached object when its turn comes, so ten events make one reconcile.
The cache (`dpio.reconcile.cache`) and the record of the operator's own status writes
(`dpio.reconcile.own_writes`) are built first and handed in: the reconciler needs them too, and
the controller is built around the reconciler.

A reconcile never runs on a cached copy older than the operator's own last status write
(`ExpectedStatuses.predates_own_write`): it waits for the watch to bring the newer copy, and
runs then. Compared with the old copy, a status that went back to what it was before the write
(Reconciling, then Ready again) looks unchanged, and what the write put there would stay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from dpio.observability import memory, metrics
from dpio.observability.logging import object_ref
from dpio.reconcile.cache import Body, Key, ObjectCache, key_of
from dpio.reconcile.own_writes import ExpectedStatuses
from dpio.reconcile.queue import Backoff, Result, WorkQueue

_log = logging.getLogger(__name__)

ReconcileFn = Callable[[Body], Awaitable[Result]]
#: The watch event type of an object gone (kopf passes None for the objects of a listing).
DELETED = "DELETED"

#: A run that waits for the watch event of its own status write runs on the cached copy after
#: all when the event has not come in this long (its writes carry the copy's
#: resourceVersion, so they fail with 409 if the copy is stale). The event only fails to come
#: if the API server kept the write and moved no resourceVersion, which the check of
#: `ExpectedStatuses.landed` leaves out; a watch that comes back is re-listed within seconds.
OWN_WRITE_WAIT_SECONDS = 120.0


class Controller:
    """Feeds one kind's cache from the watch and queues what needs a reconcile."""

    def __init__(
        self,
        kind: str,
        reconcile: ReconcileFn,
        *,
        cache: ObjectCache | None = None,
        own_writes: ExpectedStatuses | None = None,
        workers: int = 4,
        backoff: Backoff | None = None,
    ) -> None:
        self.kind = kind
        self._reconcile = reconcile
        self.cache = cache if cache is not None else ObjectCache()
        # Own writes come back as watch events and need no reconcile; a status anyone else
        # wrote does (it is put right).
        self.own_writes = own_writes if own_writes is not None else ExpectedStatuses()
        #: Keys whose run waits for the watch event of their own last status write, since when.
        self._waiting: dict[Key, float] = {}
        self._seconds: dict[Key, float] = {}  # the last finished reconcile's duration, per key
        # What reconciles freed goes back to the system every few seconds while they run.
        self.queue: WorkQueue[Key] = WorkQueue(
            self._run, workers=workers, backoff=backoff, after_each=memory.trimmer
        )
        # Scrapes read the cache and the queue as they are (metrics.track): nothing is copied.
        self._metrics = metrics.Source(objects=self.cache.objects, depth=lambda: len(self.queue))

    def observe(self, event_type: str, body: Body) -> None:
        """Feed one watch event (ADDED / MODIFIED / DELETED, or None for the initial listing)."""
        key = key_of(body)
        if event_type == DELETED:
            self.cache.delete(key)
            self.own_writes.forget(key)
            self._waiting.pop(key, None)
            self.queue.forget(key)
            self._seconds.pop(key, None)
            return
        stored = self.cache.put(body)
        self.own_writes.seen(key, body)
        if key in self._waiting and not self.own_writes.predates_own_write(key, body):
            del self._waiting[key]  # the copy a run waited for: it runs now
            self.queue.add(key)
            return
        if stored.previous is None or stored.desired_changed:
            self.queue.add(key)
            return
        # Only the status changed. Our own writes come back like this: nothing to do for those;
        # a status someone else wrote (or a stale copy restored) is reconciled back.
        if not self.own_writes.is_own(key, body.get("status"), stored.previous.get("status")):
            self.queue.add(key)

    def enqueue(self, key: Key) -> None:
        if key in self.cache:
            self.queue.add(key)

    def enqueue_where(self, wanted: Callable[[Key], bool]) -> int:
        """Queue the cached objects `wanted` picks (e.g. those a vCenter change concerns);
        how many it picked."""
        picked = [key for key in self.cache.keys_snapshot() if wanted(key)]
        for key in picked:
            self.queue.add(key)
        return len(picked)

    def enqueue_keys(self, keys: Iterable[Key], *, within: float | None = None) -> int:
        """Queue those of `keys` that are cached (as `enqueue_where`, without a walk of the
        cache); how many."""
        picked = [key for key in keys if key in self.cache]
        for key in picked:
            if within is None:
                self.queue.add(key)
            else:
                self.queue.add_soon(key, within)
        return len(picked)

    def upcoming(self, limit: int) -> list[Body]:
        """The cached objects of the next `limit` queued keys, in the order they will run."""
        bodies = (self.cache.get(key) for key in self.queue.upcoming(limit))
        return [body for body in bodies if body is not None]

    def start(self) -> None:
        metrics.track(self.kind, self._metrics)
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        metrics.untrack(self.kind, self._metrics)

    async def _run(self, key: Key) -> Result:
        body = self.cache.get(key)
        if body is None:  # deleted since it was queued
            return Result()
        wait = self._wait_for_own_write(key, body)
        if wait is not None:  # `observe` queues the key when the newer copy comes
            return Result(requeue_after=wait)
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
        self._seconds[key] = time.monotonic() - started
        return result

    def last_seconds(self, key: Key) -> float:
        """How long `key`'s last finished reconcile took (0: none yet)."""
        return self._seconds.get(key, 0.0)

    def _wait_for_own_write(self, key: Key, body: Body) -> float | None:
        """If the cached copy predates this operator's last status write: how long to wait at
        most for the newer copy; None: run now."""
        if not self.own_writes.predates_own_write(key, body):
            self._waiting.pop(key, None)
            return None
        now = time.monotonic()
        since = self._waiting.setdefault(key, now)
        extra = {"kind": self.kind, **object_ref(body)}
        left = OWN_WRITE_WAIT_SECONDS - (now - since)
        if left > 0:
            _log.debug("Waiting for the watch event of the own status write", extra=extra)
            return left + 0.1
        _log.warning("The watch event of the own status write did not come; reconciling on "
                     "the cached copy", extra={**extra, "seconds": round(now - since)})  # fmt: skip
        self.own_writes.give_up_waiting(key)
        del self._waiting[key]
        return None

    def _finished(self, body: Body, started: float, *, failed: bool) -> None:
        seconds = time.monotonic() - started
        metrics.record_reconcile(self.kind, seconds, failed=failed)
        extra = {"kind": self.kind, **object_ref(body), "seconds": round(seconds, 3)}
        _log.debug("Reconciled" if not failed else "Reconcile failed", extra=extra)
