"""Shared fixtures: a fresh SDK provider with an InMemoryMetricReader, and a way to read what it exported.

Thin wrappers over ``p2p_telemetry.testing`` (the helpers the package ships for its users' tests):
``capture`` is a ``TelemetryCapture``; ``provider``, ``reader`` and ``collector`` are its parts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.util._once import Once

from p2p_telemetry import MetricsCollector, testing
from p2p_telemetry.testing import ExportedMetric as Metric  # noqa: F401  (the name the tests know)
from p2p_telemetry.testing import Snapshot as Exported
from p2p_telemetry.testing import TelemetryCapture

sys.path.insert(0, str(Path(__file__).parent))


def collect(reader: InMemoryMetricReader) -> Exported:
    """Collect once through ``reader`` and return what was exported (always cumulative here)."""
    exported = testing.collect(reader)
    for metric in exported:
        assert metric.temporality in (None, AggregationTemporality.CUMULATIVE), (metric.name, metric.temporality)
    return exported


@pytest.fixture
def capture() -> Iterator[TelemetryCapture]:
    """A TelemetryCapture (own provider and reader; its collector with ``sample_resources=False``)."""
    with TelemetryCapture() as telemetry:
        yield telemetry


@pytest.fixture
def reader(capture: TelemetryCapture) -> InMemoryMetricReader:
    return capture.reader


@pytest.fixture
def provider(capture: TelemetryCapture) -> MeterProvider:
    return capture.provider


@pytest.fixture
def collector(capture: TelemetryCapture) -> MetricsCollector:
    """The one shared collector: on ``provider``, resource gauges as recorded (no live psutil readings)."""
    return capture.collector


def reset_global_provider() -> None:
    """Forget the global MeterProvider (the API lets a process set it once)."""
    metrics._internal._METER_PROVIDER_SET_ONCE = Once()
    metrics._internal._METER_PROVIDER = None
    metrics._internal._PROXY_METER_PROVIDER = metrics._internal._ProxyMeterProvider()


@pytest.fixture
def clean_global() -> Iterator[None]:
    reset_global_provider()
    yield
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        current.shutdown()
    reset_global_provider()
