"""Metrics, request logs and traces: call hooks and attempt listeners (docs/observability.md)."""
