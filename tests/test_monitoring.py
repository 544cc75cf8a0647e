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


def test_samples_resources_again_and_again_until_stopped(provider, reader):
    config = MonitoringConfig(metrics_interval=timedelta(milliseconds=10), alert_check_interval=60.0)
    monitoring = MonitoringSystem(config, meter_provider=provider)
    calls: list[int] = []
    five = threading.Event()
    real = monitoring.metrics.resources.sample

    def counted():  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 5:
            five.set()
        return real()

    monitoring.metrics.resources.sample = counted  # type: ignore[method-assign]
    with monitoring:
        assert monitoring.running
        assert five.wait(10.0), "the sampler did not run five times"
        assert collect(reader).value("p2p.node.memory.usage") > 0
    assert not monitoring.running
    assert telemetry_threads() == []  # the sampler was joined


def test_start_and_stop_are_idempotent(provider):
    monitoring = MonitoringSystem(MonitoringConfig(metrics_interval=10.0), meter_provider=provider)
    monitoring.stop()
    monitoring.start()
    monitoring.start()
    started = time.monotonic()
    monitoring.stop()
    monitoring.stop()
    assert time.monotonic() - started < 5.0  # does not wait out the 10 s interval
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
