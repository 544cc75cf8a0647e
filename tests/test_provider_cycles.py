"""configure() + provider.shutdown(), again and again: nothing grows (providers, threads, fds, heap).

A node that restarts its telemetry (tests, a supervisor, a reload) must get back everything the
last provider held. Each cycle here is a node as users write one: it owns its provider, one of
its own instruments calls back into it (a reference cycle, which gc collects), a MetricsCollector
records on the provider, Prometheus is scraped once, then the provider is shut down.
"""

from __future__ import annotations

import gc
import os
import threading
import tracemalloc
import weakref
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from p2p_telemetry import MetricsCollector, configure, setup_info
from realstack import http_get

CYCLES = 60
WARM_UP = 5
# What each provider leaves for good: the SDK registers os.register_at_fork hooks per MeterProvider
# (and per periodic reader), which CPython can never remove (~0.6 KB); the rest is noise.
HEAP_PER_CYCLE = 3 * 1024


class Node:
    """A node owning its telemetry, as an application does."""

    def __init__(self) -> None:
        self.provider: Any = configure(prometheus_port=0, extra_readers=[InMemoryMetricReader()], set_global=False)
        self.provider.get_meter("node").create_observable_gauge("node.up", [self.observe])
        self.metrics = MetricsCollector(self.provider, sample_resources=False)

    def observe(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(1)]


def one_cycle(providers: list[weakref.ref[Any]]) -> None:
    node = Node()
    node.metrics.network.bytes_sent(1024, protocol="task")
    node.metrics.peers.update("12D3KooWpeer", health="healthy", latency=0.01)
    assert b"p2p_network_io_bytes_total" in http_get(setup_info(node.provider).prometheus_url)
    providers.append(weakref.ref(node.provider))
    node.provider.shutdown()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_configure_and_shutdown_cycles_leave_nothing_behind(clean_global):
    providers: list[weakref.ref[Any]] = []
    for _ in range(WARM_UP):  # imports, caches, the first-time set-up of the SDK
        one_cycle(providers)
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    tracemalloc.start()
    try:
        heap = tracemalloc.get_traced_memory()[0]
        for _ in range(CYCLES):
            one_cycle(providers)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - heap
    finally:
        tracemalloc.stop()
    assert [ref for ref in providers if ref() is not None] == [], "a shut-down provider is still alive"
    assert (threading.active_count(), open_fds()) == (threads, fds)
    assert grown / CYCLES < HEAP_PER_CYCLE, f"the heap grew {grown / CYCLES:.0f} B a cycle"
