"""The work queue: deduplication, one worker per key, backoff, requeue."""

from __future__ import annotations

import asyncio

import pytest

from dpio.reconcile.queue import Backoff, Result, WorkQueue


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0), (100, 30.0)],
)
def test_backoff_is_capped_exponential(failures: int, expected: float) -> None:
    assert Backoff(base=0.5, cap=30.0).delay(failures) == expected


async def _drain(queue: WorkQueue[str], seconds: float = 0.3) -> None:
    queue.start()
    await asyncio.sleep(seconds)
    await queue.stop()


def test_same_key_added_many_times_is_reconciled_once() -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> Result:
        seen.append(key)
        return Result()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile, workers=2)
        for _ in range(5):
            queue.add("a")
        queue.add("b")
        await _drain(queue)

    asyncio.run(main())
    assert sorted(seen) == ["a", "b"]


def test_key_added_while_active_runs_again_after_not_in_parallel() -> None:
    running: set[str] = set()
    overlaps: list[str] = []
    calls: list[str] = []

    async def reconcile(key: str) -> Result:
        if key in running:
            overlaps.append(key)
        running.add(key)
        calls.append(key)
        if len(calls) == 1:
            queue.add(key)  # a new event arrives while the first run is in progress
        await asyncio.sleep(0.05)
        running.discard(key)
        return Result()

    queue: WorkQueue[str]

    async def main() -> None:
        nonlocal queue
        queue = WorkQueue(reconcile, workers=4)
        queue.add("a")
        await _drain(queue)

    asyncio.run(main())
    assert calls == ["a", "a"]
    assert overlaps == []


def test_failure_retries_with_backoff_and_success_forgets_failures() -> None:
    outcomes = [Result(failed=True), Result(failed=True), Result()]
    calls: list[int] = []

    async def reconcile(key: str) -> Result:
        calls.append(queue.failures(key))
        return outcomes[len(calls) - 1]

    queue: WorkQueue[str]

    async def main() -> None:
        nonlocal queue
        queue = WorkQueue(reconcile, backoff=Backoff(base=0.01, cap=0.05))
        queue.add("a")
        await _drain(queue, 0.5)

    asyncio.run(main())
    assert calls == [0, 1, 2]
    assert queue.failures("a") == 0


def test_exception_in_reconcile_counts_as_failure_and_other_keys_continue() -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> Result:
        seen.append(key)
        if key == "bad":
            raise RuntimeError("boom")
        return Result()

    queue: WorkQueue[str]

    async def main() -> None:
        nonlocal queue
        queue = WorkQueue(reconcile, workers=1, backoff=Backoff(base=10, cap=10))
        queue.add("bad")
        queue.add("good")
        await _drain(queue)

    asyncio.run(main())
    assert seen == ["bad", "good"]
    assert queue.failures("bad") == 1


def test_requeue_after_schedules_a_later_look_and_keeps_the_earliest() -> None:
    calls: list[float] = []

    async def reconcile(key: str) -> Result:
        calls.append(asyncio.get_running_loop().time())
        return Result(requeue_after=0.1) if len(calls) == 1 else Result()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile)
        queue.add("a")
        queue.start()
        await asyncio.sleep(0.02)
        queue.add_after("a", 5.0)  # later than the pending 0.1 s: ignored
        await asyncio.sleep(0.3)
        await queue.stop()

    asyncio.run(main())
    assert len(calls) == 2
    assert 0.08 <= calls[1] - calls[0] < 1.0


def test_after_each_runs_once_per_finished_reconcile_even_a_failed_one() -> None:
    finished: list[str] = []
    hooks: list[list[str]] = []

    async def reconcile(key: str) -> Result:
        finished.append(key)
        if key == "bad":
            raise RuntimeError("boom")
        return Result()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(
            reconcile, workers=1, after_each=lambda: hooks.append(list(finished))
        )
        queue.add("a")
        queue.add("bad")
        await _drain(queue)

    asyncio.run(main())
    # Called after each run ended, with that run's key already done.
    assert hooks == [["a"], ["a", "bad"]]


