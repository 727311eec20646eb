"""One call for many callers: while a call for a key is under way, other threads that need the
same key wait for its answer instead of making the call again (Go's `singleflight`).

The vSphere reads run in the session's thread pool (session.py), so 64 reconciles of VMs on the
same host, started together, would each ask the host's EnvironmentBrowser; with this they share
one `QueryConfigTarget` (docs/benchmarks.md, the VM scenario). A waiter gets the caller's
exception too: the call failed for all of them, and each retries as its reconcile does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Thread-safe; a key is in flight only while its call runs (answers are not kept)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Future[T]] = {}
        self._waiters: dict[Hashable, int] = {}

    def waiters(self, key: Hashable) -> int:
        """How many callers wait for the call under way for ``key`` (0 when none runs)."""
        with self._lock:
            return self._waiters.get(key, 0)

    def do(self, key: Hashable, call: Callable[[], T]) -> T:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
            else:
                self._waiters[key] = self._waiters.get(key, 0) + 1
        if not leader:
            return flight.result()
        try:
            value = call()
        except BaseException as err:
            flight.set_exception(err)
            raise
        finally:
            with self._lock:
                del self._flights[key]
                self._waiters.pop(key, None)
        flight.set_result(value)
        return value
