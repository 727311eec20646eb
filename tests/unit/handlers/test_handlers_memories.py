"""kopf keeps no memory per object (handlers/memories.py): safe only while every handler we
register is of a kind that needs none, which the second test holds us to."""

from __future__ import annotations

import asyncio

import kopf

import dpio.handlers.main  # noqa: F401  (registers every handler)
from dpio.handlers.memories import EventOnlyMemories


def test_a_recall_gives_the_operators_memo_and_keeps_nothing() -> None:
    memories = EventOnlyMemories()
    base = kopf.Memo(runtime="the runtime")

    async def recall_twice() -> list[object]:
        body = {"metadata": {"uid": "u-1", "name": "a"}}
        first = await memories.recall(body, memobase=base, noticed_by_listing=True)
        second = await memories.recall(body, memobase=base)
        assert first is not second
        assert first.memo is not base
        return [first.memo.runtime, second.memo.runtime]

    assert asyncio.run(recall_twice()) == ["the runtime", "the runtime"]
    assert list(memories.iter_all_memories()) == []
    asyncio.run(memories.forget({"metadata": {"uid": "u-1"}}))  # nothing to forget: no error


def test_no_registered_handler_needs_kopfs_memory_of_an_object() -> None:
    registry = kopf.get_default_registry()
    needing_memory = {
        "on.create/update/delete/resume/field": registry._changing.get_all_handlers(),
        "daemons and timers": registry._spawning.get_all_handlers(),
        "indexes": registry._indexing.get_all_handlers(),
        "webhooks": registry._webhooks.get_all_handlers(),
    }
    assert {kind: list(found) for kind, found in needing_memory.items() if found} == {}
    assert registry._watching.get_all_handlers()  # the event handlers are there
