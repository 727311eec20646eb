"""The words our objects repeat, as JSON: a preset dictionary for compressing them.

Every status of either kind spells the same field names, condition types, reasons and enum
values again (an assignment's status is ~2.2 KB of compact JSON, most of it those words). The
operator's caches keep spec and status compressed against this dictionary (reconcile/compact.py),
which shrinks such a status to ~510 bytes where zlib alone reaches ~740.

Derived from the API itself, so a field or reason added here is in the dictionary too; any
bytes would decompress correctly, these only make the result small.
"""

from __future__ import annotations

import json
import re
from functools import cache

from dpio.api import conditions
from dpio.api.crd import KINDS
from dpio.api.schema import structural_schema, walk

_CAMEL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _condition_words() -> list[str]:
    """Condition types and reasons: conditions.py spells each once, as a CamelCase constant."""
    words = (value for name, value in vars(conditions).items() if name.isupper())
    return [w for w in words if isinstance(w, str) and _CAMEL_CASE.match(w)]


def _schema_words() -> tuple[list[str], list[str]]:
    """Field names and enum values of both kinds' spec and status, in schema order."""
    names: list[str] = []
    values: list[str] = []
    for kind in KINDS:
        for model in (kind.spec, kind.status):
            for path, node in walk(structural_schema(model)):
                name = path.rsplit(".", 1)[-1]
                if name and not name.endswith(("[]", "{}")):
                    names.append(name)
                values += [v for v in node.get("enum", ()) if isinstance(v, str)]
    return names, values


@cache
def dictionary() -> bytes:
    """zlib's preset dictionary (at most 32 KiB). Deflate finds nearer matches cheaper, so the
    words every object has come last: field names, after the values and reasons."""
    names, values = _schema_words()
    parts = [json.dumps(w) for w in (*_condition_words(), *values)]
    parts += [json.dumps(n) + ":" for n in names]
    return "".join(dict.fromkeys(parts)).encode()
