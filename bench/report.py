"""What a scenario hands back: named figures, tables for the terminal, JSON for later reading."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    """One scenario's outcome. ``available=False`` means "not measured", never a made-up figure."""

    scenario: str
    available: bool = True
    reason: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "available": self.available,
            "reason": self.reason,
            "params": self.params,
            "figures": self.figures,
            "tables": [t.to_json() for t in self.tables],
            "notes": self.notes,
            "machine": {
                "python": platform.python_version(),
                "cpus": _cpus(),
                "load_average": os.getloadavg(),
            },
            "commit": _commit(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(row)

    def render(self) -> str:
        cells = [[str(c) for c in self.columns]] + [[_cell(v) for v in r] for r in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = [self.title, "  ".join("-" * w for w in widths)]
        for i, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
        }


def render(result: Result) -> str:
    head = f"== {result.scenario} =="
    if not result.available:
        return f"{head}\nnot available: {result.reason}"
    parts = [head, "  ".join(f"{k}={v}" for k, v in result.params.items())]
    parts += [t.render() for t in result.tables]
    parts += [f"note: {n}" for n in result.notes]
    return "\n\n".join(parts)


def save(result: Result, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result.scenario}.json"
    path.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return path


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def top_methods(counts: Mapping[str, int], limit: int = 12) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _commit() -> str:
    """HEAD, with "+dirty" when the work tree differs: the figures belong to that code."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    return (
        f"{head}+dirty" if head and git("status", "--porcelain", "--untracked-files=no") else head
    )


def _cpus() -> int:
    return os.cpu_count() or 0
