"""Shared fixtures: a fresh SDK provider with an InMemoryMetricReader, and a way to read what it exported."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Sum,
)
from opentelemetry.util._once import Once

sys.path.insert(0, str(Path(__file__).parent))


@dataclass
class Metric:
    """One exported metric, as a test sees it."""

    name: str
    unit: str
    description: str
    kind: str  # "monotonic_sum", "sum", "gauge" or "histogram"
    points: list[Any]

    def point(self, attributes: dict[str, Any] | None = None) -> Any:
        """The one point whose attributes are exactly ``attributes``."""
        wanted = attributes or {}
        found = [p for p in self.points if dict(p.attributes) == wanted]
        assert len(found) == 1, f"{self.name}: no single point with {wanted}; have {[dict(p.attributes) for p in self.points]}"
        return found[0]

    def value(self, attributes: dict[str, Any] | None = None) -> Any:
        return self.point(attributes).value

    def attribute_sets(self) -> list[dict[str, Any]]:
        return [dict(p.attributes) for p in self.points]


class Exported:
    """Every metric of one collection, by name."""

    def __init__(self, data: Any) -> None:
        self.metrics: dict[str, Metric] = {}
        self.scopes: list[Any] = []
        for resource_metrics in (data.resource_metrics if data else ()):
            for scope_metrics in resource_metrics.scope_metrics:
                self.scopes.append(scope_metrics.scope)
                for m in scope_metrics.metrics:
                    self.metrics[m.name] = Metric(m.name, m.unit, m.description, _kind(m.data),
                                                  list(m.data.data_points))

    def __getitem__(self, name: str) -> Metric:
        assert name in self.metrics, f"{name} not exported; have {sorted(self.metrics)}"
        return self.metrics[name]

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    def value(self, name: str, attributes: dict[str, Any] | None = None) -> Any:
        return self[name].value(attributes)


def _kind(data: Any) -> str:
    if isinstance(data, Sum):
        assert data.aggregation_temporality == AggregationTemporality.CUMULATIVE
        return "monotonic_sum" if data.is_monotonic else "sum"
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    if isinstance(data, ExponentialHistogram):
        return "exponential_histogram"
    raise AssertionError(f"unexpected data {data!r}")


def collect(reader: InMemoryMetricReader) -> Exported:
    """Collect once through ``reader`` and return what was exported."""
    return Exported(reader.get_metrics_data())


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader):
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


def reset_global_provider() -> None:
    """Forget the global MeterProvider (the API lets a process set it once)."""
    metrics._internal._METER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    metrics._internal._METER_PROVIDER = None  # type: ignore[attr-defined]
    metrics._internal._PROXY_METER_PROVIDER = metrics._internal._ProxyMeterProvider()  # type: ignore


@pytest.fixture
def clean_global():
    reset_global_provider()
    yield
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        current.shutdown()
    reset_global_provider()
