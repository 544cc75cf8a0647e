"""Hot path: record calls against a plain increment, the raw OTel SDK and prometheus_client; the peer table.

Run: python -m benchmarks.hot_path   (one process, side by side)
"""

from __future__ import annotations

import sys
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from benchmarks._timing import per_call_ns, table
from benchmarks.peers import peer_table
from p2p_telemetry import MetricsCollector


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


def main() -> None:
    started = time.strftime("%Y-%m-%d %H:%M")
    rows = record_calls()
    print(f"# hot path ({started}, Python {sys.version.split()[0]})\n")
    print(table([(r["case"], f"{r['ns']:.0f}", f"{r['x_plain']:.2f}x", f"{r['sdk_over']:.1f}x") for r in rows],
                ("record call", "ns/op", "vs plain", "raw SDK is N x slower")))
    peers = peer_table(100_000)
    print(f"\npeers.update (health, latency, reputation) with 100,000 peers: {peers['update_ns'] / 1000:.2f} us")
    print(f"one full collection with 100,000 peers in the table: {peers['collect_ms']:.2f} ms")
    print(f"memory per peer in the table: {peers['bytes_per_peer']:.0f} B "
          f"({peers['bytes_per_peer_with_ids']:.0f} B counting a 52-char peer id string the table keeps alive)")


if __name__ == "__main__":
    main()
