"""HostPassthroughPolicy: the reconciler and what it keeps between reconciles."""
