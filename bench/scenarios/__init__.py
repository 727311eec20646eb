"""One module per scenario of docs/benchmarks.md; each has `run(ctx) -> Result`."""
