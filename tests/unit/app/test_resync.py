"""A vCenter report that names no hosts: one read, one comparison, reports during it coalesce."""

from __future__ import annotations

import asyncio

from dpio.app.resync import Resyncs
from dpio.planner.observed import ObservedInventory

INVENTORY = ObservedInventory()


def test_reports_during_a_resync_make_it_run_once_more_not_once_each() -> None:
    reads: list[str] = []
    enqueued: list[ObservedInventory | None] = []

    async def main() -> None:
        resyncs = Resyncs(enqueued.append)

        async def read() -> ObservedInventory:
            reads.append("read")
            await asyncio.sleep(0.02)
            return INVENTORY

        resyncs.request("vc-a", read)
        await asyncio.sleep(0)  # reading
        for _ in range(5):
            resyncs.request("vc-a", read)  # the rest of a full state arriving in chunks
        resyncs.request("vc-b", read)  # another vCenter resyncs on its own
        while resyncs.tasks:
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert reads == ["read"] * 3  # vc-a twice (once more for the five), vc-b once
    assert enqueued == [INVENTORY] * 3


def test_when_the_read_fails_every_policy_is_queued() -> None:
    enqueued: list[ObservedInventory | None] = []

    async def main() -> None:
        resyncs = Resyncs(enqueued.append)

        async def read() -> ObservedInventory:
            raise ConnectionError("vCenter went away again")

        resyncs.request("vc-a", read)
        while resyncs.tasks:
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert enqueued == [None]
