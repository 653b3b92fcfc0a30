"""The server's observability in one object: metrics (or none, with ``--allow-metrics=false``),
the logging extension's control and tracing; built once from the settings, handed to the
dataplane (which records each request into it) and read by the transports."""

from __future__ import annotations

from dataclasses import dataclass, field

from oipserve.observability.custom import MetricNames
from oipserve.observability.logging import LogControl, LogSettings
from oipserve.observability.metrics import Metrics, MetricsConfig
from oipserve.observability.tracing import TraceConfig, Tracing


@dataclass(slots=True)
class Observability:
    metrics: Metrics | None = field(default_factory=lambda: Metrics(MetricsConfig()))
    """None: metrics are off (no ``/metrics``, nothing recorded per request)."""
    logs: LogControl = field(default_factory=lambda: LogControl(LogSettings()))
    tracing: Tracing = field(default_factory=lambda: Tracing(TraceConfig()))
    metric_names: MetricNames = field(default_factory=MetricNames)
    """Which kind each model-published metric name has, across all models."""

    @property
    def metrics_config(self) -> MetricsConfig:
        return self.metrics.config if self.metrics is not None else MetricsConfig()


__all__ = ["Observability"]
