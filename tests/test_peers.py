"""Peer group: exact counts by health, latency histogram, and the bounded reputation metric."""

from __future__ import annotations

import logging
import random
import threading

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import collect
from p2p_telemetry import HealthStatus, MetricsCollector, _sdk_bridge
from p2p_telemetry.catalogue import LATENCY_BUCKETS


def by_health(exported):
    return {p.attributes["p2p.peer.health"]: p.value for p in exported["p2p.peers"].points}


def reputations(exported):
    return {tuple(p.attributes.items())[0][1]: p.value for p in exported["p2p.peer.reputation"].points}


def test_counts_are_exact_as_peers_change(provider, reader):
    peers = MetricsCollector(provider).peers
    assert by_health(collect(reader)) == {"healthy": 0, "degraded": 0, "unhealthy": 0}
    peers.update("a")
    peers.update("b", health="degraded")
    peers.update("c", health=HealthStatus.UNHEALTHY, reason="3 failed pings")
    assert by_health(collect(reader)) == {"healthy": 1, "degraded": 1, "unhealthy": 1}
    peers.update("c", health="healthy")
    peers.update("b", health="degraded")
    peers.remove("a")
    peers.remove("never-seen")
    assert by_health(collect(reader)) == {"healthy": 1, "degraded": 1, "unhealthy": 0}
    assert peers.get("c").health_status is HealthStatus.HEALTHY and peers.get("c").reason == "3 failed pings"
    assert peers.get("a") is None and len(peers) == 2 and "b" in peers


def test_latency_histogram_counts_every_sample_by_health(provider, reader):
    peers = MetricsCollector(provider).peers
    samples = [random.uniform(0, 0.3) for _ in range(500)]
    for i, rtt in enumerate(samples):
        peers.update(f"p{i % 7}", latency=rtt)
    peers.update("slow", health="degraded", latency=4.0)
    exported = collect(reader)
    healthy = exported["p2p.peer.latency"].point({"p2p.peer.health": "healthy"})
    assert healthy.count == 500 and healthy.sum == pytest.approx(sum(samples))
    assert healthy.min == min(samples) and healthy.max == max(samples)
    assert tuple(healthy.explicit_bounds) == LATENCY_BUCKETS
    expected = [0] * (len(LATENCY_BUCKETS) + 1)
    for rtt in samples:
        expected[sum(rtt > b for b in LATENCY_BUCKETS)] += 1
    assert list(healthy.bucket_counts) == expected
    # cumulative across collections, with more samples in between
    peers.update("p1", latency=0.001)
    again = collect(reader)["p2p.peer.latency"].point({"p2p.peer.health": "healthy"})
    assert again.count == 501


def test_latency_reaches_every_reader(provider, reader):
    second = InMemoryMetricReader()
    provider.add_metric_reader(second)
    peers = MetricsCollector(provider).peers
    for _ in range(10):
        peers.update("a", latency=0.01)
    assert collect(reader)["p2p.peer.latency"].point({"p2p.peer.health": "healthy"}).count == 10
    peers.update("a", latency=0.01)
    assert collect(second)["p2p.peer.latency"].point({"p2p.peer.health": "healthy"}).count == 11
    assert collect(reader)["p2p.peer.latency"].point({"p2p.peer.health": "healthy"}).count == 11


def test_reputation_reports_only_the_worst_peers(provider, reader):
    peers = MetricsCollector(provider, peer_series_limit=3).peers
    for i in range(100):
        peers.update(f"peer-{i}", reputation=(i + 1) / 100)
    assert reputations(collect(reader)) == {"peer-0": 0.01, "peer-1": 0.02, "peer-2": 0.03}
    peers.remove("peer-1")
    peers.update("peer-0", reputation=0.99)
    peers.update("peer-50", reputation=0.0)
    assert reputations(collect(reader)) == {"peer-50": 0.0, "peer-2": 0.03, "peer-3": 0.04}


def test_reputation_stays_correct_after_100k_peers_come_and_go(provider, reader):
    """The SDK alone collapses into otel.metric.overflow after ~2,000 distinct peer ids."""
    peers = MetricsCollector(provider, peer_series_limit=100).peers
    live: dict[str, float] = {}
    for i in range(100_000):
        peer_id = f"12D3KooW{i:012d}"
        live[peer_id] = 1 - i / 100_000  # every newcomer is the worst so far: the reported ids churn
        peers.update(peer_id, reputation=live[peer_id])
        if len(live) > 150:
            gone = next(iter(live))
            del live[gone]
            peers.remove(gone)
        if i % 100 == 99:
            expected = dict(sorted(live.items(), key=lambda kv: kv[1])[:100])
            assert reputations(collect(reader)) == expected
    points = collect(reader)["p2p.peer.reputation"].points
    assert len(points) == 100
    assert all("otel.metric.overflow" not in p.attributes for p in points)


def test_reputation_off_with_limit_zero(provider, reader):
    MetricsCollector(provider, peer_series_limit=0).peers.update("a", reputation=0.1)
    assert "p2p.peer.reputation" not in collect(reader)


def test_invalid_peer_input_is_dropped_per_field(provider, reader):
    collector = MetricsCollector(provider)
    peers = collector.peers
    peers.update("", health="healthy")
    peers.update(None, health="healthy")  # type: ignore[arg-type]
    peers.update("x" * 1000)
    peers.update("bad\udcff")
    peers.update("ok", health="zombie", latency=-1, reputation=1.5)
    peers.update("ok", health=3, latency="fast", reputation=float("nan"))
    exported = collect(reader)
    assert by_health(exported) == {"healthy": 1, "degraded": 0, "unhealthy": 0}
    rejected = {p.attributes["reason"]: p.value for p in exported["p2p.telemetry.rejected"].points}
    assert rejected["peer_id"] == 4
    assert rejected["range"] == 4 and rejected["type"] == 2


def test_the_table_is_bounded(provider, reader):
    peers = MetricsCollector(provider, max_peers=5).peers
    for i in range(10):
        peers.update(f"p{i}")
    exported = collect(reader)
    assert sum(by_health(exported).values()) == 5
    assert exported.value("p2p.telemetry.rejected", {"reason": "peer_limit"}) == 5


def test_counts_exact_under_threads(provider, reader):
    peers = MetricsCollector(provider).peers

    def churn(worker: int) -> None:
        for i in range(5_000):
            peers.update(f"{worker}-{i % 100}", health=("healthy", "degraded", "unhealthy")[i % 3],
                         latency=0.01)
            if i % 10 == 0:
                peers.remove(f"{worker}-{(i + 50) % 100}")

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    exported = collect(reader)
    expected = {"healthy": 0, "degraded": 0, "unhealthy": 0}
    for peer_id in peers.ids():
        expected[peers.get(peer_id).health_status.value] += 1
    assert by_health(exported) == expected
    latency = exported["p2p.peer.latency"]
    assert sum(p.count for p in latency.points) == 4 * 5_000


def test_reputation_falls_back_to_rank_keys_when_sdk_internals_change(provider, reader, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise _sdk_bridge.SdkInternalsChanged("test")

    monkeypatch.setattr(_sdk_bridge, "prune_attribute_sets", broken)
    peers = MetricsCollector(provider, peer_series_limit=2).peers
    for i in range(5):
        peers.update(f"p{i}", reputation=i / 10)
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        collect(reader)
        exported = collect(reader)
    assert {p.attributes["p2p.peer.rank"]: p.value for p in exported["p2p.peer.reputation"].points} == {
        1: 0.0, 2: 0.1}
    assert caplog.text.count("rank") == 1
