"""kopf wiring only: one module per kind, plus startup and probes."""
