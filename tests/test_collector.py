"""MetricsCollector: every metric of the catalogue, read back through an InMemoryMetricReader."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import collect
from p2p_telemetry import (
    HealthStatus,
    MetricsCollector,
    NetworkMetrics,
    PeerStats,
    ResourceMetrics,
    __version__,
    configure,
)

# The contract of shared/spec/metrics.md: name -> (unit, kind, attribute keys).
CONNECTION = {"p2p.connection.direction", "network.transport", "p2p.transport"}
CONTRACT = {
    "p2p.network.io": ("By", "monotonic_sum", {"network.io.direction", "p2p.protocol", "network.transport"}),
    "p2p.connection.active": ("{connection}", "sum", CONNECTION),
    "p2p.connection.attempts": ("{attempt}", "monotonic_sum", CONNECTION),
    "p2p.connection.failures": ("{failure}", "monotonic_sum",
                                {*CONNECTION, "error.type"}),
    "p2p.connection.setup.duration": ("s", "histogram", CONNECTION),
    "p2p.connection.duration": ("s", "histogram", CONNECTION),
    "p2p.protocol.events": ("{event}", "monotonic_sum", {"p2p.protocol", "p2p.protocol.event"}),
    "p2p.peers": ("{peer}", "sum", {"p2p.peer.health"}),
    "p2p.peer.latency": ("s", "histogram", {"p2p.peer.health"}),
    "p2p.peer.reputation": ("1", "gauge", {"p2p.peer.id"}),
    "p2p.node.cpu.utilization": ("1", "gauge", set()),
    "p2p.node.memory.usage": ("By", "sum", set()),
    "p2p.node.bandwidth": ("By/s", "gauge", {"network.io.direction"}),
    "p2p.node.storage.usage": ("By", "sum", set()),
    "p2p.telemetry.rejected": ("{measurement}", "monotonic_sum", {"reason"}),
}
TX = {"network.io.direction": "transmit"}
RX = {"network.io.direction": "receive"}


def test_metrics_collection(provider, reader):
    """The seed's test_metrics_collection, as it stands in the seed."""
    collector = MetricsCollector(provider)
    collector.record_network_metrics(NetworkMetrics(bytes_sent=1000, bytes_received=2000, active_connections=5))

    snapshot = collector.network_snapshot()
    assert (snapshot.bytes_sent, snapshot.bytes_received, snapshot.active_connections) == (1000, 2000, 5)
    exported = collect(reader)
    other = {"p2p.protocol": "other", "network.transport": "other"}
    assert exported.value("p2p.network.io", {**TX, **other}) == 1000
    assert exported.value("p2p.network.io", {**RX, **other}) == 2000
    unknown = {"p2p.connection.direction": "unknown", "network.transport": "other", "p2p.transport": "other"}
    assert exported.value("p2p.connection.active", unknown) == 5


def test_every_metric_of_the_catalogue(provider, reader, tmp_path):
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "a").write_bytes(b"x" * 1000)
    (tmp_path / "b").write_bytes(b"y" * 24)
    collector = MetricsCollector(provider, sample_resources=False, protocols=["/ipfs/ping/1.0.0"],
                                 data_dir=tmp_path)
    net = collector.network
    net.bytes_sent(100, protocol="task", transport="tcp")
    net.sent(protocol="task", transport="tcp").add(50)
    net.bytes_received(7, protocol="/ipfs/ping/1.0.0", transport="quic")
    with net.connecting("outbound", "tcp"):
        pass
    with pytest.raises(ConnectionRefusedError), net.connecting("outbound", "tcp"):
        raise ConnectionRefusedError
    net.connection_opened("inbound", "tcp")
    net.connection_closed("inbound", "tcp", duration=42.0)
    collector.protocols.increment("discovery", "lookup", n=3)
    collector.record_protocol_metrics("task", {"submitted": 3, "completed": 2})
    collector.peers.update("peer-a", health=HealthStatus.HEALTHY, latency=0.02, reputation=0.9)
    collector.record_peer_metrics("peer-b", PeerStats(HealthStatus.DEGRADED, latency=0.3, reputation=0.4,
                                                      reason="slow pings"))
    collector.peers.update("peer-c", health="unhealthy")
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0, memory_usage=2 << 30,
                                                      bandwidth_usage=10_000, storage_usage=5 << 30))
    net.bytes_sent(-1)  # rejected: range
    collector.peers.update("peer-a", latency=float("nan"))  # rejected: range

    exported = collect(reader)
    assert set(CONTRACT) <= set(exported.metrics)
    for name, (unit, kind, keys) in CONTRACT.items():
        metric = exported[name]
        assert (metric.unit, metric.kind) == (unit, kind), name
        assert metric.description, name
        for attributes in metric.attribute_sets():
            assert set(attributes) == keys, (name, attributes)
    assert [(s.name, s.version) for s in exported.scopes] == [("p2p_telemetry", __version__)]

    io = exported["p2p.network.io"]
    assert io.value({**TX, "p2p.protocol": "task", "network.transport": "tcp"}) == 150
    assert io.value({**RX, "p2p.protocol": "/ipfs/ping/1.0.0", "network.transport": "quic"}) == 7
    outbound = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp"}
    inbound = {"p2p.connection.direction": "inbound", "network.transport": "tcp", "p2p.transport": "tcp"}
    assert exported.value("p2p.connection.attempts", outbound) == 2
    assert exported.value("p2p.connection.failures", {**outbound, "error.type": "refused"}) == 1
    assert exported.value("p2p.connection.failures", {**outbound, "error.type": "timeout"}) == 0
    assert exported.value("p2p.connection.active", outbound) == 1
    assert exported.value("p2p.connection.active", inbound) == 0
    setup = exported["p2p.connection.setup.duration"].point(outbound)
    assert setup.count == 1 and setup.explicit_bounds[0] == 0.001 and setup.explicit_bounds[-1] == 30.0
    lifetime = exported["p2p.connection.duration"].point(inbound)
    assert (lifetime.count, lifetime.sum) == (1, 42.0)
    assert lifetime.explicit_bounds[0] == 1.0 and lifetime.explicit_bounds[-1] == 604800.0

    events = exported["p2p.protocol.events"]
    assert events.value({"p2p.protocol": "discovery", "p2p.protocol.event": "lookup"}) == 3
    assert events.value({"p2p.protocol": "task", "p2p.protocol.event": "submitted"}) == 3
    assert events.value({"p2p.protocol": "task", "p2p.protocol.event": "completed"}) == 2

    peers = exported["p2p.peers"]
    assert {p.attributes["p2p.peer.health"]: p.value for p in peers.points} == {
        "healthy": 1, "degraded": 1, "unhealthy": 1}
    latency = exported["p2p.peer.latency"]
    assert (latency.point({"p2p.peer.health": "healthy"}).count,
            latency.point({"p2p.peer.health": "healthy"}).sum) == (1, 0.02)
    assert latency.point({"p2p.peer.health": "degraded"}).count == 1
    reputation = exported["p2p.peer.reputation"]
    assert {p.attributes["p2p.peer.id"]: p.value for p in reputation.points} == {"peer-a": 0.9, "peer-b": 0.4}

    assert exported.value("p2p.node.cpu.utilization") == 0.95
    assert exported.value("p2p.node.memory.usage") == 2 << 30
    assert exported.value("p2p.node.bandwidth", TX) == exported.value("p2p.node.bandwidth", RX) == 5000
    assert exported.value("p2p.node.storage.usage") == 5 << 30
    rejected = exported["p2p.telemetry.rejected"]
    assert rejected.value({"reason": "range"}) == 2
    assert rejected.value({"reason": "type"}) == 0

    assert collector.peer_counts() == {"total": 3, "healthy": 1, "degraded": 1, "unhealthy": 1}
    assert collector.resource_snapshot() == ResourceMetrics(95.0, 2 << 30, 10_000, 5 << 30)


