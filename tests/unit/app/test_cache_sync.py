"""The work queues start only once the caches hold every object listed at startup: a reconcile
never takes a cache the watches have not filled yet for the truth (app/cache_sync.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from dpio.app.cache_sync import Watched, forget_ghosts, ghost_round, wait_until_cached
from dpio.kube.rest import KubeError
from dpio.reconcile.cache import Key
from dpio.reconcile.queue import Backoff


class Clock:
    """A clock that moves only when the code under test sleeps; `at` runs things when due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._due: list[tuple[float, Callable[[], None]]] = []

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._due.append((when, action))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for item in [d for d in self._due if d[0] <= self.now]:
            self._due.remove(item)
            item[1]()


def _kind(
    kind: str, existing: set[Key], cache: set[Key], *, failures: int = 0
) -> tuple[Watched, list[int]]:
    """A kind whose listing answers `existing` (after `failures` failed calls); `cache` is what
    its watch delivered so far. Returns it and the count of listing calls."""
    calls = [0]

    async def list_keys() -> set[Key]:
        calls[0] += 1
        if calls[0] <= failures:
            raise KubeError("GET /apis/...: 503 the API server is starting", status=503)
        return set(existing)

    return Watched(kind, list_keys, cache.__contains__, lambda: set(cache), cache.discard), calls


def _wait(clock: Clock, *watched: Watched, relist: float = 10.0) -> dict[str, int]:
    return asyncio.run(
        wait_until_cached(
            watched,
            poll=0.2,
            relist=relist,
            retry=Backoff(1, 30),
            clock=lambda: clock.now,
            sleep=clock.sleep,
        )
    )


def test_it_returns_only_once_every_listed_object_of_every_kind_is_cached() -> None:
    clock = Clock()
    policies: set[Key] = set()
    assignments: set[Key] = {("team-a", "vm-0")}
    policy, _ = _kind("HostPassthroughPolicy", {("", "gpus")}, policies)
    assignment, _ = _kind(
        "VMDeviceAssignment", {("team-a", "vm-0"), ("team-a", "vm-1")}, assignments
    )
    # The assignments' watch is quicker than the policies': the policy comes last, at 3 s.
    clock.at(1.0, lambda: assignments.add(("team-a", "vm-1")))
    clock.at(3.0, lambda: policies.add(("", "gpus")))

    listed = _wait(clock, policy, assignment)

    assert listed == {"HostPassthroughPolicy": 1, "VMDeviceAssignment": 2}
    assert 3.0 <= clock.now < 3.5  # not before the policy was cached, and soon after


def test_nothing_listed_means_nothing_to_wait_for() -> None:
    clock = Clock()
    empty, _ = _kind("HostPassthroughPolicy", set(), set())
    assert _wait(clock, empty) == {"HostPassthroughPolicy": 0}
    assert clock.sleeps == []


def test_an_object_deleted_before_its_watch_delivered_it_drops_out_at_the_next_listing() -> None:
    clock = Clock()
    existing = {("", "a"), ("", "b")}
    cache = {("", "a")}
    policy, calls = _kind("HostPassthroughPolicy", existing, cache)
    clock.at(2.0, lambda: existing.discard(("", "b")))  # deleted: no watch will bring it

    _wait(clock, policy, relist=10.0)

    assert calls[0] == 2  # listed at the start, and once more after 10 s
    assert 10.0 <= clock.now < 10.5


def test_an_object_still_there_is_awaited_however_many_listings_it_takes() -> None:
    clock = Clock()
    existing = {("ns", "late")}
    cache: set[Key] = set()
    assignment, calls = _kind("VMDeviceAssignment", existing, cache)
    clock.at(35.0, lambda: cache.add(("ns", "late")))

    _wait(clock, assignment, relist=10.0)

    assert clock.now >= 35.0
    assert calls[0] == 4  # at 0, 10, 20 and 30 s: it was still there each time


def test_a_failed_listing_is_retried_with_backoff_and_nothing_is_assumed_meanwhile() -> None:
    clock = Clock()
    cache: set[Key] = set()
    policy, calls = _kind("HostPassthroughPolicy", {("", "gpus")}, cache, failures=3)
    clock.at(0.5, lambda: cache.add(("", "gpus")))

    listed = _wait(clock, policy)

    assert calls[0] == 4
    assert clock.sleeps[:3] == [1, 2, 4]
    assert listed == {"HostPassthroughPolicy": 1}


def test_an_error_other_than_the_api_servers_is_not_swallowed() -> None:
    async def broken() -> set[Key]:
        raise ValueError("a bug")

    clock = Clock()
    with pytest.raises(ValueError, match="a bug"):
        _wait(clock, Watched("Namespace", broken, lambda _: True, tuple, lambda _: None))


def _cached_kind(cache: set[Key], existing: set[Key]) -> tuple[Watched, list[Key]]:
    forgotten: list[Key] = []

    async def list_keys() -> set[Key]:
        return set(existing)

    def forget(key: Key) -> None:
        forgotten.append(key)
        cache.discard(key)

    watched = Watched(
        "HostPassthroughPolicy", list_keys, cache.__contains__, lambda: set(cache), forget
    )
    return watched, forgotten


def test_an_object_missing_from_two_listings_in_a_row_is_dropped_from_the_cache() -> None:
    """A policy deleted while the watch was away (410 Gone: kopf lists again and says nothing of
    what went meanwhile) would otherwise keep granting its consumers for good."""
    cache = {("", "kept"), ("", "ghost")}
    existing = {("", "kept")}
    watched, forgotten = _cached_kind(cache, existing)

    suspects = asyncio.run(ghost_round(watched, set()))
    assert suspects == {("", "ghost")}
    assert forgotten == []  # once is not enough: its DELETED event may be on its way

    suspects = asyncio.run(ghost_round(watched, suspects))
    assert forgotten == [("", "ghost")]
    assert cache == {("", "kept")}
    assert suspects == set()


def test_what_was_deleted_the_usual_way_or_created_meanwhile_is_left_alone() -> None:
    cache = {("", "going")}
    existing: set[Key] = set()
    watched, forgotten = _cached_kind(cache, existing)
    suspects = asyncio.run(ghost_round(watched, set()))
    assert suspects == {("", "going")}

    cache.discard(("", "going"))  # its DELETED event came
    existing.add(("", "new"))  # created after the first listing, before the second
    cache.add(("", "new"))
    asyncio.run(ghost_round(watched, suspects))
    assert forgotten == []
    assert cache == {("", "new")}


def test_a_failed_listing_starts_the_count_over() -> None:
    cache = {("", "ghost")}
    answers: list[set[Key] | KubeError] = [set(), KubeError("503", status=503), set(), set()]
    forgotten: list[Key] = []

    async def list_keys() -> set[Key]:
        answer = answers.pop(0)
        if isinstance(answer, KubeError):
            raise answer
        return answer

    watched = Watched(
        "Namespace", list_keys, cache.__contains__, lambda: set(cache), forgotten.append
    )
    clock = Clock()

    async def rounds() -> None:
        with pytest.raises(IndexError):  # the fake ran out of answers: 4 rounds done
            await forget_ghosts([watched], every=600, sleep=clock.sleep)

    asyncio.run(rounds())
    # Missing, failed (start over), missing, missing: forgotten at the 4th round only.
    assert forgotten == [("", "ghost")]
    assert clock.sleeps == [600, 600, 600, 600, 600]
