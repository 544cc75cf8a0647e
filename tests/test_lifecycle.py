"""Stopping and restarting: after stop() nothing of a MonitoringSystem is reported or read."""

from __future__ import annotations

import gc

from conftest import collect
from p2p_telemetry import (
    AlertConfig,
    HealthStatus,
    MetricsCollector,
    MonitoringConfig,
    MonitoringSystem,
    ResourceMetrics,
)
from p2p_telemetry.catalogue import CATALOGUE, Kind
from p2p_telemetry.instruments import InstrumentHub


def quiet_config() -> MonitoringConfig:
    return MonitoringConfig(metrics_interval=60.0, alert_check_interval=60.0, sample_resources=False,
                            alert_config=AlertConfig(sinks=[]))


def test_a_stopped_system_reports_nothing_and_hides_nothing(provider, reader):
    old = MonitoringSystem(quiet_config(), meter_provider=provider).start()
    old.metrics.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))
    old.metrics.peers.update("old-peer", health=HealthStatus.UNHEALTHY)
    old.stop()

    new = MonitoringSystem(quiet_config(), meter_provider=provider).start()
    try:
        new.metrics.record_resource_metrics(ResourceMetrics(cpu_usage=10.0))
        exported = collect(reader)
        assert exported.value("p2p.node.cpu.utilization") == 0.10  # not the stopped system's 0.95
        assert exported.value("p2p.peers", {"p2p.peer.health": "unhealthy"}) == 0
        new.alert_manager.evaluate()
        assert not new.alert_manager.has_alert("HighCpuUsage")
    finally:
        new.stop()


def test_restart_reports_the_same_system_again(provider, reader):
    monitoring = MonitoringSystem(quiet_config(), meter_provider=provider)
    monitoring.start()
    monitoring.metrics.peers.update("peer-1")
    monitoring.stop()
    assert "p2p.peers" not in collect(reader)
    monitoring.start()
    try:
        assert collect(reader).value("p2p.peers", {"p2p.peer.health": "healthy"}) == 1
    finally:
        monitoring.stop()


def test_a_given_collector_stays_the_callers(provider, reader):
    collector = MetricsCollector(provider, sample_resources=False)
    collector.peers.update("peer-1")
    MonitoringSystem(quiet_config(), meter_provider=provider, metrics=collector).start().stop()
    assert collect(reader).value("p2p.peers", {"p2p.peer.health": "healthy"}) == 1


def test_start_stop_cycles_leave_nothing_attached(provider, reader):
    hub = InstrumentHub.for_provider(provider)
    baseline = MonitoringSystem(quiet_config(), meter_provider=provider)
    baseline.start()
    baseline.stop()
    attached = {spec.name: hub.attached(spec) for spec in CATALOGUE if spec.kind is not Kind.HISTOGRAM}
    for _ in range(200):
        MonitoringSystem(quiet_config(), meter_provider=provider).start().stop()
    gc.collect()
    assert {spec.name: hub.attached(spec) for spec in CATALOGUE if spec.kind is not Kind.HISTOGRAM} == attached
    assert all(n == 0 for n in attached.values())
    assert collect(reader).metrics.keys() <= {"p2p.connection.setup.duration", "p2p.peer.latency"}


def test_close_hands_pending_latency_samples_to_the_sdk(provider, reader):
    collector = MetricsCollector(provider, sample_resources=False)
    for latency in (0.01, 0.02, 0.04):
        collector.peers.update("peer-1", latency=latency)
    collector.close()
    point = collect(reader)["p2p.peer.latency"].point({"p2p.peer.health": "healthy"})
    assert (point.count, round(point.sum, 6)) == (3, 0.07)
