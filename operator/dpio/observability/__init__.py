"""Prometheus metrics and structured logs; a leaf every layer may record into."""
