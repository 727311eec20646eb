"""Tell the controller which status the operator is about to write, so the watch event of its
own write is told apart from a status someone else wrote (which is then put right).

`OwnStatusWrites` wraps the `ObjectsPort`, so neither the reconcilers nor the Kubernetes adapter
carry the bookkeeping; `ExpectedStatuses` is the bookkeeping, which the controller consults on
each status-only watch event. The status is recorded before the write: the watch event can
arrive before the patch call returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dpio.reconcile.cache import Key, key_of
from dpio.reconcile.ports import ObjectsPort


def without_nulls(value: Any) -> Any:
    """A status as the API server keeps it after a merge patch: null means "remove the field"."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class ExpectedStatuses:
    """The status this operator last wrote, per object of one kind."""

    def __init__(self) -> None:
        self._written: dict[Key, Any] = {}

    def expect(self, key: Key, status: Mapping[str, Any]) -> None:
        """Called just before this operator writes `status` (merge-patch form) to `key`."""
        self._written[key] = without_nulls(status)

    def is_own(self, key: Key, status: Any, previous: Any) -> bool:
        """Is `status` the one this operator wrote last (`previous`, the cached status, if it
        wrote none yet)?"""
        return bool(status == self._written.get(key, previous))

    def forget(self, key: Key) -> None:
        self._written.pop(key, None)


class OwnStatusWrites:
    """An `ObjectsPort` that records each status write in `expected` first."""

    def __init__(self, inner: ObjectsPort, expected: ExpectedStatuses) -> None:
        self.inner = inner
        self.expected = expected

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        self.expected.expect(key_of(body), status)
        await self.inner.patch_status(body, status)

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        await self.inner.set_finalizers(body, finalizers)

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        await self.inner.event(body, type_, reason, message)
