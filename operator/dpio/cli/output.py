"""Output formats shared by the subcommands: aligned text tables, JSON and YAML.

Tables follow `kubectl get`: upper-case headers, columns separated by three spaces, no borders,
empty cells shown as `-` so columns stay parseable with `awk`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import yaml

EMPTY = "-"
_GAP = "   "


class Format(StrEnum):
    """`-o`: what `kubectl` users expect."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def cell(value: object) -> str:
    """One table cell: booleans as yes/no (as the vSphere Client shows them), None as `-`."""
    if value is None or value in ("", ()):
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or EMPTY
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns as wide as their widest cell; the last column is not padded."""
    texts = [[h.upper() for h in headers], *([cell(v) for v in row] for row in rows)]
    widths = [max(len(r[i]) for r in texts) for i in range(len(headers))]
    lines = []
    for row in texts:
        padded = [text.ljust(width) for text, width in zip(row[:-1], widths, strict=False)]
        lines.append(_GAP.join([*padded, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def dump(data: Any, fmt: Format) -> str:
    """Machine-readable output: stable key order as built, ISO timestamps already strings."""
    if fmt is Format.YAML:
        return yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)
    return json.dumps(data, indent=2) + "\n"
