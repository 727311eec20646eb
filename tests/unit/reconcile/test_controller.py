"""The controller: latest object wins, status-only changes don't trigger, deletes forget."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dpio.reconcile.cache import Body
from dpio.reconcile.controller import Controller
from dpio.reconcile.queue import Result


def _body(name: str, generation: int = 1, status: Any = None, rv: str = "1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "generation": generation, "resourceVersion": rv},
        "spec": {"generation": generation},
    }
    if status is not None:
        body["status"] = status
    return body


def _run(events: list[tuple[str, dict[str, Any]]]) -> list[Body]:
    seen: list[Body] = []

    async def reconcile(body: Body) -> Result:
        seen.append(body)
        return Result()

    async def main() -> None:
        controller = Controller("Test", reconcile)
        for event_type, body in events:
            controller.observe(event_type, body)
        controller.start()
        await asyncio.sleep(0.1)
        await controller.stop()

    asyncio.run(main())
    return seen


def test_many_events_make_one_reconcile_of_the_latest_object() -> None:
    seen = _run(
        [("ADDED", _body("a", 1)), ("MODIFIED", _body("a", 2)), ("MODIFIED", _body("a", 3))]
    )
    assert [b["metadata"]["generation"] for b in seen] == [3]


@pytest.mark.parametrize(
    ("written_by_us", "arrives", "reconciles"),
    [
        # Our own write comes back as a MODIFIED event: nothing to do.
        ({"ready": True, "gone": None}, {"ready": True}, 1),
        # Someone else's status (or a stale copy restored): reconciled back.
        ({"ready": True}, {"ready": False}, 2),
        (None, {"ready": False}, 2),
    ],
)
def test_a_status_only_change_is_reconciled_only_when_someone_else_wrote_it(
    written_by_us: dict[str, Any] | None, arrives: dict[str, Any], reconciles: int
) -> None:
    async def main() -> list[Body]:
        seen: list[Body] = []

        async def reconcile(body: Body) -> Result:
            seen.append(body)
            return Result()

        controller = Controller("Test", reconcile)
        controller.start()
        controller.observe("ADDED", _body("a"))
        await asyncio.sleep(0.05)
        if written_by_us is not None:
            controller.own_writes.expect(("", "a"), written_by_us)
        controller.observe("MODIFIED", _body("a", status=arrives, rv="2"))
        await asyncio.sleep(0.05)
        await controller.stop()
        assert controller.cache.get(("", "a")) == _body("a", status=arrives, rv="2")
        return seen

    assert len(asyncio.run(main())) == reconciles


def test_deleted_object_is_not_reconciled() -> None:
    seen = _run([("ADDED", _body("a")), ("DELETED", _body("a")), ("ADDED", _body("b"))])
    assert [b["metadata"]["name"] for b in seen] == ["b"]


def test_enqueue_where_queues_only_the_objects_picked() -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        async def reconcile(body: Body) -> Result:
            seen.append(body["metadata"]["name"])
            return Result()

        controller = Controller("Test", reconcile)
        for name in ("a", "b", "c"):
            controller.observe("ADDED", _body(name))
        controller.start()
        await asyncio.sleep(0.05)
        seen.clear()
        controller.enqueue_where(lambda key: key[1] != "b")
        await asyncio.sleep(0.05)
        await controller.stop()
        return seen

    assert sorted(asyncio.run(main())) == ["a", "c"]
