"""The smoke test CI runs twice: with the pinned versions (constraints.txt) and in a fresh venv at the
lowest versions pyproject.toml declares (scripts/lowest-versions.sh), so that every lower bound is true.

One node as a user sets it up: configure() with Prometheus on a free port and an InMemoryMetricReader,
a MetricsCollector recording each metric group, a MonitoringSystem whose alert evaluator attaches its
own reader to the built provider, a real scrape checked against the catalogue, then shutdown.
"""

from __future__ import annotations

import re
import threading
import urllib.request

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import collect
from p2p_telemetry import (
    AlertConfig,
    MetricsCollector,
    MonitoringConfig,
    MonitoringSystem,
    ResourceMetrics,
    configure,
    setup_info,
)
from p2p_telemetry.catalogue import CATALOGUE
from p2p_telemetry.groups import LIBP2P_GROUPS

PING = "/ipfs/ping/1.0.0"


def record_every_group(collector: MetricsCollector) -> None:
    """One measurement or more in each metric group (network, protocols, peers, resources)."""
    net = collector.network
    net.bytes_sent(1000, protocol="task")
    net.bytes_received(2000, protocol=PING, transport="quic")
    with net.connecting("outbound", "tcp"):
        pass
    net.connection_closed("outbound", "tcp", duration=12.5)
    net.connection_failed(TimeoutError(), "outbound", "tcp")
    collector.protocols.increment("discovery", "lookup", 4)
    collector.peers.update("12D3KooWpeer", health="degraded", latency=0.05, reputation=0.3)
    collector.record_resource_metrics(ResourceMetrics(storage_usage=10))


def exposition_families(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)) - {"target_info"}


def test_a_node_exports_every_group_through_prometheus_and_a_reader(clean_global, tmp_path):
    reader = InMemoryMetricReader()
    threads_before = set(threading.enumerate())
    provider = configure(prometheus_port=0, extra_readers=[reader], service_instance_id="smoke-node",
                         set_global=False)
    url = setup_info(provider).prometheus_url
    collector = MetricsCollector(provider, protocols=[PING], data_dir=tmp_path, resource_names="both")
    monitoring = MonitoringSystem(MonitoringConfig(sample_resources=False, alert_config=AlertConfig(sinks=[])),
                                  meter_provider=provider, metrics=collector)
    try:
        record_every_group(collector)
        monitoring.start()
        monitoring.alert_manager.trigger_alert("SmokeTest", severity="info")

        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        libp2p_only = {spec for group in LIBP2P_GROUPS for spec in group.specs}  # reported by py-libp2p hosts
        assert exposition_families(text) == {spec.prometheus for spec in CATALOGUE if spec not in libp2p_only}
        assert re.search(r'^target_info\{[^}]*service_instance_id="smoke-node"', text, re.MULTILINE)
        assert re.search(r'p2p_protocol_events_total\{[^}]*p2p_protocol="discovery"[^}]*\} 4\.0', text)

        exported = collect(reader)
        assert exported.value("p2p.network.io", {"network.io.direction": "transmit", "p2p.protocol": "task",
                                                 "network.transport": "tcp"}) == 1000
        assert exported["p2p.connection.failures"].points[0].value == 1
    finally:
        monitoring.stop()
        provider.shutdown()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]

