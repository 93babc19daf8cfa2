"""Prometheus metrics for the bus and the unit of work (extra ``messagebus[prometheus]``)."""

from .metrics_store import DEFAULT_COMMAND_PROCESSING_SECONDS_BUCKETS, MetricsStore

__all__ = ["DEFAULT_COMMAND_PROCESSING_SECONDS_BUCKETS", "MetricsStore"]
