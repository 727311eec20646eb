"""What a scrape takes of each cached object's status, decoded once per status.

The caches keep statuses packed (`reconcile/compact.py`); a scrape needs only the conditions
and a policy's summary numbers of each. Decoding every status on every scrape was a quarter of
the operator's CPU in a restart over 5,000 objects while the benchmark scraped
(docs/benchmarks.md, finding 41): `StatusFacts` keeps the answer per status as kept, so a
scrape decodes only what changed since the last one. A leaf, like the rest of observability.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: What a scrape takes of one status: its conditions (with Ready=Unknown when it has none) and
#: its summary's numbers (hosts, matched, active, pendingReboot), if it has a summary.
Facts = tuple[tuple[tuple[str, str, str], ...], tuple[float, float, float, float] | None]


class StatusFacts:
    """`Facts` by status as the cache keeps it (`CompactBody.packed`: the same bytes for the
    same status), for one scrape, with what the previous scrape found. A body that cannot give
    its status so is decoded every time."""

    def __init__(self, previous: dict[Any, Facts] | None = None) -> None:
        self._previous = previous or {}
        self._now: dict[Any, Facts] = {}
        self._shared: dict[Facts, Facts] = {}  # one copy of each distinct value

    def renewed(self) -> StatusFacts:
        """For the next scrape: what this one found, and nothing it no longer saw."""
        return StatusFacts(self._now)

    def of(self, body: Mapping[str, Any]) -> Facts:
        packed = getattr(body, "packed", None)
        key = packed("status") if callable(packed) else None
        if key is None:
            return facts_of(body)
        found = self._now.get(key) or self._previous.get(key)
        if found is None:
            value = facts_of(body)
            found = self._shared.setdefault(value, value)
        self._now[key] = found
        return found


def facts_of(body: Mapping[str, Any]) -> Facts:
    """`Facts` of `body`, its status decoded once."""
    status = body.get("status") or {}
    found = _conditions(status)
    if not any(c[0] == "Ready" for c in found):
        found.append(("Ready", "Unknown", ""))
    summary = status.get("summary") if isinstance(status, Mapping) else None
    if not isinstance(summary, Mapping):
        return tuple(found), None
    hosts, devices, active, pending = (
        float(summary.get(field, 0)) for field in ("hosts", "devices", "active", "pendingReboot")
    )
    return tuple(found), (hosts, devices, active, pending)


def condition_counts(bodies: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], int]:
    """(type, status, reason) -> number of objects; an object with no Ready yet counts as
    Ready=Unknown, as the status contract has it (docs/design.md#status-contract)."""
    return counted_labels(facts_of(body)[0] for body in bodies)


def counted_labels(
    found: Iterable[tuple[tuple[str, str, str], ...]],
) -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for conditions in found:
        for labels in conditions:
            counts[labels] = counts.get(labels, 0) + 1
    return counts


def _conditions(status: Any) -> list[tuple[str, str, str]]:
    raw = status.get("conditions") if isinstance(status, Mapping) else None
    result = []
    for c in raw or ():
        if isinstance(c, Mapping) and c.get("type"):
            result.append(
                (str(c["type"]), str(c.get("status", "Unknown")), str(c.get("reason", "")))
            )
    return result