@pytest.mark.parametrize(
    ("second", "runs"),
    [
        pytest.param(Result(), 2, id="settled-cancels-the-earlier-look"),
        pytest.param(Result(requeue_after=0.15), 3, id="asks-again-keeps-a-look"),
        pytest.param(Result(failed=True), 3, id="failed-retries"),
    ],
)
def test_a_run_that_asks_for_no_later_look_cancels_the_one_an_earlier_run_asked_for(
    second: Result, runs: int
) -> None:
    """A change's confirmation brought by vCenter's notification: the timer is then moot."""
    calls: list[str] = []

    async def reconcile(key: str) -> Result:
        calls.append(key)
        if len(calls) == 1:
            return Result(requeue_after=0.2)  # "confirm in a moment"
        return second if len(calls) == 2 else Result()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile, backoff=Backoff(base=0.1, cap=0.1))
        queue.add("a")
        queue.start()
        await asyncio.sleep(0.05)
        queue.add("a")  # the notification arrives before the timer
        await asyncio.sleep(0.5)
        await queue.stop()

    asyncio.run(main())
    assert len(calls) == runs


def test_add_soon_coalesces_a_burst_into_one_run_after_the_window() -> None:
    calls: list[float] = []

    async def reconcile(key: str) -> Result:
        calls.append(asyncio.get_running_loop().time())
        return Result()

    async def main() -> float:
        queue: WorkQueue[str] = WorkQueue(reconcile)
        queue.start()
        started = asyncio.get_running_loop().time()
        for _ in range(20):  # a fleet of VMs on the policy's hosts changes at once
            queue.add_soon("policy", 0.2)
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert calls == []  # not yet: the window is open
        await asyncio.sleep(0.3)
        await queue.stop()
        return started

    started = asyncio.run(main())
    assert len(calls) == 1
    assert calls[0] - started >= 0.2


def test_add_soon_is_not_cancelled_by_a_run_that_read_before_the_change() -> None:
    """The change arrives while the key runs; that run ends asking for no later look. An
    add_after timer would be cancelled then, and the change never reconciled."""
    calls: list[str] = []
    gate = asyncio.Event()

    async def reconcile(key: str) -> Result:
        calls.append(key)
        if len(calls) == 1:
            await gate.wait()  # read its inputs, now busy
        return Result()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile)
        queue.add("p")
        queue.start()
        await asyncio.sleep(0.02)
        queue.add_soon("p", 0.1)  # the change, during the run
        gate.set()
        await asyncio.sleep(0.3)
        await queue.stop()

    asyncio.run(main())
    assert calls == ["p", "p"]


def test_add_soon_of_a_queued_key_adds_nothing_and_stop_or_forget_cancel_it() -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> Result:
        calls.append(key)
        return Result()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile)
        queue.add("queued")
        queue.add_soon("queued", 0.05)  # the queued run will read the change
        queue.add_soon("forgotten", 0.05)
        queue.forget("forgotten")
        queue.add_soon("stopped", 0.2)
        queue.start()
        await asyncio.sleep(0.15)
        await queue.stop()
        await asyncio.sleep(0.15)

    asyncio.run(main())
    assert calls == ["queued"]


def test_upcoming_names_the_waiting_keys_in_the_order_the_workers_take_them() -> None:
    order: list[str] = []
    upcoming: list[list[str]] = []
    queues: list[WorkQueue[str]] = []

    async def reconcile(key: str) -> Result:
        order.append(key)
        upcoming.append(queues[0].upcoming(2))
        return Result()

    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(reconcile, workers=1)
        queues.append(queue)
        for key in ("c", "a", "b", "a", "d"):
            queue.add(key)
        assert queue.upcoming(10) == ["c", "a", "b", "d"]
        await _drain(queue)

    asyncio.run(main())
    assert order == ["c", "a", "b", "d"]
    assert upcoming == [["a", "b"], ["b", "d"], ["d"], []]
