"""The other HostPassthroughPolicies, parsed and compiled once per generation.

Every plan needs every other policy for the conflict rule (docs/design.md,
"Host side: policy conflicts"). Parsing each cached body with pydantic and compiling its
selectors on every reconcile would make convergence O(N²) (measured in docs/benchmarks.md,
finding 1: 81,600 `model_validate` calls for 200 policies). A body is parsed again only when its
uid or `metadata.generation` changes: the API server bumps the generation on every spec change
and never on a status write, while `resourceVersion` moves with each status write of every
policy; `deletionTimestamp` is read from the raw body each time.

Even without parsing, walking every cached body on every reconcile is O(N) per reconcile: at
5,000 policies ~10 ms each, half the operator's CPU (docs/benchmarks.md, finding 15).
`others_at` keeps the whole list while the cache's `spec_changes` count stays the same (it
moves when a policy is added or deleted, its spec changes or its deletion starts; never on a
status write nor on a finalizer added).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dpio.api.policy import HostPassthroughPolicy
from dpio.planner import OtherPolicy, OthersIndex
from dpio.planner.selection import InvalidSpecError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: (uid, generation, resourceVersion when there is no generation): when to parse again.
_Stamp = tuple[str, str, str]


def _stamp(meta: Mapping[str, Any]) -> _Stamp:
    generation = meta.get("generation")
    version = "" if generation is not None else str(meta.get("resourceVersion", ""))
    return (str(meta.get("uid", "")), str(generation), version)


def _parse(body: Mapping[str, Any]) -> OtherPolicy | None:
    """None: the body does not parse or its selectors don't compile, so it claims nothing."""
    try:
        policy = HostPassthroughPolicy.model_validate(body)
        return OtherPolicy.compile(
            policy.metadata.name, policy.metadata.creation_timestamp or _EPOCH, policy.spec
        )
    except (ValidationError, InvalidSpecError):
        return None


class OtherPolicies:
    """Remembers each policy's parsed `OtherPolicy` by name until its stamp changes."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[_Stamp, OtherPolicy | None]] = {}
        self.parses = 0  # how many bodies were parsed (for tests)
        self.walks = 0  # how many times every body was looked at (for tests)
        self._at: tuple[int, list[OtherPolicy]] | None = None  # (spec_changes, all of them)
        self._index: tuple[int, OthersIndex] | None = None  # (spec_changes, their index)

    def others_at(
        self, version: int, bodies: Callable[[], Iterable[Mapping[str, Any]]], name: str
    ) -> list[OtherPolicy]:
        """`others`, walking the bodies only when `version` (the cache's count of changes of
        anything but status) moved since the last walk."""
        return [other for other in self._all_at(version, bodies) if other.name != name]

    def index_at(
        self, version: int, bodies: Callable[[], Iterable[Mapping[str, Any]]]
    ) -> OthersIndex:
        """Every policy (the one being planned too: `Rivals.build` leaves it out), indexed by
        the hosts and clusters they name; built again only when `version` moved."""
        if self._index is None or self._index[0] != version:
            self._index = (version, OthersIndex(self._all_at(version, bodies)))
        return self._index[1]

    def _all_at(
        self, version: int, bodies: Callable[[], Iterable[Mapping[str, Any]]]
    ) -> list[OtherPolicy]:
        if self._at is None or self._at[0] != version:
            self._at = (version, self.others(bodies(), ""))
        return self._at[1]

    def others(self, bodies: Iterable[Mapping[str, Any]], name: str) -> list[OtherPolicy]:
        """Every policy in `bodies` but `name` and those being deleted, in `bodies`' order."""
        self.walks += 1
        kept: dict[str, tuple[_Stamp, OtherPolicy | None]] = {}
        result = []
        for body in bodies:
            meta = body.get("metadata", {})
            key, stamp = str(meta.get("name", "")), _stamp(meta)
            entry = self._parsed.get(key)
            if entry is None or entry[0] != stamp:
                self.parses += 1
                entry = (stamp, _parse(body))
            kept[key] = entry
            if key != name and not meta.get("deletionTimestamp") and entry[1] is not None:
                result.append(entry[1])
        self._parsed = kept  # policies gone from the cache are forgotten here
        return result
