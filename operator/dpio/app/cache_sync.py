"""The work queues start once the watch caches hold every object that existed at startup.

kopf lists each watched kind and hands the objects to our handlers one event at a time. A
reconcile that ran before a listing was delivered whole would take the incomplete cache for the
truth: an assignment deleted while the operator restarted was released as if its policy no
longer existed, its VM left with the device (the policy simply had not been delivered yet);
a newer policy could act on a host an older one, not delivered yet, owns; a policy could
disable a device that an assignment not delivered yet claims. client-go answers this with an
informer's HasSynced, and controllers wait for it before they start workers
(WaitForCacheSync); this is the same wait.

The names of every object of each watched kind are listed (metadata only, by pages), and the
queues start once each is in its cache. Events queue their keys meanwhile; nothing runs. An
object deleted in between never arrives: the names still missing are listed again every
`RELIST_SECONDS`, and those gone drop out. A listing that fails (the API server down, RBAC) is
retried with backoff; until it succeeds nothing reconciles, and the log says what is awaited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from dpio.kube.rest import KubeError
from dpio.reconcile.cache import Key
from dpio.reconcile.queue import Backoff

_log = logging.getLogger(__name__)

#: How often the caches are looked at while objects are awaited.
POLL_SECONDS = 0.2
#: Names still missing after this long are listed again (an object deleted meanwhile drops out).
RELIST_SECONDS = 10.0
#: A listing that failed is tried again after 1, 2, 4 ... up to 30 seconds.
LIST_RETRY = Backoff(1, 30)


@dataclass(frozen=True)
class Watched:
    """One watched kind: how to list its names, and whether its cache holds one."""

    kind: str
    list_keys: Callable[[], Awaitable[set[Key]]]
    cached: Callable[[Key], bool]


async def wait_until_cached(
    watched: Sequence[Watched],
    *,
    poll: float = POLL_SECONDS,
    relist: float = RELIST_SECONDS,
    retry: Backoff = LIST_RETRY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, int]:
    """Return once every object listed at the start (and still there) is cached: how many
    objects of each kind were listed."""
    pending = {w.kind: await _listed(w, retry, sleep) for w in watched}
    listed = {kind: len(keys) for kind, keys in pending.items()}
    since = clock()
    while True:
        for w in watched:
            pending[w.kind] = {key for key in pending[w.kind] if not w.cached(key)}
        if not any(pending.values()):
            return listed
        if clock() - since < relist:
            await sleep(poll)
            continue
        missing = {kind: len(keys) for kind, keys in pending.items() if keys}
        _log.info(
            "Waiting for the watches to deliver every object before reconciling",
            extra={"missing": missing},
        )
        for w in watched:
            if pending[w.kind]:
                pending[w.kind] &= await _listed(w, retry, sleep)
        since = clock()


async def _listed(
    watched: Watched, retry: Backoff, sleep: Callable[[float], Awaitable[None]]
) -> set[Key]:
    failures = 0
    while True:
        try:
            return await watched.list_keys()
        except KubeError as err:
            failures += 1
            delay = retry.delay(failures)
            _log.warning(
                "Could not list objects; nothing reconciles until it can",
                extra={"kind": watched.kind, "error": str(err), "retry_seconds": delay},
            )
            await sleep(delay)
