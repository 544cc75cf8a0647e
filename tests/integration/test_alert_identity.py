"""Alerts carry their node: in a real Alertmanager two nodes' alerts stay two (one resolving leaves the other), and
the alert a real Prometheus sends (the shipped rule file, scraping the node) and the node's own are one."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from p2p_telemetry import (
    AlertConfig,
    AlertManager,
    AlertmanagerSink,
    HealthStatus,
    MetricsCollector,
    PeerStats,
    ResourceMetrics,
    configure,
    default_rules,
)
from realstack import Alertmanager, Prometheus, free_port, scraped_total, wait_for

pytestmark = pytest.mark.integration
RULE_FILE = Path(__file__).resolve().parents[2] / "collector-config" / "p2p-alerts.rules.yml"
AM_CONFIG = "route: {receiver: blackhole, group_wait: 0s, group_interval: 1s}\nreceivers: [{name: blackhole}]\n"


def identity(instance: str) -> dict[str, str]:
    return {"service_name": "p2p-node", "service_instance_id": instance}


def active(am: Alertmanager, name: str) -> dict[str, dict]:
    """The active alerts named ``name`` in Alertmanager, by service_instance_id."""
    return {a["labels"].get("service_instance_id", ""): a for a in am.alerts(alertname=name)}


def test_two_nodes_with_the_same_alert_are_two_alerts_and_one_resolving_leaves_the_other(tmp_path):
    am = Alertmanager(tmp_path, AM_CONFIG)
    nodes = {}
    try:
        for name in ("node-a", "node-b"):
            provider = MeterProvider(resource=Resource.create({"service.name": "p2p-node",
                                                               "service.instance.id": name}))
            collector = MetricsCollector(provider, sample_resources=False)
            sink = AlertmanagerSink(am.url, resend_interval=0.5, min_backoff=0.1, max_backoff=0.5)
            manager = AlertManager(AlertConfig(default_rules(), [sink]), provider).start(0.1)
            collector.record_peer_metrics("peer-1", PeerStats(health_status=HealthStatus.UNHEALTHY))
            nodes[name] = (provider, collector, manager, sink)
        both = wait_for(lambda: (lambda found: found if set(found) == {"node-a", "node-b"} else None)(
            active(am, "UnhealthyPeers")), 15, "each node's UnhealthyPeers alert")
        for name, alert in both.items():
            assert alert["labels"] == {"alertname": "UnhealthyPeers", "severity": "warning",
                                       "p2p_peer_health": "unhealthy", **identity(name)}

        nodes["node-a"][1].record_peer_metrics("peer-1", PeerStats(health_status=HealthStatus.HEALTHY))
        wait_for(lambda: set(active(am, "UnhealthyPeers")) == {"node-b"}, 15, "node-a's alert resolved")
        sink_b = nodes["node-b"][3]
        sent = sink_b.sent
        wait_for(lambda: sink_b.sent >= sent + 2, 10, "two more resends from node-b")
        assert set(active(am, "UnhealthyPeers")) == {"node-b"}  # node-a's resolution never resolved node-b's
    finally:
        for provider, _, manager, _ in nodes.values():
            manager.stop()
            provider.shutdown()
        am.stop()


def test_the_alert_from_prometheus_and_the_one_from_the_node_are_one_alert(tmp_path, monkeypatch, clean_global):
    am = Alertmanager(tmp_path, AM_CONFIG)
    port = free_port()
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=node-p")
    provider = configure(exporters="prometheus", prometheus_port=port, set_global=False)
    collector = MetricsCollector(provider, sample_resources=False)
    sink = AlertmanagerSink(am.url, resend_interval=1.0)
    manager = AlertManager(AlertConfig(default_rules(), [sink]), provider).start(0.2)
    prometheus = None
    try:
        prometheus = Prometheus(tmp_path, f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{RULE_FILE}"]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am.port}"]}}]}}]
scrape_configs:
  - job_name: p2p-node
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
""")
        collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))
        wait_for(lambda: [a for a in prometheus.alerts()
                          if a["labels"]["alertname"] == "HighCpuUsage" and a["state"] == "firing"],
                 20, "HighCpuUsage firing in Prometheus")
        wait_for(lambda: scraped_total(f"{prometheus.url}/metrics", "prometheus_notifications_sent_total") >= 1,
                 20, "Prometheus sending its alert to Alertmanager")
        wait_for(lambda: sink.sent >= 1, 10, "the node's own alert sent")
        alerts = am.alerts(alertname="HighCpuUsage")
        assert [a["labels"] for a in alerts] == [{"alertname": "HighCpuUsage", "severity": "warning",
                                                  **identity("node-p")}]

        collector.record_resource_metrics(ResourceMetrics(cpu_usage=10.0))
        wait_for(lambda: not am.alerts(alertname="HighCpuUsage"), 20, "the one alert resolved")
    finally:
        if prometheus is not None:
            prometheus.stop()
        manager.stop()
        provider.shutdown()
        am.stop()
