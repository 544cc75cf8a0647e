"""End to end over OTLP: a real collector (rotel) receives the node's metrics over gRPC and HTTP."""

from __future__ import annotations

import pytest

from p2p_telemetry import MetricsCollector, ResourceMetrics, configure, setup_info
from p2p_telemetry.catalogue import CATALOGUE
from p2p_telemetry.groups import LIBP2P_GROUPS
from realstack import Rotel, latest_point, parse_rotel_metrics, wait_for


@pytest.fixture(scope="module")
def rotel(tmp_path_factory):
    collector = Rotel(tmp_path_factory.mktemp("rotel"))
    yield collector
    collector.stop()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_receives_names_attributes_and_exact_values(rotel, protocol):
    service = f"e2e-{protocol.replace('/', '-')}"
    endpoint = rotel.grpc_endpoint if protocol == "grpc" else rotel.http_endpoint
    provider = configure(service_name=service, exporters=["otlp"], otlp_endpoint=endpoint, otlp_protocol=protocol,
                         set_global=False)
    assert setup_info(provider).otlp_timeout <= 5
    collector = MetricsCollector(provider, sample_resources=False, protocols=["/ipfs/ping/1.0.0"],
                                 resource_names="both")
    net = collector.network
    net.sent("task", "tcp").add(4096)
    net.bytes_received(1500, protocol="/ipfs/ping/1.0.0", transport="quic")
    with net.connecting("outbound", "tcp"):
        pass
    net.connection_failed(ConnectionRefusedError(), "outbound", "tcp")
    net.connection_closed("outbound", "tcp", duration=30.0)
    collector.protocols.increment("discovery", "lookup", 7)
    for rtt in (0.01, 0.02, 0.03):
        collector.peers.update("12D3KooWbad", health="unhealthy", latency=rtt, reputation=0.1)
    collector.peers.update("12D3KooWgood", health="healthy", reputation=0.95)
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=42.0, memory_usage=123456789,
                                                      bandwidth_usage=2000, storage_usage=4096))
    provider.shutdown()  # the final collection and export

    def ours():
        return [p for p in parse_rotel_metrics(rotel.output()) if p["resource"].get("service.name") == service]

    points = wait_for(ours, 10, f"rotel to log {service}'s metrics")
    names = {p["metric"] for p in points}
    libp2p_only = {spec.name for group in LIBP2P_GROUPS for spec in group.specs}  # reported by py-libp2p hosts
    assert names == {spec.name for spec in CATALOGUE} - {"p2p.alert.active"} - libp2p_only
    assert {p["scope"] for p in points} == {"p2p_telemetry"}

    io = latest_point(points, "p2p.network.io",
                      {"network.io.direction": "transmit", "p2p.protocol": "task", "network.transport": "tcp"})
    assert (io["type"], io["monotonic"], io["unit"], io["value"]) == ("Sum", True, "By", 4096)
    assert latest_point(points, "p2p.network.io", {"network.io.direction": "receive",
                                                   "p2p.protocol": "/ipfs/ping/1.0.0",
                                                   "network.transport": "quic"})["value"] == 1500
    out = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp"}
    assert latest_point(points, "p2p.connection.attempts", out)["value"] == 1
    assert latest_point(points, "p2p.connection.failures", {**out, "error.type": "refused"})["value"] == 1
    assert latest_point(points, "p2p.connection.active", out)["value"] == 0
    lifetime = latest_point(points, "p2p.connection.duration", out)
    assert (lifetime["type"], lifetime["count"], lifetime["sum"]) == ("Histogram", 1, 30.0)
    assert latest_point(points, "p2p.protocol.events",
                        {"p2p.protocol": "discovery", "p2p.protocol.event": "lookup"})["value"] == 7
    assert latest_point(points, "p2p.peers", {"p2p.peer.health": "unhealthy"})["value"] == 1
    assert latest_point(points, "p2p.peers", {"p2p.peer.health": "healthy"})["value"] == 1
    latency = latest_point(points, "p2p.peer.latency", {"p2p.peer.health": "unhealthy"})
    assert (latency["count"], latency["sum"], latency["min"], latency["max"]) == (3, pytest.approx(0.06), 0.01, 0.03)
    assert latest_point(points, "p2p.peer.reputation", {"p2p.peer.id": "12D3KooWbad"})["value"] == 0.1
    assert latest_point(points, "p2p.node.cpu.utilization")["value"] == 0.42
    assert latest_point(points, "p2p.node.memory.usage")["value"] == 123456789
    assert latest_point(points, "p2p.node.storage.usage")["value"] == 4096
    assert latest_point(points, "p2p.node.bandwidth", {"network.io.direction": "receive"})["value"] == 1000
