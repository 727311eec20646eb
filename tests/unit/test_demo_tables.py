"""The demo's pure parts: when an object counts as settled, and the NAMESPACE column."""

from __future__ import annotations

from typing import Any

import pytest

from dpio_sandbox.demo import Table, _settled, _with_namespace


def item(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "x", "namespace": "ml-team", "generation": generation}
    }
    if status is not None:
        body["status"] = status
    return body


def reconciling(value: str, observed: int = 2) -> dict[str, Any]:
    return {
        "observedGeneration": observed,
        "conditions": [{"type": "Reconciling", "status": value}],
    }


@pytest.mark.parametrize(
    ("body", "settled"),
    [
        pytest.param(item(2, None), False, id="no-status-yet"),
        pytest.param(item(2, reconciling("False")), True, id="done"),
        pytest.param(item(2, reconciling("True")), False, id="working"),
        pytest.param(item(3, reconciling("False")), False, id="older-generation"),
        pytest.param(
            item(2, {"observedGeneration": 2, "conditions": []}), False, id="no-conditions"
        ),
    ],
)
def test_settled_means_this_generation_and_not_reconciling(
    body: dict[str, Any], settled: bool
) -> None:
    assert _settled(body) is settled


@pytest.mark.parametrize(
    ("pending", "unhandled", "settled"),
    [(0, 0, True), (1, 0, False), (0, 1, False)],
)
def test_a_table_is_settled_only_without_pending_or_unhandled_objects(
    pending: int, unhandled: int, settled: bool
) -> None:
    assert Table("VMDA", "", pending=pending, unhandled=unhandled).settled is settled


def test_namespace_column_is_added_in_front_and_aligned() -> None:
    lines = ["NAME   VM", "a      vm-a", "b      vm-b"]
    items = [
        {"metadata": {"namespace": "ml-team"}},
        {"metadata": {"namespace": "a-much-longer-namespace"}},
    ]

    out = list(_with_namespace(lines, items))

    assert out[0].startswith("NAMESPACE")
    assert out[1].startswith("ml-team ")
    assert out[2].startswith("a-much-longer-namespace")
    width = len(out[0]) - len(lines[0])  # where the NAME column starts, on every line
    assert [line[width:] for line in out] == lines
    assert all(line[width - 1] == " " for line in out)
