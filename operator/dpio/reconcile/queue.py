"""A level-triggered work queue, as in client-go's workqueue: keys, not events.

Any number of triggers (a Kubernetes watch event, a vCenter change notification, a timer) may
add the same key; it is processed once, by one worker at a time, with the latest state read
when the work starts. A key that fails is retried with capped exponential backoff; a key that
succeeds forgets its failures, and when it asks for no later look, the looks earlier runs asked
for are cancelled: the latest run saw the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: base * 2**failures, at most ``cap`` seconds."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap, self.base * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class Result:
    """What one reconcile asks of the queue: nothing, a retry after failure, or a later look."""

    failed: bool = False
    requeue_after: float | None = None


class WorkQueue(Generic[K]):
    """Deduplicating queue processed by ``workers`` coroutines calling ``reconcile(key)``."""

    def __init__(
        self,
        reconcile: Callable[[K], Awaitable[Result]],
        *,
        workers: int = 4,
        backoff: Backoff | None = None,
        after_each: Callable[[], None] | None = None,
    ) -> None:
        self._reconcile = reconcile
        self._after_each = after_each  # called after every reconcile (e.g. memory.trimmer)
        self._workers = workers
        self._backoff = backoff or Backoff()
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: dict[K, None] = {}  # waiting in _queue, in its order
        self._active: set[K] = set()  # being reconciled now
        self._dirty: set[K] = set()  # added again while active: run once more afterwards
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._soon: dict[K, asyncio.TimerHandle] = {}  # add_soon's: no run cancels them
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K) -> None:
        """Schedule ``key`` now (idempotent)."""
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued[key] = None
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Schedule ``key`` in ``delay`` seconds; an earlier schedule is kept."""
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        when = loop.time() + delay
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def add_soon(self, key: K, within: float) -> None:
        """Schedule ``key`` within ``within`` seconds, coalescing: every call in that window
        makes one run. Nothing when ``key`` waits in the queue already (that run reads what
        changed). Unlike `add_after`'s, no run's result cancels it: what it stands for may have
        changed after a running reconcile read its inputs."""
        if key in self._queued or key in self._soon:
            return
        loop = asyncio.get_running_loop()
        self._soon[key] = loop.call_later(within, self._fire_soon, key)

    def forget(self, key: K) -> None:
        """Drop pending timers and failure counts of a key that no longer exists."""
        self._failures.pop(key, None)
        self._cancel_timer(key)
        soon = self._soon.pop(key, None)
        if soon is not None:
            soon.cancel()

    def upcoming(self, limit: int) -> list[K]:
        """The next `limit` keys waiting, in the order the workers will take them."""
        return list(itertools.islice(self._queued, limit))

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)

    def start(self) -> None:
        for _ in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work()))

    async def stop(self) -> None:
        for timer in [*self._timers.values(), *self._soon.values()]:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _fire_soon(self, key: K) -> None:
        self._soon.pop(key, None)
        self.add(key)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.pop(key, None)
            self._active.add(key)
            try:
                result = await self._run(key)
            finally:
                self._active.discard(key)
            self._after(key, result)
            if self._after_each is not None:
                self._after_each()

    async def _run(self, key: K) -> Result:
        try:
            return await self._reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            # One bad object must not stop the others. Reconcile functions report their own
            # errors as conditions; an exception escaping here is a bug: log it and retry.
            _log.exception("Reconcile failed unexpectedly", extra={"key": repr(key)})
            return Result(failed=True)

    def _after(self, key: K, result: Result) -> None:
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)
        if result.failed:
            self._failures[key] = self._failures.get(key, 0) + 1
            self.add_after(key, self._backoff.delay(self._failures[key]))
            return
        self._failures.pop(key, None)
        if result.requeue_after is not None:
            self.add_after(key, result.requeue_after)
        else:
            # The latest run saw the latest state and wants no later look: a look an earlier
            # run asked for (a confirmation after a change, a retry) is moot. E.g. a change's
            # confirmation that vCenter's change notification already brought costs no second
            # read (docs/benchmarks.md, finding 10).
            self._cancel_timer(key)

    def _cancel_timer(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
