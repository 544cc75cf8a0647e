"""End to end with Prometheus: a real Prometheus scrapes the node and returns exactly what was recorded."""

from __future__ import annotations

import pytest

from p2p_telemetry import MetricsCollector, configure, setup_info
from realstack import Prometheus, wait_for


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    provider = configure(service_name="e2e-node", prometheus_port=0, set_global=False)
    target = setup_info(provider).prometheus_url.removeprefix("http://").removesuffix("/metrics")
    collector = MetricsCollector(provider, sample_resources=False)
    net = collector.network
    net.sent("task", "tcp").add(1000)
    net.bytes_received(2000, protocol="discovery", transport="tcp")
    for i in range(3):
        collector.peers.update(f"peer-{i}", health="healthy")
    collector.peers.update("peer-9", health="unhealthy", reason="no pong")
    collector.record_protocol_metrics("task", {"submitted": 3, "completed": 2})
    net.connection_failed(TimeoutError(), "outbound", "tcp")
    prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: p2p-node
    scrape_timeout: 1s
    static_configs: [{{targets: ["{target}"]}}]
""")
    wait_for(lambda: prometheus.query("p2p_peers"), 30, "the first scrape to be queryable", every=0.2)
    yield prometheus, collector
    prometheus.stop()
    provider.shutdown()


def test_byte_counts(scraped):
    prometheus, _ = scraped
    assert prometheus.value('p2p_network_io_bytes_total{network_io_direction="transmit",p2p_protocol="task"}') == 1000
    assert prometheus.value('p2p_network_io_bytes_total{network_io_direction="receive",'
                            'p2p_protocol="discovery",network_transport="tcp"}') == 2000


def test_peer_counts(scraped):
    prometheus, _ = scraped
    assert prometheus.value('p2p_peers{p2p_peer_health="healthy"}') == 3
    assert prometheus.value('p2p_peers{p2p_peer_health="unhealthy"}') == 1
    assert prometheus.value('p2p_peers{p2p_peer_health="degraded"}') == 0
    assert prometheus.value("sum(p2p_peers)") == 4


def test_protocol_events_and_failures(scraped):
    prometheus, _ = scraped
    assert prometheus.value('p2p_protocol_events_total{p2p_protocol="task",p2p_protocol_event="submitted"}') == 3
    assert prometheus.value('p2p_protocol_events_total{p2p_protocol="task",p2p_protocol_event="completed"}') == 2
    assert prometheus.value('p2p_connection_failures_total{error_type="timeout"}') == 1
    assert prometheus.value('sum(p2p_connection_failures_total)') == 1
    assert prometheus.value('p2p_peers{p2p_peer_health="healthy",job="p2p-node"}') == 3


def test_later_changes_are_scraped(scraped):
    prometheus, collector = scraped
    collector.network.sent("task", "tcp").add(24)
    collector.peers.remove("peer-9")
    wait_for(lambda: prometheus.value('p2p_peers{p2p_peer_health="unhealthy"}') == 0, 10, "the next scrape",
             every=0.2)
    assert prometheus.value('p2p_network_io_bytes_total{network_io_direction="transmit",p2p_protocol="task"}') == 1024
