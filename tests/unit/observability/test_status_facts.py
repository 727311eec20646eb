"""A scrape decodes a cached status once, not on every scrape (status_facts.py): the same
status as kept gives the same facts without a decode; a changed one is decoded again; a body
that cannot give its status as kept is decoded each time."""

from __future__ import annotations

from typing import Any

from dpio.observability.status_facts import StatusFacts, facts_of
from dpio.reconcile.compact import CompactBody


def body(name: str, ready: str, reason: str, summary: dict[str, int] | None = None) -> Any:
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": ready, "reason": reason}],
    }
    if summary is not None:
        status["summary"] = summary
    return {"metadata": {"name": name}, "spec": {}, "status": status}


class Counting(CompactBody):
    """Counts how often its status is decoded."""

    __slots__ = ("decodes",)

    def __init__(self, raw: dict[str, Any]) -> None:
        super().__init__(raw)
        self.decodes = 0

    def __getitem__(self, key: str) -> Any:
        if key == "status":
            self.decodes += 1
        return super().__getitem__(key)


def scrape(facts: StatusFacts, bodies: list[Any]) -> tuple[StatusFacts, list[Any]]:
    facts = facts.renewed()
    return facts, [facts.of(b) for b in bodies]


def test_an_unchanged_status_is_decoded_once_over_many_scrapes() -> None:
    a = Counting(body("a", "True", "Reconciled", {"hosts": 2, "devices": 4, "active": 3}))
    b = Counting(body("b", "False", "PendingReboot"))
    facts = StatusFacts()
    for _ in range(3):
        facts, found = scrape(facts, [a, b])
    assert found == [facts_of(body("a", "True", "Reconciled",
                                   {"hosts": 2, "devices": 4, "active": 3})),
                     ((("Ready", "False", "PendingReboot"),), None)]  # fmt: skip
    assert found[0][1] == (2.0, 4.0, 3.0, 0.0)
    assert (a.decodes, b.decodes) == (1, 1)


def test_a_changed_status_is_decoded_again() -> None:
    facts, _ = scrape(StatusFacts(), [Counting(body("a", "False", "Progressing"))])
    changed = Counting(body("a", "True", "Reconciled"))
    facts, found = scrape(facts, [changed])
    assert found == [((("Ready", "True", "Reconciled"),), None)]
    assert changed.decodes == 1


def test_objects_with_the_same_status_share_one_decode() -> None:
    same = [Counting(body(f"vm-{i}", "True", "Reconciled")) for i in range(5)]
    _, found = scrape(StatusFacts(), same)
    assert sum(b.decodes for b in same) == 1
    assert len({id(f) for f in found}) == 1


def test_a_plain_body_is_decoded_each_time_and_counts_the_same() -> None:
    plain = body("a", "True", "Reconciled")
    facts, first = scrape(StatusFacts(), [plain])
    _, second = scrape(facts, [plain])
    assert first == second == [((("Ready", "True", "Reconciled"),), None)]


def test_an_object_without_ready_counts_as_ready_unknown() -> None:
    raw = {"metadata": {"name": "new"}, "spec": {}}
    _, found = scrape(StatusFacts(), [CompactBody(raw)])
    assert found == [((("Ready", "Unknown", ""),), None)]
