"""Side-by-side benchmarks of the performance targets (docs/design.md#performance-targets)
against the sandbox: `make bench` (see README.md)."""
