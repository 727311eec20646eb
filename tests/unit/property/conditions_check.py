"""What "a clear condition" means, checked the same way for both kinds (no tests here)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Sequence

import dpio.planner
from dpio.api import conditions as api_conditions
from dpio.api.conditions import (
    CONDITION_REASON_PATTERN,
    DEGRADED,
    READY,
    RECONCILING,
    STALLED,
    Condition,
    ConditionStatus,
)

_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _constants(module: object) -> set[str]:
    return {
        value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and _CAMEL.match(value)
    }


def known_reasons() -> frozenset[str]:
    """Every CamelCase string constant spelled in dpio.api.conditions or a planner module.

    A reason outside this set was made up on the spot (or copied from vSphere unchecked)."""
    found = _constants(api_conditions)
    for info in pkgutil.iter_modules(dpio.planner.__path__):
        found |= _constants(importlib.import_module(f"dpio.planner.{info.name}"))
    return frozenset(found)


KNOWN_REASONS = known_reasons()


def problems(conditions: Sequence[Condition]) -> list[str]:
    """Why this condition list is not a clear outcome; empty when it is."""
    found: list[str] = []
    by_type = {c.type: c for c in conditions}
    if len(by_type) != len(conditions):
        found.append("a condition type appears twice")
    ready = by_type.get(READY)
    if ready is None:
        return [*found, "no Ready condition"]
    if conditions[0].type != READY:
        found.append("Ready is not first")
    for c in conditions:
        if not re.match(CONDITION_REASON_PATTERN, c.reason):
            found.append(f"{c.type}: reason {c.reason!r} is not CamelCase")
        elif c.reason not in KNOWN_REASONS:
            found.append(f"{c.type}: reason {c.reason!r} is not a known constant")
    stalled = by_type.get(STALLED)
    if stalled is not None and stalled.status is ConditionStatus.TRUE:
        if ready.status is ConditionStatus.TRUE:
            found.append("Ready=True while Stalled=True")
        if not stalled.message:
            found.append("Stalled=True without a message")
    degraded = by_type.get(DEGRADED)
    degraded_now = degraded is not None and degraded.status is ConditionStatus.TRUE
    if degraded_now and ready.status is ConditionStatus.TRUE:
        found.append("Ready=True while Degraded=True")
    reconciling = by_type.get(RECONCILING)
    if (
        reconciling is not None
        and reconciling.status is ConditionStatus.TRUE
        and stalled is not None
        and stalled.status is ConditionStatus.TRUE
    ):
        found.append("Reconciling=True and Stalled=True together (kstatus: one or the other)")
    if ready.status is ConditionStatus.FALSE and not ready.message:
        found.append("Ready=False without a message")
    return found
