"""Tell the controller which status the operator is about to write, so the watch event of its
own write is told apart from a status someone else wrote (which is then put right).

`OwnStatusWrites` wraps the `ObjectsPort`, so neither the reconcilers nor the Kubernetes adapter
carry the bookkeeping; `ExpectedStatuses` is the bookkeeping, which the controller consults on
each status-only watch event. The status is recorded before the write: the watch event can
arrive before the patch call returns.

It also knows when the cached copy of an object predates the operator's own last status write:
a write that landed on the copy of resourceVersion R makes that copy stale until the watch
brings a newer one. After a watch gap (the API server restarted) that can take seconds, and a
reconcile comparing its status with the stale copy finds nothing to change (the copy still has
the status from before the write) and leaves what it wrote, e.g. `Reconciling=True`, in place
for good. The controller lets such a reconcile wait for the newer copy instead
(`Controller._run`).
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


def merge_patched(target: Any, patch: Any) -> Any:
    """`target` after the JSON merge patch `patch` (RFC 7386), as the API server applies it."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patched(result.get(key), value)
    return result


def resource_version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


class ExpectedStatuses:
    """The status this operator last wrote, per object of one kind, until its watch event came
    back, and which cached copies predate a write of it that landed.

    A written status is kept only until the watch brings it back: from then on the cached copy
    holds it, and comparing with that copy is the same comparison. Keeping a copy of every
    object's status beside the cache's was 9 MiB per 1,000 policies and 1,000 assignments
    (docs/benchmarks.md, finding 33)."""

    def __init__(self) -> None:
        #: key -> the status written last, until the watch event that carries it
        self._written: dict[Key, Any] = {}
        #: key -> the resourceVersion a landed status write was made on (as its precondition):
        #: a cached copy of that resourceVersion predates the write.
        self._landed_on: dict[Key, str] = {}

    def expect(self, key: Key, status: Mapping[str, Any]) -> None:
        """Called just before this operator writes `status` (merge-patch form) to `key`."""
        self._written[key] = without_nulls(status)

    def is_own(self, key: Key, status: Any, previous: Any) -> bool:
        """Is `status` the one this operator wrote last (`previous`, the cached status, if no
        write of it is waiting for its watch event)? Called once the cache holds `status`."""
        own = bool(status == self._written.get(key, previous))
        if own:
            self._written.pop(key, None)  # the cache holds it now: `previous` from here on
        return own

    def waiting(self) -> int:
        """How many written statuses wait for their watch event (for tests)."""
        return len(self._written)

    def landed(self, key: Key, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """The write of `status` on `body` succeeded. A write that changes nothing moves no
        resourceVersion and brings no watch event: it leaves the copy as current as it was."""
        rv, before = resource_version(body), body.get("status") or {}
        if rv and merge_patched(before, status) != before:
            self._landed_on[key] = rv

    def predates_own_write(self, key: Key, body: Mapping[str, Any]) -> bool:
        """Is `body` (the cached copy) older than a status write of this operator that landed?
        Until the watch brings a newer copy, comparing with this one's status is comparing with
        a status the operator has already replaced."""
        return self._landed_on.get(key) == resource_version(body)

    def seen(self, key: Key, body: Mapping[str, Any]) -> None:
        """The watch delivered `body`: a copy newer than the one the last write was made on
        carries that write (or something later)."""
        if self._landed_on.get(key, resource_version(body)) != resource_version(body):
            del self._landed_on[key]

    def give_up_waiting(self, key: Key) -> None:
        """Stop treating the cached copy as older than the last write (see `Controller`)."""
        self._landed_on.pop(key, None)

    def forget(self, key: Key) -> None:
        self._written.pop(key, None)
        self._landed_on.pop(key, None)


class OwnStatusWrites:
    """An `ObjectsPort` that records each status write in `expected` first, and whether it
    landed after."""

    def __init__(self, inner: ObjectsPort, expected: ExpectedStatuses) -> None:
        self.inner = inner
        self.expected = expected

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        key = key_of(body)
        self.expected.expect(key, status)
        # A write that fails did not land (409: the precondition failed), or it is not known
        # whether it did (the connection broke): then the copy is not marked stale, and the
        # next write on it fails with 409 if this one had landed.
        await self.inner.patch_status(body, status)
        self.expected.landed(key, body, status)

    async def set_finalizers(self, body: Mapping[str, Any], finalizers: list[str]) -> None:
        await self.inner.set_finalizers(body, finalizers)

    async def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        await self.inner.event(body, type_, reason, message)
