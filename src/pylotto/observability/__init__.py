"""Observability: tracing, metrics, structured logs."""