def test_two_collectors_on_one_provider_add_up(provider, reader):
    first, second = MetricsCollector(provider), MetricsCollector(provider)
    first.network.bytes_sent(10, protocol="task")
    second.network.bytes_sent(5, protocol="task")
    first.peers.update("a", health="healthy")
    second.peers.update("b", health="healthy")
    exported = collect(reader)
    assert exported.value("p2p.network.io", {**TX, "p2p.protocol": "task", "network.transport": "tcp"}) == 15
    assert exported.value("p2p.peers", {"p2p.peer.health": "healthy"}) == 2
    second.close()
    assert collect(reader).value("p2p.peers", {"p2p.peer.health": "healthy"}) == 1


def test_drops_into_a_node_that_configured_opentelemetry(clean_global, caplog):
    """The node installed its own SDK provider first: the library uses it and never replaces it."""
    node_reader = InMemoryMetricReader()
    node_provider = MeterProvider(metric_readers=[node_reader])
    metrics.set_meter_provider(node_provider)

    collector = MetricsCollector()
    collector.network.bytes_received(64, protocol="health")
    assert collector.meter_provider is node_provider
    assert collect(node_reader).value(
        "p2p.network.io", {**RX, "p2p.protocol": "health", "network.transport": "tcp"}) == 64

    extra = InMemoryMetricReader()
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        returned = configure(exporters=["prometheus"], prometheus_port=0, extra_readers=[extra])
    assert returned is node_provider and metrics.get_meter_provider() is node_provider
    assert "already installed" in caplog.text
    # the extra reader (an alert evaluator's, say) was attached to the node's provider
    assert collect(extra).value("p2p.network.io", {**RX, "p2p.protocol": "health", "network.transport": "tcp"}) == 64


def test_collector_before_any_provider_follows_the_global_one(clean_global):
    """Created on the API's proxy provider, the instruments move to the SDK provider set later."""
    collector = MetricsCollector()
    collector.network.bytes_sent(9, protocol="task")
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    collector.peers.update("p", health="degraded", latency=0.01)
    exported = collect(reader)
    assert exported.value("p2p.network.io", {**TX, "p2p.protocol": "task", "network.transport": "tcp"}) == 9
    assert exported["p2p.peer.latency"].point({"p2p.peer.health": "degraded"}).count == 1


@pytest.mark.parametrize("kwargs, setting", [
    ({"peer_series_limit": -1}, "peer_series_limit"),
    ({"peer_series_limit": 1.5}, "peer_series_limit"),
    ({"protocols": "task"}, "protocols"),
    ({"protocols": [""]}, "protocols"),
    ({"sample_resources": "yes"}, "sample_resources"),
    ({"data_dir": 3}, "data_dir"),
    ({"max_event_names": 0}, "max_event_names"),
])
def test_bad_construction_names_the_setting(provider, kwargs, setting):
    with pytest.raises(ValueError, match=setting):
        MetricsCollector(provider, **kwargs)
