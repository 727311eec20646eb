"""Where the operator's Python memory goes, for benchmarks: `DPIO_TRACEMALLOC_DIR=<dir>` traces
every allocation from start-up (tracemalloc, several times slower: never in production) and
writes `<dir>/tracemalloc-<pid>.txt` when the operator stops, while its caches still hold what
a converged fleet needs: the blocks alive then, by source file, by line and by the call path
that allocated them (docs/benchmarks.md, "Memory").
"""

from __future__ import annotations

import logging
import os
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_log = logging.getLogger(__name__)

ENV = "DPIO_TRACEMALLOC_DIR"
#: Frames kept per allocation: enough to see who called `copy.deepcopy` or pydantic.
FRAMES = 12
TOP = 30


@dataclass(frozen=True)
class Tracing:
    directory: Path

    def dump(self) -> Path | None:
        """Write what is allocated now; None (and a warning) when it cannot be written."""
        if not tracemalloc.is_tracing():
            return None
        current, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__),)
        )
        path = self.directory / f"tracemalloc-{os.getpid()}.txt"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_text(report(snapshot, current, peak), encoding="utf-8")
        except OSError as err:
            _log.warning("Could not write the allocation trace", extra={"error": str(err)})
            return None
        _log.info("Wrote the allocation trace", extra={"path": str(path)})
        return path


def report(snapshot: tracemalloc.Snapshot, current: int, peak: int) -> str:
    lines = [f"traced now {current / 2**20:.1f} MiB, traced peak {peak / 2**20:.1f} MiB", ""]
    for group in ("filename", "lineno"):
        lines.append(f"## top {TOP} by {group}")
        for stat in snapshot.statistics(group)[:TOP]:
            lines.append(
                f"{stat.size / 2**20:9.2f} MiB {stat.count:9d} blocks  {stat.traceback[0]}"
            )
        lines.append("")
    lines.append(f"## top {TOP // 2} call paths (innermost last)")
    for stat in snapshot.statistics("traceback")[: TOP // 2]:
        lines.append(f"{stat.size / 2**20:9.2f} MiB {stat.count:9d} blocks")
        lines.extend(f"      {frame}" for frame in stat.traceback.format(most_recent_first=False))
    return "\n".join(lines) + "\n"


def from_env(environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """Start tracing if `DPIO_TRACEMALLOC_DIR` is set; None (nothing traced) if not."""
    directory = environ.get(ENV, "")
    if not directory:
        return None
    if not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
    _log.warning("Tracing every allocation (%s): slow, for benchmarks only", ENV)
    return Tracing(Path(directory))
