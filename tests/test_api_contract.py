"""The public API as the contract writes it: every name and keyword called exactly as documented.

Each block below is the documented call, verbatim where the documentation gives one, and what
it must have exported, read back through an InMemoryMetricReader.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View

import p2p_telemetry
from conftest import collect
from p2p_telemetry import (
    Alert,
    AlertConfig,
    AlertmanagerSink,
    AlertRule,
    AlertType,
    CallbackSink,
    HealthStatus,
    LogSink,
    MetricsCollector,
    MonitoringConfig,
    MonitoringSystem,
    NetworkMetrics,
    PeerStats,
    ResourceMetrics,
    configure,
    default_rules,
    rules_to_prometheus,
)

OUT_TCP = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp"}


def test_everything_is_importable_from_the_package():
    for name in ("MetricsCollector", "NetworkMetrics", "PeerStats", "ResourceMetrics", "HealthStatus",
                 "MonitoringConfig", "MonitoringSystem", "AlertConfig", "AlertType", "AlertRule", "Alert",
                 "LogSink", "CallbackSink", "AlertmanagerSink", "default_rules", "rules_to_prometheus", "configure"):
        assert name in p2p_telemetry.__all__ and hasattr(p2p_telemetry, name), name


def test_the_seeds_vocabulary(provider, reader, tmp_path):
    collector = MetricsCollector(
        meter_provider=provider,
        sample_resources=False,
        protocols=(),
        peer_series_limit=10,
        data_dir=None)
    collector.record_network_metrics(NetworkMetrics(
        bytes_sent=1000, bytes_received=2000,
        active_connections=5,
        connection_attempts=10, connection_failures=2,
        avg_connection_latency=0.1))
    collector.record_protocol_metrics("task", {"submitted": 3, "completed": 2})
    collector.record_peer_metrics("peer-1", PeerStats(
        health_status=HealthStatus.DEGRADED, latency=0.05, reputation=0.7,
        reason="slow pings"))
    collector.record_resource_metrics(ResourceMetrics(
        cpu_usage=95.0,
        memory_usage=2 << 30, bandwidth_usage=10_000, storage_usage=5 << 30))

    snapshot = collector.network_snapshot()
    assert isinstance(snapshot, NetworkMetrics)
    assert (snapshot.bytes_sent, snapshot.bytes_received, snapshot.active_connections,
            snapshot.connection_attempts, snapshot.connection_failures) == (1000, 2000, 5, 10, 2)
    assert collector.peer_counts() == {"total": 1, "healthy": 0, "degraded": 1, "unhealthy": 0}
    resources = collector.resource_snapshot()
    assert isinstance(resources, ResourceMetrics) and resources.cpu_usage == 95.0
    assert {HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY} == set(HealthStatus)

    exported = collect(reader)
    assert exported.value("p2p.node.cpu.utilization") == 0.95
    assert exported.value("p2p.protocol.events", {"p2p.protocol": "task", "p2p.protocol.event": "submitted"}) == 3
    assert exported.value("p2p.peer.reputation", {"p2p.peer.id": "peer-1"}) == 0.7


def test_the_fast_event_api(provider, reader):
    collector = MetricsCollector(provider, sample_resources=False)
    collector.network.bytes_sent(100, protocol="task", transport="tcp")
    collector.network.bytes_received(200, protocol="task", transport="tcp")
    sent = collector.network.sent(protocol="task", transport="tcp")
    sent.add(50)
    collector.network.connection_opened(direction="outbound", transport="tcp")
    collector.network.connection_closed(direction="outbound", transport="tcp", duration=None)
    collector.network.connection_failed(error_type="timeout", direction="outbound", transport="tcp")
    collector.network.connection_failed(error="refused", direction="outbound", transport="tcp")  # the alias
    with collector.network.connecting(direction="outbound", transport="tcp"):
        pass
    with pytest.raises(ConnectionRefusedError), collector.network.connecting(direction="outbound", transport="tcp"):
        raise ConnectionRefusedError
    collector.protocols.increment("discovery", "lookup", n=1)
    collector.peers.update("peer-1", health=HealthStatus.HEALTHY, latency=0.02, reputation=0.9)
    collector.peers.update("peer-2")
    collector.peers.remove("peer-2")

    exported = collect(reader)
    tx = {"network.io.direction": "transmit", "p2p.protocol": "task", "network.transport": "tcp"}
    assert exported.value("p2p.network.io", tx) == 150
    assert exported.value("p2p.connection.attempts", OUT_TCP) == 2
    assert exported.value("p2p.connection.active", OUT_TCP) == 1
    failures = {p.attributes["error.type"]: p.value for p in exported["p2p.connection.failures"].points}
    assert (failures["timeout"], failures["refused"]) == (1, 2)
    assert exported.value("p2p.protocol.events", {"p2p.protocol": "discovery", "p2p.protocol.event": "lookup"}) == 1
    assert exported.value("p2p.peers", {"p2p.peer.health": "healthy"}) == 1


def test_setting_up_opentelemetry(clean_global):
    extra = InMemoryMetricReader()
    provider = configure(
        service_name="contract-node",
        exporters=["none"],
        otlp_endpoint=None,
        otlp_protocol=None,
        prometheus_host=None, prometheus_port=None,
        export_interval=None,
        extra_readers=(extra,),
        views=(View(instrument_name="p2p.peer.latency", attribute_keys=set()),),
        service_instance_id="node-7",
        resource_attributes={"deployment.environment": "test"},
        set_global=True)
    try:
        collector = MetricsCollector()  # the global provider configure() installed
        collector.peers.update("peer-1", latency=0.01)
        data = extra.get_metrics_data()
        resource = data.resource_metrics[0].resource.attributes
        assert (resource["service.name"], resource["service.instance.id"],
                resource["deployment.environment"]) == ("contract-node", "node-7", "test")
        latency = [m for s in data.resource_metrics[0].scope_metrics for m in s.metrics
                   if m.name == "p2p.peer.latency"][0]
        assert [dict(p.attributes) for p in latency.data.data_points] == [{}]  # the node's View applied
    finally:
        provider.shutdown()


def test_monitoring_and_alerts_as_documented(provider, reader):
    seen: list[Alert] = []
    config = MonitoringConfig(metrics_interval=1.0, alert_check_interval=1.0,
                              alert_config=AlertConfig(rules=default_rules(), sinks=[CallbackSink(seen.append)]),
                              sample_resources=False)
    monitoring = MonitoringSystem(config, meter_provider=provider)
    monitoring.start()
    try:
        assert isinstance(monitoring.metrics, MetricsCollector)
        alerts = monitoring.alert_manager
        monitoring.metrics.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))
        alerts.evaluate()
        assert alerts.has_alert(AlertType.HIGH_CPU_USAGE) is True
        fired = alerts.trigger_alert(AlertType.UNHEALTHY_PEERS)
        assert fired.state == "firing"
        active = alerts.active_alerts()
        assert {a.name for a in active} >= {"HighCpuUsage", "UnhealthyPeers"}
        alert = next(a for a in active if a.name == "HighCpuUsage")
        assert (alert.state, alert.labels["alertname"], alert.value) == ("firing", "HighCpuUsage", 0.95)
        assert alert.active_since > 0 and alert.resolved_at is None
        assert {AlertType.HIGH_CPU_USAGE, AlertType.HIGH_MEMORY_USAGE, AlertType.UNHEALTHY_PEERS,
                AlertType.HIGH_CONNECTION_FAILURES} == set(AlertType)
    finally:
        monitoring.stop()
        monitoring.stop()  # idempotent
    with MonitoringSystem(MonitoringConfig(alert_config=AlertConfig()), meter_provider=provider) as m:
        assert m.running
        assert [type(s) for s in m.alert_manager.config.sinks] == [LogSink]  # AlertConfig(): defaults + LogSink
        assert [r.name for r in m.alert_manager.config.rules] == [t.value for t in AlertType]


def test_alert_rules_as_documented():
    rule = AlertRule(
        name="HighConnectionFailures",
        metric="p2p.connection.failures",
        attributes={},
        aggregation="increase",
        window=300.0,
        op=">", threshold=10,
        for_=0.0,
        keep_firing_for=0.0,
        severity="warning", summary="{value} connection failures in 5m")
    config = AlertConfig(rules=[r for r in default_rules() if r.name != rule.name] + [rule],
                         sinks=[LogSink(), CallbackSink(print), AlertmanagerSink("http://127.0.0.1:9093",
                                                                                 resend_interval=60.0, timeout=5.0,
                                                                                 headers=None)])
    assert rule in config.rules
    text = rules_to_prometheus(config.rules)
    assert "alert: HighConnectionFailures" in text and "p2p_connection_failures_total" in text
    assert AlertRule(name="x", metric="p2p.peers", for_=timedelta(minutes=1)).for_ == 60.0
