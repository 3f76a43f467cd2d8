"""Prometheus metrics of the daemon."""

from edge.metrics.registry import Metrics

__all__ = ["Metrics"]
