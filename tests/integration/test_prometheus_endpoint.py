"""The Prometheus endpoint over HTTP: promtool accepts it, and its series are the catalogue's."""

from __future__ import annotations

import re
import subprocess
import urllib.request

import pytest

from p2p_telemetry import MetricsCollector, ResourceMetrics, configure, setup_info
from p2p_telemetry.catalogue import CATALOGUE
from realstack import binary


@pytest.fixture
def endpoint(clean_global, tmp_path):
    provider = configure(prometheus_port=0, set_global=False)
    collector = MetricsCollector(provider, protocols=["/ipfs/ping/1.0.0"], data_dir=tmp_path,
                                 resource_names="both")  # every resource metric, under both names
    net = collector.network
    net.bytes_sent(1000, protocol="task")
    net.bytes_received(2000, protocol="/ipfs/ping/1.0.0", transport="quic")
    with net.connecting("outbound", "tcp"):
        pass
    net.connection_closed("outbound", "tcp", duration=12.5)
    net.connection_failed(TimeoutError(), "outbound", "tcp")
    collector.protocols.increment("discovery", "lookup", 4)
    collector.peers.update("12D3KooWpeer", health="degraded", latency=0.05, reputation=0.3)
    collector.record_resource_metrics(ResourceMetrics(storage_usage=10))
    yield setup_info(provider).prometheus_url
    provider.shutdown()


def test_promtool_accepts_the_exposition(endpoint):
    with urllib.request.urlopen(endpoint, timeout=5) as response:
        text = response.read()
    result = subprocess.run([binary("promtool"), "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_series_names_are_the_catalogues_right_column(endpoint):
    with urllib.request.urlopen(endpoint, timeout=5) as response:
        text = response.read().decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)) - {"target_info"}
    expected = {spec.prometheus for spec in CATALOGUE if spec.name != "p2p.alert.active"}
    assert families == expected
    assert 'p2p_network_io_bytes_total{network_io_direction="transmit",network_transport="tcp",' in text
    assert re.search(r'p2p_peers\{[^}]*p2p_peer_health="degraded"[^}]*\} 1\.0', text)
    assert re.search(r'p2p_protocol_events_total\{[^}]*p2p_protocol="discovery"[^}]*\} 4\.0', text)
