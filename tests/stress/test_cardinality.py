"""Cardinality attack: remote peers choose peer ids, protocol IDs, event names and transports.

A million peer ids churn through the peer table and a hundred thousand distinct names arrive
where names are attributes. The exported series stay within the bounds of metrics.md, nothing
collapses into ``otel.metric.overflow``, legitimate series keep exact values, and the process's
memory comes back to within 20 MB of where it started.
"""

from __future__ import annotations

import gc

import psutil

from conftest import collect
from p2p_telemetry import MetricsCollector
from p2p_telemetry.catalogue import DEFAULT_PROTOCOLS, ERROR_TYPES, OTHER, TRANSPORTS

PEERS = 1_000_000
LIVE = 5_000  # peers in the table at any one time while they churn
NAMES = 100_000
MiB = 1 << 20


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def no_overflow(exported) -> None:
    for metric in exported.metrics.values():
        for point in metric.points:
            assert "otel.metric.overflow" not in point.attributes, metric.name


def test_a_million_peers_and_a_hundred_thousand_names(reader, provider):
    collector = MetricsCollector(provider, sample_resources=False, protocols=["/ipfs/ping/1.0.0"])
    peers, net, events = collector.peers, collector.network, collector.protocols
    sent = net.sent("task", "tcp")
    # Warm-up: every code path once, then the baseline.
    peers.update("warm", health="healthy", latency=0.01, reputation=0.5)
    peers.remove("warm")
    net.bytes_sent(1, protocol="/warm", transport="warm")
    events.increment("/warm", "warm")
    collect(reader)
    before = rss()

    for i in range(PEERS):
        peers.update(f"12D3KooW{i:044d}", health=("healthy", "degraded", "unhealthy")[i % 3],
                     latency=0.001 * (i % 100), reputation=(i % 1000) / 1000)
        if i >= LIVE:
            peers.remove(f"12D3KooW{i - LIVE:044d}")
        if i % 100_000 == 0:
            no_overflow(collect(reader))
    for i in range(NAMES):
        net.bytes_sent(1, protocol=f"/evil/{i}/1.0.0", transport=f"transport-{i}")
        net.bytes_received(1, protocol="task", transport=f"transport-{i}")
        net.connection_failed(f"error-{i}", "outbound", f"transport-{i}")
        events.increment(f"/evil/{i}/1.0.0", f"event-{i}")
        events.increment("task", f"event-{i}")
        if i % 20_000 == 0:
            no_overflow(collect(reader))
    sent.add(4096)

    exported = collect(reader)
    no_overflow(exported)
    protocols = len(DEFAULT_PROTOCOLS) + 2  # the defaults, the node's own, other
    assert len(exported["p2p.network.io"].points) <= 2 * protocols * len(TRANSPORTS)
    assert len(exported["p2p.protocol.events"].points) <= protocols * (32 + 1)
    assert len(exported["p2p.connection.failures"].points) <= 3 * len(TRANSPORTS) * len(ERROR_TYPES)
    assert len(exported["p2p.peer.reputation"].points) == 10
    assert {p.attributes["p2p.peer.health"] for p in exported["p2p.peers"].points} == {
        "healthy", "degraded", "unhealthy"}
    assert sum(p.value for p in exported["p2p.peers"].points) == LIVE

    # The attack folded into `other`; the legitimate series kept their exact values.
    io = {(p.attributes["network.io.direction"], p.attributes["p2p.protocol"], p.attributes["network.transport"]):
          p.value for p in exported["p2p.network.io"].points}
    assert io[("transmit", "task", "tcp")] == 4096
    assert io[("transmit", OTHER, OTHER)] == NAMES + 1  # and the warm-up byte
    assert io[("receive", "task", OTHER)] == NAMES
    failures = {p.attributes["error.type"]: p.value for p in exported["p2p.connection.failures"].points
                if p.attributes["network.transport"] == OTHER}
    assert failures[OTHER] == NAMES
    task_events = {p.attributes["p2p.protocol.event"]: p.value for p in exported["p2p.protocol.events"].points
                   if p.attributes["p2p.protocol"] == "task"}
    assert len(task_events) == 33 and task_events[OTHER] == NAMES - 32
    lowest = sorted(p.value for p in exported["p2p.peer.reputation"].points)
    assert lowest == [0.0] * 5 + [0.001] * 5  # the live table's five 0.0 and five 0.001 peers

    for i in range(PEERS - LIVE, PEERS):
        peers.remove(f"12D3KooW{i:044d}")
    exported = collect(reader)
    assert sum(p.value for p in exported["p2p.peers"].points) == 0
    assert "p2p.peer.reputation" not in exported or not exported["p2p.peer.reputation"].points
    grown = rss() - before
    assert grown < 20 * MiB, f"memory grew by {grown / MiB:.1f} MiB"


def _series_per_metric(exported) -> dict[str, int]:
    return {name: len(metric.points) for name, metric in exported.metrics.items()}


def test_every_metric_stays_within_the_sdks_limit_at_the_worst_case_of_the_bounds(reader, provider, caplog):
    """70 protocols x 32 event names, or 200 protocols x 6 transports, used to pass the SDK's 2,000."""
    collector = MetricsCollector(provider, sample_resources=False)
    registry = collector.protocols.registry
    with caplog.at_level("WARNING", logger="p2p_telemetry"):
        accepted = [name for name in (f"/proto/{i}" for i in range(200)) if registry.register(name) is not False]
    assert registry.capacity is not None and len(registry) == registry.capacity
    assert caplog.text.count("the set is full") == 1  # refused with one warning, never silently
    for protocol in [*accepted, "/proto/199", *DEFAULT_PROTOCOLS]:
        for transport in TRANSPORTS:
            collector.network.bytes_sent(1, protocol=protocol, transport=transport)
            collector.network.bytes_received(1, protocol=protocol, transport=transport)
        for event in range(40):
            collector.protocols.increment(protocol, f"event-{event}")
    for direction in ("inbound", "outbound", "sideways"):
        for transport in TRANSPORTS:
            for stack in ("tcp", "quic", "ws", "wss", "webtransport", "webrtc", "circuit", "carrier-pigeon"):
                for error in [*ERROR_TYPES, "boom"]:
                    collector.network.connection_failed(error, direction, transport, stack)
    exported = collect(reader)
    no_overflow(exported)
    series = _series_per_metric(exported)
    assert max(series.values()) < 2000, series
    last = accepted[-1]
    assert exported.value("p2p.protocol.events", {"p2p.protocol": last, "p2p.protocol.event": "event-0"}) == 1
    # the refused protocol counts under other, never lost
    assert exported.value("p2p.network.io", {"network.io.direction": "transmit", "p2p.protocol": OTHER,
                                             "network.transport": "tcp"}) >= 1


def test_the_protocol_capacity_follows_a_provider_with_a_smaller_limit():
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        MeterProvider,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    kinds = (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge)
    reader = InMemoryMetricReader(cardinality_limits=dict.fromkeys(kinds, 400))
    provider = MeterProvider(metric_readers=[reader])
    try:
        collector = MetricsCollector(provider, sample_resources=False, max_event_names=8)
        for i in range(100):
            collector.protocols.register(f"/proto/{i}")
        for protocol in collector.protocols.protocols():
            for event in range(20):
                collector.protocols.increment(protocol, f"e{event}")
            for transport in TRANSPORTS:
                collector.network.bytes_sent(1, protocol=protocol, transport=transport)
        exported = collect(reader)
        no_overflow(exported)
        assert max(_series_per_metric(exported).values()) < 400
    finally:
        provider.shutdown()
