"""A reconcile never compares with a status older than the operator's own last write.

After a watch gap (kube-apiserver restarted, tests/faults/test_apiserver_restart.py) the
confirming pass ran on the cached copy from before the operator's own last status write
(Reconciling=True), computed Ready, found it equal to the stale copy's Ready, wrote nothing, and
the event of its own write then matched what it had written: Reconciling=True stayed for good.
The controller now lets such a run wait for the watch to bring the newer copy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import pytest

from dpio.reconcile import controller as controller_module
from dpio.reconcile.cache import Body
from dpio.reconcile.controller import Controller
from dpio.reconcile.own_writes import ExpectedStatuses, OwnStatusWrites, merge_patched
from dpio.reconcile.queue import Result

KEY = ("", "a")
READY = {"phase": "Ready", "hosts": [{"name": "h1"}]}
RECONCILING = {"phase": "Reconciling", "hosts": [{"name": "h1"}]}


def _body(status: Any, rv: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "a", "generation": 1, "resourceVersion": rv},
        "spec": {"x": 1},
        "status": status,
    }


class _Api:
    """The Kubernetes side of `patch_status`: fails with `error` if set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.writes: list[Mapping[str, Any]] = []

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        self.writes.append(status)

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        raise AssertionError("not used")

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        raise AssertionError("not used")


class _Setup:
    """A controller whose reconciles are recorded, and its own-writes port."""

    def __init__(self, api: _Api) -> None:
        self.seen: list[Body] = []
        self.expected = ExpectedStatuses()
        self.objects = OwnStatusWrites(api, self.expected)
        self.controller = Controller("Test", self._reconcile, own_writes=self.expected)

    async def _reconcile(self, body: Body) -> Result:
        self.seen.append(body)
        return Result()

    def statuses(self) -> list[tuple[str, str]]:
        return [(b["metadata"]["resourceVersion"], b["status"]["phase"]) for b in self.seen]


async def _settle() -> None:
    await asyncio.sleep(0.05)


def test_a_run_on_a_copy_older_than_its_own_write_waits_for_the_watch_event() -> None:
    async def main() -> list[tuple[str, str]]:
        setup = _Setup(_Api())
        setup.controller.start()
        setup.controller.observe("ADDED", _body(READY, "1"))
        await _settle()
        # The write of rv 1's reconcile lands (rv 2); its event is held up (a watch gap).
        await setup.objects.patch_status(_body(READY, "1"), RECONCILING)
        setup.controller.enqueue(KEY)  # the confirming pass, 2 s later
        await _settle()
        assert setup.statuses() == [("1", "Ready")]  # it did not run on rv 1
        setup.controller.observe("MODIFIED", _body(RECONCILING, "2"))  # the watch is back
        await _settle()
        await setup.controller.stop()
        return setup.statuses()

    assert asyncio.run(main()) == [("1", "Ready"), ("2", "Reconciling")]


@pytest.mark.parametrize(
    ("api", "written", "event_first"),
    [
        pytest.param(_Api(), READY, False, id="a-write-that-changed-nothing"),
        pytest.param(_Api(RuntimeError("409 Conflict")), RECONCILING, False, id="a-failed-write"),
        pytest.param(_Api(), RECONCILING, True, id="the-event-came-before-the-call-returned"),
    ],
)
def test_a_run_does_not_wait_when_the_cached_copy_is_not_older_than_a_landed_write(
    api: _Api, written: dict[str, Any], event_first: bool
) -> None:
    async def main() -> list[str]:
        setup = _Setup(api)
        setup.controller.start()
        setup.controller.observe("ADDED", _body(READY, "1"))
        await _settle()
        if event_first:
            setup.expected.expect(KEY, written)
            setup.controller.observe("MODIFIED", _body(written, "2"))
        with contextlib.suppress(RuntimeError):
            await setup.objects.patch_status(_body(READY, "1"), written)
        setup.controller.enqueue(KEY)
        await _settle()
        await setup.controller.stop()
        return [b["metadata"]["resourceVersion"] for b in setup.seen]

    assert asyncio.run(main()) == ["1", "2" if event_first else "1"]


def test_a_run_gives_up_waiting_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """The event never comes (e.g. the API server kept the write without a new
    resourceVersion): the run goes ahead on the cached copy after OWN_WRITE_WAIT_SECONDS."""
    monkeypatch.setattr(controller_module, "OWN_WRITE_WAIT_SECONDS", 0.2)

    async def main() -> list[tuple[str, str]]:
        setup = _Setup(_Api())
        setup.controller.start()
        setup.controller.observe("ADDED", _body(READY, "1"))
        await _settle()
        await setup.objects.patch_status(_body(READY, "1"), RECONCILING)
        setup.controller.enqueue(KEY)
        await _settle()
        assert len(setup.seen) == 1
        await asyncio.sleep(0.4)
        await setup.controller.stop()
        return setup.statuses()

    assert asyncio.run(main()) == [("1", "Ready"), ("1", "Ready")]


def test_a_written_status_is_kept_only_until_its_watch_event_comes_back() -> None:
    expected = ExpectedStatuses()
    expected.expect(KEY, {**READY, "gone": None})
    assert expected.waiting() == 1
    assert not expected.is_own(KEY, RECONCILING, previous=RECONCILING)  # not ours: still waits
    assert expected.waiting() == 1
    assert expected.is_own(KEY, READY, previous=RECONCILING)  # ours (nulls are removals)
    assert expected.waiting() == 0
    # From now on the cached copy (ours) is what a status is compared with.
    assert expected.is_own(KEY, READY, previous=READY)
    assert not expected.is_own(KEY, RECONCILING, previous=READY)


def test_a_deleted_object_forgets_the_wait() -> None:
    async def main() -> list[str]:
        setup = _Setup(_Api())
        setup.controller.start()
        setup.controller.observe("ADDED", _body(READY, "1"))
        await _settle()
        await setup.objects.patch_status(_body(READY, "1"), RECONCILING)
        setup.controller.enqueue(KEY)
        await _settle()
        setup.controller.observe("DELETED", _body(RECONCILING, "2"))
        setup.controller.observe("ADDED", _body(READY, "1"))  # a new object of the same name
        await _settle()
        await setup.controller.stop()
        return [b["metadata"]["resourceVersion"] for b in setup.seen]

    assert asyncio.run(main()) == ["1", "1"]


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}},
         {"a": 1, "b": {"d": 3, "e": 4}}),
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),  # lists are replaced whole
        ({}, {"a": {"b": None}}, {"a": {}}),
        ({"a": 1}, {"a": 1}, {"a": 1}),
    ],
)  # fmt: skip
def test_merge_patched_is_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patched(target, patch) == result
