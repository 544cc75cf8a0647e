"""Alert evaluation: cost of one tick (collection included) and delay from a threshold crossing to a sink.

Run: python -m benchmarks.alerts   (bounded: about 20 s)
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time

from opentelemetry.sdk.metrics import MeterProvider

from benchmarks._timing import table
from p2p_telemetry import AlertConfig, AlertManager, CallbackSink, MetricsCollector, ResourceMetrics, default_rules

TICKS = 200
HEALTH = ("healthy", "degraded", "unhealthy")


def tick_cost(peers: int) -> dict:
    """Milliseconds per ``AlertManager.evaluate()`` with the default rules and ``peers`` peers in the table."""
    provider = MeterProvider()
    collector = MetricsCollector(provider, sample_resources=False)
    rng = random.Random(1)
    for i in range(peers):
        collector.peers.update(f"peer-{i}", health=HEALTH[i % 3], latency=rng.random() / 10,
                               reputation=rng.random())
    for protocol in ("task", "discovery", "resource", "health"):
        collector.network.bytes_sent(1500, protocol=protocol, transport="tcp")
        collector.protocols.increment(protocol, "request", 3)
    collector.network.connection_failed("timeout")
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=50.0, memory_usage=1 << 28))
    manager = AlertManager(AlertConfig(default_rules(), []), provider)
    manager.evaluate()  # first collection: latency samples merged, instruments warmed
    times = []
    for _ in range(TICKS):
        started = time.perf_counter()
        manager.evaluate()
        times.append((time.perf_counter() - started) * 1000)
    manager.stop()
    provider.shutdown()
    times.sort()
    return {"median": statistics.median(times), "p99": times[int(len(times) * 0.99) - 1], "max": times[-1]}


def delivery_delay(interval: float, crossings: int) -> list[float]:
    """Seconds from ``record_resource_metrics`` crossing the CPU threshold to the CallbackSink seeing it fire."""
    provider = MeterProvider()
    collector = MetricsCollector(provider, sample_resources=False)
    fired = threading.Event()
    delivered: list[float] = []

    def on_change(alert) -> None:
        if alert.name == "HighCpuUsage" and alert.state == "firing":
            delivered.append(time.perf_counter())
            fired.set()

    manager = AlertManager(AlertConfig(default_rules(), [CallbackSink(on_change)]), provider).start(interval)
    rng = random.Random(2)
    delays = []
    for _ in range(crossings):
        collector.record_resource_metrics(ResourceMetrics(cpu_usage=10.0))
        deadline = time.monotonic() + 3 * interval + 1
        while manager.has_alert("HighCpuUsage") and time.monotonic() < deadline:
            time.sleep(interval / 20)
        time.sleep(rng.random() * interval)  # cross at a random phase of the evaluation loop
        fired.clear()
        crossed = time.perf_counter()
        collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))
        if fired.wait(3 * interval + 1):
            delays.append(delivered[-1] - crossed)
    manager.stop()
    provider.shutdown()
    return delays


def main() -> None:
    print(f"# alert evaluation ({time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]})\n")
    rows = []
    for peers in (1_000, 100_000):
        cost = tick_cost(peers)
        rows.append((f"{peers:,}", f"{cost['median']:.3f}", f"{cost['p99']:.3f}", f"{cost['max']:.3f}",
                     "<= 5 ms: " + ("ok" if cost["median"] <= 5 else "MISSED")))
    print("one evaluation tick, default rules, collection included "
          f"(ms, {TICKS} ticks)\n")
    print(table(rows, ("peers", "median", "p99", "max", "target")))
    rows = []
    for interval, crossings in ((1.0, 6), (0.1, 30)):
        delays = delivery_delay(interval, crossings)
        worst = max(delays) if delays else float("inf")
        rows.append((f"{interval:g} s", f"{len(delays)}/{crossings}", f"{statistics.mean(delays) * 1000:.0f}",
                     f"{worst * 1000:.0f}", f"<= {(interval + 0.1) * 1000:.0f} ms: "
                     + ("ok" if worst <= interval + 0.1 else "MISSED")))
    print("\nthreshold crossing -> CallbackSink delivery (ms)\n")
    print(table(rows, ("check interval", "delivered", "mean", "max", "target")))


if __name__ == "__main__":
    main()
