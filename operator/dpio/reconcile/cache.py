"""The latest object of one kind per key, as the watch delivered it: what reconciles read.

Separate from the controller (queue, metrics, own writes) so that whoever only reads, such as a
reconciler that needs every policy for the conflict rule, gets the cache itself and nothing that
drives the queue; and so it exists before the reconciler that the controller is built around.
Everything here belongs to the event loop: no locks, callers are not threads.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

Body = Mapping[str, Any]
#: (namespace or "", name) — the policy is cluster-scoped, so its namespace is "".
Key = tuple[str, str]

_SKIP = frozenset({"metadata", "spec", "status"})


def key_of(body: Body) -> Key:
    meta = body.get("metadata", {})
    return (str(meta.get("namespace") or ""), str(meta.get("name", "")))


def _desired(body: Body) -> tuple[Any, ...]:
    """What a reconcile depends on: all but status, resourceVersion and managedFields."""
    meta = {
        k: v for k, v in body.get("metadata", {}).items()
        if k not in ("resourceVersion", "managedFields")
    }  # fmt: skip
    return (meta, body.get("spec"), {k: v for k, v in body.items() if k not in _SKIP})


def _identity(body: Body) -> tuple[Any, ...]:
    """What other objects' reconciles read of an object beyond its status: its spec (through
    `metadata.generation`, which the API server moves with every spec change and never on a
    status write) and whether it is being deleted; a finalizer or a label added is not a change
    of it (policy/others.py). An object without a generation changes with each version."""
    meta = body.get("metadata", {})
    generation = meta.get("generation")
    version = meta.get("resourceVersion") if generation is None else None
    return (meta.get("uid"), generation, meta.get("deletionTimestamp"), version)


def _cached(body: Body) -> dict[str, Any]:
    """A copy to keep, without `metadata.managedFields` (no reconcile reads it), its strings
    shared (`_compact`)."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
    kept: dict[str, Any] = _compact({**body, "metadata": meta})
    return kept


#: Longer strings (a long message) are kept as they came rather than interned.
_INTERN_UP_TO = 256


def _compact(value: Any) -> Any:
    """A deep copy of a JSON value whose strings are interned: every object repeats the same
    keys, condition types, reasons, messages and timestamps, and each decoded watch event
    brings its own copies of them. Shared, they halve what the cache holds: 12.9 KB -> 6.1 KB
    per object at 1,000 policies and 1,000 assignments (docs/benchmarks.md, finding 33)."""
    if isinstance(value, Mapping):
        return {_shared(k): _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return _shared(value)


def _shared(value: Any) -> Any:
    if type(value) is str and len(value) <= _INTERN_UP_TO:
        return sys.intern(value)
    return value


class Index(Protocol):
    """Something kept up to date from the cache's changes, so that a reconcile can ask it instead
    of walking every cached object (such as the assignments' claims by host,
    assignment/others.py). Called on the event loop, after the cache itself has changed."""

    def put(self, key: Key, body: Body) -> None: ...

    def forget(self, key: Key) -> None: ...


@dataclass(frozen=True, slots=True)
class Stored:
    """What `ObjectCache.put` replaced, and whether anything but the status changed."""

    previous: Body | None
    desired_changed: bool


class ObjectCache:
    """Latest objects of one kind by `Key`."""

    def __init__(self, indexes: Iterable[Index] = ()) -> None:
        self._objects: dict[Key, Body] = {}
        self._indexes = tuple(indexes)
        #: Moves whenever an object is added or deleted or anything but its status changes.
        self.desired_changes = 0
        #: Moves whenever an object is added or deleted, its spec changes or its deletion
        #: starts (`_identity`): what other objects' reconciles read of it can only have changed
        #: then (policy/others.py). Not on a finalizer added, as every first reconcile does:
        #: at 5,000 policies each of those rebuilt the others' index (finding 30).
        self.spec_changes = 0

    def put(self, body: Body) -> Stored:
        key = key_of(body)
        previous = self._objects.get(key)
        self._objects[key] = _cached(body)
        for index in self._indexes:
            index.put(key, body)
        changed = previous is None or _desired(previous) != _desired(body)
        if changed:
            self.desired_changes += 1
        if previous is None or _identity(previous) != _identity(body):
            self.spec_changes += 1
        return Stored(previous, changed)

    def delete(self, key: Key) -> None:
        self._objects.pop(key, None)
        for index in self._indexes:
            index.forget(key)
        self.desired_changes += 1
        self.spec_changes += 1

    def get(self, key: Key) -> Body | None:
        return self._objects.get(key)

    def keys_snapshot(self) -> list[Key]:
        """A snapshot: the cache may change while the caller walks it."""
        return list(self._objects)

    def objects(self) -> Iterator[Body]:
        """A snapshot of every cached object (for cross-object rules such as policy conflicts)."""
        return iter(list(self._objects.values()))

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def __len__(self) -> int:
        return len(self._objects)
