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

The other way round, a cache can keep an object that is gone. When a watch comes back too late
to resume (410 Gone, as after an API server restart), kopf lists the kind again and hands us
every object as if new, but says nothing of those deleted during the gap: they would stay
cached for good, a deleted policy still granting its consumers, a deleted older policy still
winning every conflict. `forget_ghosts` lists the names again every `GHOST_SECONDS` and drops an
object that was cached before two listings in a row and in neither: one deleted a moment before
a listing has had its DELETED event by the next, one created meanwhile is in the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
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
#: How often the caches are compared with the API server's names (two rounds drop a ghost).
GHOST_SECONDS = 600.0


@dataclass(frozen=True)
class Watched:
    """One watched kind: how to list its names, and what its cache holds."""

    kind: str
    list_keys: Callable[[], Awaitable[set[Key]]]
    cached: Callable[[Key], bool]
    #: Every key its cache holds (a snapshot).
    cached_keys: Callable[[], Iterable[Key]]
    #: Drop one from the cache as a DELETED event would.
    forget: Callable[[Key], None]


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


async def forget_ghosts(
    watched: Sequence[Watched],
    *,
    every: float = GHOST_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Forever: every `every` seconds, drop from the caches the objects that are gone."""
    suspects: dict[str, set[Key]] = {w.kind: set() for w in watched}
    while True:
        await sleep(every)
        for w in watched:
            try:
                suspects[w.kind] = await ghost_round(w, suspects[w.kind])
            except KubeError as err:  # two listings in a row are needed: start over
                suspects[w.kind] = set()
                _log.warning(
                    "Could not list objects to compare with the cache",
                    extra={"kind": w.kind, "error": str(err)},
                )


async def ghost_round(watched: Watched, suspects: set[Key]) -> set[Key]:
    """One comparison: forget the objects missing from this listing and the last one (cached
    before both); return this listing's suspects for the next round."""
    before = set(watched.cached_keys())
    listed = await watched.list_keys()
    missing = before - listed
    for key in sorted(missing & suspects):
        if watched.cached(key):
            _log.warning(
                "Dropped from the cache: deleted while the watch was away",
                extra={"kind": watched.kind, "key": "/".join(k for k in key if k)},
            )
            watched.forget(key)
    return missing - suspects
