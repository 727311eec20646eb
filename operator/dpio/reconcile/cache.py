"""The latest object of one kind per key, as the watch delivered it: what reconciles read.

Separate from the controller (queue, metrics, own writes) so that whoever only reads, such as a
reconciler that needs every policy for the conflict rule, gets the cache itself and nothing that
drives the queue; and so it exists before the reconciler that the controller is built around.
Everything here belongs to the event loop: no locks, callers are not threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dpio.reconcile.compact import CompactBody

Body = Mapping[str, Any]
#: (namespace or "", name) — the policy is cluster-scoped, so its namespace is "".
Key = tuple[str, str]

_STATUS = frozenset({"status"})


def key_of(body: Body) -> Key:
    meta = body.get("metadata", {})
    return (str(meta.get("namespace") or ""), str(meta.get("name", "")))


def _desired(body: CompactBody) -> tuple[Any, ...]:
    """What a reconcile depends on: all but status, resourceVersion and managedFields (the
    cache keeps no managedFields), compared as kept: no field is decoded."""
    meta = {k: v for k, v in body.metadata.items() if k != "resourceVersion"}
    return (meta, body.fields_but(_STATUS))


def _identity(body: CompactBody) -> tuple[Any, ...]:
    """What other objects' reconciles read of an object beyond its status: its spec (through
    `metadata.generation`, which the API server moves with every spec change and never on a
    status write) and whether it is being deleted; a finalizer or a label added is not a change
    of it (policy/others.py). An object without a generation changes with each version."""
    meta = body.metadata
    generation = meta.get("generation")
    version = meta.get("resourceVersion") if generation is None else None
    return (meta.get("uid"), generation, meta.get("deletionTimestamp"), version)


class Index(Protocol):
    """Something kept up to date from the cache's changes, so that a reconcile can ask it instead
    of walking every cached object (such as the assignments' claims by host,
    assignment/others.py). Called on the event loop, after the cache itself has changed."""

    def put(self, key: Key, body: Body) -> None: ...

    def forget(self, key: Key) -> None: ...


@dataclass(frozen=True, slots=True)
class Stored:
    """What `ObjectCache.put` replaced, and whether anything but the status changed."""

    previous: CompactBody | None
    desired_changed: bool


class ObjectCache:
    """Latest objects of one kind by `Key`, each as a `CompactBody`: its metadata as a dict,
    its other fields decoded on each access (compact.py)."""

    def __init__(self, indexes: Iterable[Index] = ()) -> None:
        self._objects: dict[Key, CompactBody] = {}
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
        previous, kept = self._objects.get(key), CompactBody(body)
        self._objects[key] = kept
        for index in self._indexes:
            index.put(key, body)
        changed = previous is None or _desired(previous) != _desired(kept)
        if changed:
            self.desired_changes += 1
        if previous is None or _identity(previous) != _identity(kept):
            self.spec_changes += 1
        return Stored(previous, changed)

    def delete(self, key: Key) -> None:
        self._objects.pop(key, None)
        for index in self._indexes:
            index.forget(key)
        self.desired_changes += 1
        self.spec_changes += 1

    def get(self, key: Key) -> CompactBody | None:
        return self._objects.get(key)

    def keys_snapshot(self) -> list[Key]:
        """A snapshot: the cache may change while the caller walks it."""
        return list(self._objects)

    def objects(self) -> Iterator[CompactBody]:
        """A snapshot of every cached object (for cross-object rules such as policy conflicts;
        reading their metadata decodes nothing)."""
        return iter(list(self._objects.values()))

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def __len__(self) -> int:
        return len(self._objects)
