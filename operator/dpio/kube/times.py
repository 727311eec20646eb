"""Times as the API server writes them (RFC 3339; MicroTime with six fraction digits)."""

from __future__ import annotations

import datetime
from typing import Any


def parse_time(value: Any) -> datetime.datetime | None:
    """An aware datetime (naive means UTC); None when absent or garbled."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def micro_time(value: datetime.datetime | None) -> str | None:
    """MicroTime on the wire is RFC 3339 with exactly six fraction digits (metav1.MicroTime)."""
    if value is None:
        return None
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
