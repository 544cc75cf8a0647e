"""Hot path: record calls against a plain increment, the raw OTel SDK and prometheus_client; the peer table.

Run: python -m benchmarks.hot_path   (one process, side by side)
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from benchmarks._timing import best_seconds, per_call_ns, table
from p2p_telemetry import MetricsCollector

PEERS = 100_000


class Plain:
    """The floor: a method doing ``self.total += n``."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n


def record_calls() -> list[dict]:
    """ns per call of each way to count 1500 bytes sent."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    collector = MetricsCollector(provider, sample_resources=False)
    sdk_counter = provider.get_meter("bench").create_counter("bench.io", unit="By")
    attributes = {"network.io.direction": "transmit", "p2p.protocol": "task", "network.transport": "tcp"}
    registry = CollectorRegistry()
    prom = PromCounter("bench_io_bytes", "bench", ["direction", "protocol", "transport"], registry=registry)
    cases = {
        "plain method: self.total += n": ("p.add(1500)", {"p": Plain()}),
        "bound handle: sent.add(n)": ("h.add(1500)", {"h": collector.network.sent("task", "tcp")}),
        "bytes_sent(n, protocol=, transport=)": (
            "net.bytes_sent(1500, protocol='task', transport='tcp')", {"net": collector.network}),
        "protocols.increment(protocol, event)": (
            "pr.increment('discovery', 'lookup')", {"pr": collector.protocols}),
        "raw OTel SDK: Counter.add(n, attrs)": ("c.add(1500, a)", {"c": sdk_counter, "a": attributes}),
        "prometheus_client: labels(...).inc(n)": (
            "c.labels('transmit', 'task', 'tcp').inc(1500)", {"c": prom}),
        "prometheus_client: cached child.inc(n)": (
            "c.inc(1500)", {"c": prom.labels("transmit", "task", "tcp")}),
    }
    ns = per_call_ns(cases)
    plain = ns["plain method: self.total += n"]
    sdk = ns["raw OTel SDK: Counter.add(n, attrs)"]
    provider.shutdown()
    return [{"case": name, "ns": value, "x_plain": value / plain, "sdk_over": sdk / value}
            for name, value in ns.items()]


def peer_table() -> dict:
    """peers.update cost, one full collection, and memory per peer, with 100,000 peers."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    collector = MetricsCollector(provider, sample_resources=False)
    peers = collector.peers
    ids = [f"12D3KooW{i:044d}" for i in range(PEERS)]  # the length of a real libp2p peer id
    rng = random.Random(1)
    reputations = [rng.random() for _ in range(PEERS)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for peer_id, reputation in zip(ids, reputations):
        peers.update(peer_id, health="healthy", latency=0.02, reputation=reputation)
    for peer_id, reputation in zip(ids, reversed(reputations)):  # stale heap entries, as churn leaves them
        peers.update(peer_id, reputation=reputation)
    table_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    id_bytes = sum(sys.getsizeof(i) for i in ids)  # allocated before tracing: the node holds them anyway
    env = {"peers": peers, "ids": ids, "reps": reputations, "n": PEERS, "i": [0]}
    stmt = ("k = i[0] = (i[0] + 7919) % n\n"
            "peers.update(ids[k], health='healthy', latency=0.015, reputation=reps[k - 1])")
    update_ns = per_call_ns({"update": (stmt, env)}, number=50_000, rounds=5)["update"]
    loop_ns = per_call_ns({"loop": ("k = i[0] = (i[0] + 7919) % n\nids[k]; reps[k - 1]", env)},
                          number=50_000, rounds=5)["loop"]
    reader.collect()
    collect_s = best_seconds(reader.collect, repeat=7)
    provider.shutdown()
    return {"update_ns": update_ns - loop_ns, "collect_ms": collect_s * 1e3,
            "bytes_per_peer": table_bytes / PEERS, "bytes_per_peer_with_ids": (table_bytes + id_bytes) / PEERS}


def main() -> None:
    started = time.strftime("%Y-%m-%d %H:%M")
    rows = record_calls()
    print(f"# hot path ({started}, Python {sys.version.split()[0]})\n")
    print(table([(r["case"], f"{r['ns']:.0f}", f"{r['x_plain']:.2f}x", f"{r['sdk_over']:.1f}x") for r in rows],
                ("record call", "ns/op", "vs plain", "raw SDK is N x slower")))
    peers = peer_table()
    print(f"\npeers.update (health, latency, reputation) with {PEERS:,} peers: {peers['update_ns'] / 1000:.2f} us")
    print(f"one full collection with {PEERS:,} peers in the table: {peers['collect_ms']:.2f} ms")
    print(f"memory per peer in the table: {peers['bytes_per_peer']:.0f} B "
          f"({peers['bytes_per_peer_with_ids']:.0f} B counting a 52-char peer id string the table keeps alive)")


if __name__ == "__main__":
    main()
