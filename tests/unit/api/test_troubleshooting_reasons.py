"""docs/troubleshooting.md explains every condition reason the API spells (dpio.api.conditions)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dpio.api import conditions
from dpio.api.docs import condition_groups

DOC = Path(__file__).resolve().parents[3] / "docs" / "troubleshooting.md"


def _reasons() -> list[tuple[str, str]]:
    """(constant, value) of every reason: all string constants but the condition types."""
    return [
        (name, value)
        for group in condition_groups()
        if not group.heading.startswith("Condition types")
        for name, value, _ in group.constants
    ]


def _types() -> list[str]:
    return [
        value
        for group in condition_groups()
        if group.heading.startswith("Condition types")
        for _, value, _ in group.constants
    ]


def _documented(doc: str) -> set[str]:
    """Backquoted words in the doc's table rows: a reason there has its meaning and its fix."""
    rows = (line for line in doc.splitlines() if line.startswith("|"))
    return {word for row in rows for word in re.findall(r"`([A-Za-z0-9]+)`", row)}


def _missing(doc: str) -> list[str]:
    return [value for _, value in _reasons() if value not in _documented(doc)]


def test_every_reason_in_the_api_module_has_a_row_in_troubleshooting() -> None:
    assert _missing(DOC.read_text()) == [], "add a table row to docs/troubleshooting.md"


def test_reasons_and_types_are_told_apart() -> None:
    # A heading renamed in dpio.api.conditions would silently make reasons look like types.
    assert set(_types()) == {
        conditions.READY, conditions.RECONCILING, conditions.STALLED, conditions.REBOOT_REQUIRED,
        conditions.DEGRADED, conditions.POWER_OFF_REQUIRED, conditions.FEATURE_CONFLICT,
        conditions.DEVICES_UNAVAILABLE, conditions.VMOTION_COMPATIBLE, conditions.FORBIDDEN,
    }  # fmt: skip
    assert {conditions.SECRET_NOT_FOUND, conditions.RECONCILED} <= {v for _, v in _reasons()}


@pytest.mark.parametrize(
    ("doc", "missing_secret_not_found"),
    [
        ("| `SecretNotFound` | Stalled=True | ... | Create it. |\n", False),
        ("| `SecretNotFound`, `SecretInvalid` | Stalled=True | ... | |\n", False),
        ("Prose mentions `SecretNotFound` but no row explains it.\n", True),
        ("| `SecretNotFoundAtAll` | Stalled=True | ... | |\n", True),
        ("| SecretNotFound | not quoted, so not a reason cell |\n", True),
    ],
)
def test_a_reason_counts_only_in_a_table_row(doc: str, missing_secret_not_found: bool) -> None:
    assert (conditions.SECRET_NOT_FOUND in _missing(doc)) is missing_secret_not_found
