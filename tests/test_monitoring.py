"""MonitoringSystem: starts and stops its background work cleanly."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from conftest import collect
from p2p_telemetry import MetricsCollector, MonitoringConfig, MonitoringSystem


def telemetry_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("p2p-telemetry")]


def test_samples_resources_at_the_metrics_interval(provider, reader):
    config = MonitoringConfig(metrics_interval=timedelta(milliseconds=50), alert_check_interval=0.2)
    with MonitoringSystem(config, meter_provider=provider) as monitoring:
        assert monitoring.running
        calls = []
        real = monitoring.metrics.resources.sample
        monitoring.metrics.resources.sample = lambda: calls.append(1) or real()  # type: ignore[method-assign]
        time.sleep(0.5)
        assert 5 <= len(calls) <= 12
        assert monitoring.metrics.resource_snapshot().memory_usage > 0
        assert collect(reader).value("p2p.node.memory.usage") > 0
    assert not monitoring.running
    assert telemetry_threads() == []


def test_start_and_stop_are_idempotent(provider):
    monitoring = MonitoringSystem(MonitoringConfig(metrics_interval=10.0), meter_provider=provider)
    monitoring.stop()
    monitoring.start()
    monitoring.start()
    started = time.monotonic()
    monitoring.stop()
    monitoring.stop()
    assert time.monotonic() - started < 1.0  # does not wait out the 10 s interval
    assert telemetry_threads() == []


def test_uses_a_given_collector(provider):
    collector = MetricsCollector(provider)
    assert MonitoringSystem(meter_provider=provider, metrics=collector).metrics is collector


@pytest.mark.parametrize("kwargs, setting", [
    ({"metrics_interval": 0}, "metrics_interval"),
    ({"alert_check_interval": -1}, "alert_check_interval"),
    ({"metrics_interval": "soon"}, "metrics_interval"),
    ({"metrics_interval": None}, "metrics_interval"),
    ({"alert_check_interval": float("inf")}, "alert_check_interval"),
    ({"sample_resources": 1}, "sample_resources"),
    ({"alert_config": {}}, "alert_config"),
])
def test_bad_configuration_names_the_setting(kwargs, setting):
    with pytest.raises(ValueError, match=setting):
        MonitoringConfig(**kwargs)
