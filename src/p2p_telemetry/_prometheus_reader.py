"""The OpenTelemetry Prometheus reader on a private registry, with the endpoint that serves it."""

from __future__ import annotations

import errno
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry

from ._prometheus_endpoint import MetricsEndpoint

__all__ = ["ServedPrometheusReader"]


class ServedPrometheusReader(PrometheusMetricReader):
    """A Prometheus reader whose exposition only its own endpoint serves (never the global REGISTRY).

    Raises OSError naming ``prometheus_port`` when the address cannot be bound.
    """

    def __init__(self, host: str, port: int) -> None:
        registry = CollectorRegistry(auto_describe=True)
        try:
            self.endpoint = MetricsEndpoint(registry, host, port)
        except OSError as error:
            reason = "already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
            raise OSError(error.errno, f"prometheus_port {port} on {host}: {reason}") from None
        super().__init__(registry=registry)

    @property
    def url(self) -> str:
        return self.endpoint.url

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.endpoint.close(timeout=min(timeout_millis / 1000, 5.0))
        super().shutdown(timeout_millis=timeout_millis, **kwargs)
