"""The peer table: update cost, one full collection against the number of peers, memory per peer.

Run: python -m benchmarks.peers
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from benchmarks._timing import best_seconds, per_call_ns, table
from p2p_telemetry import MetricsCollector

SIZES = (1_000, 10_000, 100_000)


def peer_table(peers: int) -> dict:
    """peers.update cost (ns), one full collection (ms) and memory per peer (B) with ``peers`` peers."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    collector = MetricsCollector(provider, sample_resources=False)
    table_ = collector.peers
    ids = [f"12D3KooW{i:044d}" for i in range(peers)]  # the length of a real libp2p peer id
    rng = random.Random(1)
    reputations = [rng.random() for _ in range(peers)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for peer_id, reputation in zip(ids, reputations):
        table_.update(peer_id, health="healthy", latency=0.02, reputation=reputation)
    for peer_id, reputation in zip(ids, reversed(reputations)):  # stale heap entries, as churn leaves them
        table_.update(peer_id, reputation=reputation)
    table_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    id_bytes = sum(sys.getsizeof(i) for i in ids)  # allocated before tracing: the node holds them anyway
    env = {"peers": table_, "ids": ids, "reps": reputations, "n": peers, "i": [0]}
    stmt = ("k = i[0] = (i[0] + 7919) % n\n"
            "peers.update(ids[k], health='healthy', latency=0.015, reputation=reps[k - 1])")
    update_ns = per_call_ns({"update": (stmt, env)}, number=50_000, rounds=5)["update"]
    loop_ns = per_call_ns({"loop": ("k = i[0] = (i[0] + 7919) % n\nids[k]; reps[k - 1]", env)},
                          number=50_000, rounds=5)["loop"]
    reader.collect()
    collect_s = best_seconds(reader.collect, repeat=7)
    provider.shutdown()
    return {"peers": peers, "update_ns": update_ns - loop_ns, "collect_ms": collect_s * 1e3,
            "bytes_per_peer": table_bytes / peers, "bytes_per_peer_with_ids": (table_bytes + id_bytes) / peers}


def main() -> None:
    print(f"# peer table ({time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]})\n")
    rows = [peer_table(n) for n in SIZES]
    print(table([(f"{r['peers']:,}", f"{r['update_ns'] / 1000:.2f}", f"{r['collect_ms']:.2f}",
                  f"{r['bytes_per_peer']:.0f}", f"{r['bytes_per_peer_with_ids']:.0f}") for r in rows],
                ("peers", "update us", "full collection ms", "B/peer", "B/peer with its id string")))


if __name__ == "__main__":
    main()
