"""What every scenario is given: where to write, how big to go, the injected latency."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Context:
    out: Path
    quick: bool
    latency_ms: int
    timeout: float  # seconds a convergence wait may take before the scenario reports a timeout
    #: Run the operator under cProfile and write the top functions next to the JSON.
    profile: bool = False
    #: Sample the operator with py-spy (all threads); summaries next to its log.
    py_spy: bool = False
    #: Overrides the object count of steady (and makes scale run that one size).
    objects: int | None = None

    def state_dir(self, scenario: str) -> Path:
        """A fresh control plane per scenario: etcd starts empty, logs are kept for reading."""
        return self.out / "state" / scenario

    def size(self, quick: int, full: int) -> int:
        return quick if self.quick else full
