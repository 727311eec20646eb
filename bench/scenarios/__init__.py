"""One module per scenario of DESIGN.md §7; each has `run(ctx) -> Result`."""
