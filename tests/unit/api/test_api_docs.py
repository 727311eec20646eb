"""docs/api.md is generated from the models: current, complete, and in the API's own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpio.api import conditions
from dpio.api.crd import KINDS
from dpio.api.docs import condition_groups, details, fields, main, render, type_name
from dpio.api.schema import structural_schema

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def test_committed_reference_is_what_the_models_generate() -> None:
    assert DOC.read_text() == render(), "run: python -m dpio.api.docs --out docs/api.md"


def test_entry_point_writes_the_same_text(tmp_path: Path) -> None:
    main(["--out", str(tmp_path / "docs" / "api.md")])

    assert (tmp_path / "docs" / "api.md").read_text() == render()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_of_both_kinds_is_listed_with_a_description(kind: object) -> None:
    text = render()
    for part, model in (("spec", kind.spec), ("status", kind.status)):  # type: ignore[attr-defined]
        docs = list(fields(structural_schema(model), f".{part}"))
        assert all(d.description for d in docs), [d.path for d in docs if not d.description]
        missing = [d.path for d in docs if f"| `{d.path}`" not in text]
        assert missing == []


def test_every_condition_type_and_reason_constant_is_listed() -> None:
    values = {
        value
        for name, value in vars(conditions).items()
        if name.isupper() and isinstance(value, str) and not name.endswith("_PATTERN")
    }
    listed = {value for group in condition_groups() for _, value, _ in group.constants}

    assert listed == values
    assert all(f"| `{value}` |" in render() for value in values)


def test_condition_groups_keep_the_modules_headings_and_notes() -> None:
    source = (
        "# Condition types, both kinds.\n"
        'READY = "Ready"\n'
        'STALLED = "Stalled"  # kstatus: needs a human\n'
        "\n"
        "# Not a reason: a pattern.\n"
        'PATTERN = "^[a-z]+$"\n'
    )

    groups = condition_groups(source)

    assert [(g.heading, g.constants) for g in groups] == [
        ("Condition types, both kinds", (("READY", "Ready", ""),
                                         ("STALLED", "Stalled", "kstatus: needs a human"))),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("node", "text"),
    [
        ({"type": "string"}, "string"),
        ({"type": "string", "format": "date-time"}, "string (date-time)"),
        ({"type": "array", "items": {"type": "object"}}, "[]object"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "map[string]string"),
    ],
)
def test_type_name(node: dict[str, object], text: str) -> None:
    assert type_name(node) == text


def test_details_show_what_the_api_server_enforces() -> None:
    node = {
        "type": "string",
        "description": "Reboot policy.",
        "enum": ["Manual", "Rolling"],
        "pattern": "^(a|b)$",
        "x-kubernetes-validations": [{"rule": "x", "message": "pick one"}],
    }

    assert details(node) == (
        "Reboot policy. One of: `Manual`, `Rolling`. Validation: pattern `^(a\\|b)$`. "
        "Rule: pick one."
    )
