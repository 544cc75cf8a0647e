"""Collector outage: a node exporting over OTLP to a real collector (rotel) that is killed mid-run and
restarted on the same ports. Recording never raises and stays as fast, memory stays flat, nothing is
lost; ``shutdown`` with the collector gone or black-holed returns within the configured timeout."""

from __future__ import annotations

import logging
import socket
import statistics
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from faults import forget_logged_duplicates, thread_exceptions

from p2p_telemetry import MetricsCollector, configure, setup_info
from realstack import LOOPBACK, Rotel, latest_point, parse_rotel_metrics, wait_for

PROTOCOLS = {"grpc": "grpc_endpoint", "http/protobuf": "http_endpoint"}
INTERVAL = 0.5  # export interval (s); the OTLP timeout follows it: min(5, interval)
PHASE = 2.5  # seconds of recording per phase: up, down, up again
BATCH = 200  # hot-path calls timed together
WINDOW = 0.25  # seconds per p99 window
SLACK = 0.5  # seconds allowed over the timeout for thread joins and the process's own noise

IO_SENT = {"network.io.direction": "transmit", "p2p.protocol": "task", "network.transport": "tcp"}
IO_RECEIVED = {"network.io.direction": "receive", "p2p.protocol": "/ipfs/ping/1.0.0", "network.transport": "quic"}
EVENTS = {"p2p.protocol": "discovery", "p2p.protocol.event": "lookup"}


@dataclass
class Node:
    """A node's telemetry exporting over OTLP, and what it recorded."""

    provider: Any
    collector: MetricsCollector
    service: str
    totals: Tally[str] = field(default_factory=Tally)

    @classmethod
    def start(cls, endpoint: str, protocol: str, interval: float = INTERVAL) -> Node:
        service = f"outage-{protocol.replace('/', '-')}-{time.monotonic_ns()}"
        provider = configure(service_name=service, exporters=["otlp"], otlp_endpoint=endpoint,
                             otlp_protocol=protocol, export_interval=interval, set_global=False)
        collector = MetricsCollector(provider, sample_resources=False, protocols=["/ipfs/ping/1.0.0"])
        return cls(provider, collector, service)

    def record(self, seconds: float) -> list[float]:
        """Record a mixed workload for ``seconds``; the p99 (ns per call) of the hot path per window."""
        sent = self.collector.network.sent("task", "tcp")
        p99s: list[float] = []
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            window_end, per_call = min(end, now + WINDOW), []
            while time.monotonic() < window_end:
                start = time.perf_counter_ns()
                for _ in range(BATCH):
                    sent.add(3)
                per_call.append((time.perf_counter_ns() - start) / BATCH)
                self.totals["sent"] += 3 * BATCH
                self.collector.network.bytes_received(1500, protocol="/ipfs/ping/1.0.0", transport="quic")
                self.collector.protocols.increment("discovery", "lookup", 2)
                self.totals["received"] += 1500
                self.totals["events"] += 2
                time.sleep(0.0005)  # a node does other work too; lets the export thread run
            if len(per_call) >= 20:
                p99s.append(statistics.quantiles(per_call, n=100)[98])
        return p99s

    def timed_shutdown(self) -> float:
        start = time.monotonic()
        self.provider.shutdown()
        return time.monotonic() - start


def rss() -> int:
    return psutil.Process().memory_info().rss


def received(rotel: Rotel, service: str) -> Callable[[], list[dict]]:
    return lambda: [p for p in parse_rotel_metrics(rotel.output()) if p["resource"].get("service.name") == service]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_collector_killed_and_restarted(tmp_path: Path, protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    forget_logged_duplicates()
    rotel = Rotel(tmp_path)
    node = Node.start(getattr(rotel, PROTOCOLS[protocol]), protocol)
    try:
        with thread_exceptions() as escaped, caplog.at_level(logging.DEBUG):
            up = node.record(PHASE)
            wait_for(received(rotel, node.service), 10, "the first export")
            rotel.kill()
            node.record(INTERVAL * 2)  # let the exporter notice: the first failures, a reconnect
            before = rss()
            down = node.record(PHASE)
            grown = rss() - before
            rotel = Rotel(tmp_path, grpc_port=rotel.grpc_port, http_port=rotel.http_port)
            up += node.record(PHASE)
            shutdown = node.timed_shutdown()
        points = wait_for(received(rotel, node.service), 10, "exports after the restart")
    finally:
        rotel.stop()
    up_p99, down_p99 = statistics.median(up), statistics.median(down)
    print(f"\n{protocol}: p99 up {up_p99:.0f} ns/call, down {down_p99:.0f} ns/call; RSS while down "
          f"{grown / 1e6:+.2f} MB; shutdown {shutdown:.2f} s; recorded {dict(node.totals)}")
    assert not escaped, [f"{e.thread}: {e.exc_value!r}" for e in escaped]
    assert not [r for r in caplog.records if r.exc_info], "an exception was logged with a traceback"
    assert any("export" in r.getMessage().lower() for r in caplog.records if r.levelno >= logging.WARNING), \
        "the outage went unnoticed: is the collector really down?"
    assert down_p99 <= 2 * up_p99, (up, down)
    assert grown < 5_000_000
    assert shutdown <= setup_info(node.provider).otlp_timeout + SLACK
    assert latest_point(points, "p2p.network.io", IO_SENT)["value"] == node.totals["sent"]
    assert latest_point(points, "p2p.network.io", IO_RECEIVED)["value"] == node.totals["received"]
    assert latest_point(points, "p2p.protocol.events", EVENTS)["value"] == node.totals["events"]


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections, reads everything and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self._conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            self.accepted.set()
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._stop = True
        for conn in [self.sock, *self._conns]:
            conn.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]  # closed again on return: nothing listens there


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("server", ["nothing listening", "black hole"])
def test_shutdown_returns_within_the_timeout(protocol: str, server: str) -> None:
    hole = BlackHole() if server == "black hole" else None
    port = hole.port if hole else closed_port()
    node = Node.start(f"http://{LOOPBACK}:{port}", protocol, interval=60.0)  # the default timeout: 5 s
    try:
        with thread_exceptions() as escaped:
            node.collector.network.sent("task", "tcp").add(1)
            took = node.timed_shutdown()
    finally:
        if hole:
            hole.close()
    timeout = setup_info(node.provider).otlp_timeout
    print(f"\n{protocol}, {server}: shutdown took {took:.2f} s (timeout {timeout} s)")
    assert timeout == 5.0
    assert not escaped
    if hole:
        assert hole.accepted.is_set(), "the exporter never reached the black hole"
    assert took <= timeout + SLACK


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_shutdown_during_an_export_stuck_in_a_black_hole(protocol: str) -> None:
    """The SDK alone waits for the export in flight, then for a final one: twice the timeout."""
    hole = BlackHole()
    node = Node.start(f"http://{LOOPBACK}:{hole.port}", protocol, interval=2.0)
    try:
        with thread_exceptions() as escaped:
            node.collector.network.sent("task", "tcp").add(1)
            assert hole.accepted.wait(10), "no periodic export reached the black hole"
            time.sleep(0.2)  # the export is now waiting for an answer
            took = node.timed_shutdown()
    finally:
        hole.close()
    timeout = setup_info(node.provider).otlp_timeout
    print(f"\n{protocol}, export in flight: shutdown took {took:.2f} s (timeout {timeout} s)")
    assert not escaped
    assert took <= timeout + SLACK
