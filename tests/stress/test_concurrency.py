"""Eight threads record a mixed workload while a reader collects every few milliseconds:
totals exact, monotonic sums never go down between collections, no exception anywhere."""

from __future__ import annotations

import threading
import time

from faults import thread_exceptions

from conftest import collect
from p2p_telemetry import MetricsCollector

THREADS = 8
CALLS = 200_000  # per thread
PEERS = ("p1", "p2", "p3", "p4")


def workload(collector: MetricsCollector, worker: int, errors: list[BaseException]) -> None:
    net, events, peers = collector.network, collector.protocols, collector.peers
    sent = net.sent("task", "tcp")
    try:
        for i in range(CALLS // 8):
            sent.add(3)
            net.bytes_received(5, protocol="discovery", transport="udp")
            events.increment("resource", "request")
            net.connection_opened("outbound", "tcp")
            net.connection_closed("outbound", "tcp")
            net.connection_attempted("inbound", "quic")
            peers.update(PEERS[(worker + i) % 4], health=("healthy", "degraded")[i % 2], latency=0.001)
            events.increment("task", f"w{worker}")
    except BaseException as error:
        errors.append(error)


def test_eight_threads_while_a_reader_collects(reader, provider):
    collector = MetricsCollector(provider, sample_resources=False)
    errors: list[BaseException] = []
    previous: dict[tuple, float] = {}
    went_down: list[tuple] = []
    collections = 0
    done = threading.Event()

    def read_loop() -> None:
        nonlocal collections
        while not done.is_set():
            exported = collect(reader)
            collections += 1
            for metric in exported.metrics.values():
                if metric.kind not in ("monotonic_sum", "histogram"):
                    continue
                for point in metric.points:
                    key = (metric.name, tuple(sorted(point.attributes.items())))
                    value = point.value if metric.kind == "monotonic_sum" else point.count
                    if value < previous.get(key, 0):
                        went_down.append((key, previous[key], value))
                    previous[key] = value
            time.sleep(0.003)

    workers = [threading.Thread(target=workload, args=(collector, w, errors)) for w in range(THREADS)]
    observer = threading.Thread(target=read_loop)
    with thread_exceptions() as thread_errors:  # the previous hook comes back whatever happens
        observer.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        done.set()
        observer.join()

    assert not errors and not thread_errors
    assert not went_down, went_down[:5]
    assert collections > 20
    per_thread = CALLS // 8
    exported = collect(reader)
    io = {tuple(p.attributes.values()): p.value for p in exported["p2p.network.io"].points}
    assert io[("transmit", "task", "tcp")] == 3 * per_thread * THREADS
    assert io[("receive", "discovery", "udp")] == 5 * per_thread * THREADS
    assert exported.value("p2p.protocol.events", {"p2p.protocol": "resource", "p2p.protocol.event": "request"}) \
        == per_thread * THREADS
    for w in range(THREADS):
        assert exported.value("p2p.protocol.events", {"p2p.protocol": "task", "p2p.protocol.event": f"w{w}"}) \
            == per_thread
    pair = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp"}
    assert exported.value("p2p.connection.active", pair) == 0
    assert exported.value("p2p.connection.attempts", {"p2p.connection.direction": "inbound",
                                                      "network.transport": "quic", "p2p.transport": "quic"}) \
        == per_thread * THREADS
    assert sum(p.value for p in exported["p2p.peers"].points) == len(PEERS)
    assert sum(p.count for p in exported["p2p.peer.latency"].points) == per_thread * THREADS
    rejected = exported.metrics.get("p2p.telemetry.rejected")
    assert rejected is None or not any(p.value for p in rejected.points)
