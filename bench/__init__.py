"""Side-by-side benchmarks of DESIGN.md §7 against the sandbox: `make bench` (see README.md)."""
