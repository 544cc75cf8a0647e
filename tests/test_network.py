"""Network group: bytes, bound handles, connections, failures and their error.type."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import threading

import pytest

from conftest import collect
from p2p_telemetry import error_type

TASK_TCP = {"p2p.protocol": "task", "network.transport": "tcp"}
OUT_TCP = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp"}



def io(reader, direction, **attrs):
    return collect(reader).value("p2p.network.io", {"network.io.direction": direction, **TASK_TCP, **attrs})


def test_bound_handle_and_keyword_calls_share_one_series(collector, reader):
    sent = collector.network.sent(protocol="task", transport="tcp")
    for _ in range(10):
        sent.add(100)
    collector.network.bytes_sent(24, protocol="task", transport="tcp")
    collector.network.received("task", "tcp").add(3)
    assert io(reader, "transmit") == 1024
    assert io(reader, "receive") == 3


def test_unknown_names_fold_into_other_and_still_count(collector, reader, caplog):
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        for i in range(50):
            collector.network.bytes_sent(1, protocol=f"/remote/{i}", transport="carrier-pigeon")
        collector.network.bytes_sent(1, protocol=["unhashable"], transport=None)
    exported = collect(reader)
    assert exported.value("p2p.network.io", {"network.io.direction": "transmit", "p2p.protocol": "other",
                                             "network.transport": "other"}) == 51
    assert len(exported["p2p.network.io"].points) == 1
    assert caplog.text.count("outside the accepted set") == 1  # once, never per call


def test_invalid_byte_counts_are_dropped_and_counted(collector, reader):
    handle = collector.network.sent("task", "tcp")
    for bad in (-1, 1.5, True, None, "10", float("nan"), 2**63, [1]):
        handle.add(bad)
        collector.network.bytes_received(bad, protocol="task")
    handle.add(2**40)  # valid, past the fast path
    exported = collect(reader)
    rejected = exported["p2p.telemetry.rejected"]
    assert rejected.value({"reason": "type"}) == 2 * 6
    assert rejected.value({"reason": "range"}) == 2 * 2
    assert exported.value("p2p.network.io", {"network.io.direction": "transmit", **TASK_TCP}) == 2**40


def test_running_total_saturates_and_counts_overflow(collector, reader):
    handle = collector.network.sent("task", "tcp")
    handle.add(2**63 - 10)
    handle.add(8)
    handle.add(5)  # would pass 2**63 - 1
    handle.add(1)  # reaches it exactly
    handle.add(1)
    exported = collect(reader)
    assert exported.value("p2p.network.io", {"network.io.direction": "transmit", **TASK_TCP}) == 2**63 - 1
    assert exported.value("p2p.telemetry.rejected", {"reason": "overflow"}) == 2


def test_totals_exact_under_threads(collector, reader):
    handle = collector.network.sent("task", "tcp")

    def work():
        for _ in range(50_000):
            handle.add(3)
            collector.network.bytes_sent(1, protocol="task", transport="tcp")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert io(reader, "transmit") == 4 * 50_000 * 4


def test_connecting_success_failure_and_cancel(collector, reader):
    net = collector.network
    with net.connecting("outbound", "tcp") as attempt:
        pass
    assert attempt.elapsed is not None and attempt.elapsed >= 0
    with pytest.raises(TimeoutError), net.connecting("outbound", "tcp"):
        raise TimeoutError("slow peer")

    async def cancelled():
        async with net.connecting("outbound", "tcp"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
    exported = collect(reader)
    assert exported.value("p2p.connection.attempts", OUT_TCP) == 3
    assert exported.value("p2p.connection.active", OUT_TCP) == 1
    failures = exported["p2p.connection.failures"]
    assert failures.value({**OUT_TCP, "error.type": "timeout"}) == 1
    assert failures.value({**OUT_TCP, "error.type": "canceled"}) == 1
    assert sum(p.value for p in failures.points) == 2
    assert exported["p2p.connection.setup.duration"].point(OUT_TCP).count == 1


def test_failure_series_exist_at_zero_from_the_first_attempt(collector, reader):
    collector.network.connection_attempted("inbound", "quic")
    failures = collect(reader)["p2p.connection.failures"]
    quic = [p for p in failures.points if p.attributes["network.transport"] == "quic"]
    assert sorted(p.attributes["error.type"] for p in quic) == sorted(
        ["timeout", "refused", "reset", "unreachable", "tls", "protocol", "canceled", "other"])
    assert all(p.value == 0 for p in quic)


def test_closing_more_than_opened_is_rejected_not_negative(collector, reader):
    collector.network.connection_opened("inbound", "tcp")
    collector.network.connection_closed("inbound", "tcp", duration=1.0)
    collector.network.connection_closed("inbound", "tcp", duration=-3)
    exported = collect(reader)
    assert exported.value("p2p.connection.active", {"p2p.connection.direction": "inbound",
                                                    "network.transport": "tcp", "p2p.transport": "tcp"}) == 0
    assert exported.value("p2p.telemetry.rejected", {"reason": "unbalanced"}) == 1
    assert exported.value("p2p.telemetry.rejected", {"reason": "range"}) == 1


@pytest.mark.parametrize("error, expected", [
    (TimeoutError(), "timeout"),
    (asyncio.TimeoutError(), "timeout"),
    (TimeoutError(), "timeout"),
    (ConnectionRefusedError(), "refused"),
    (ConnectionResetError(), "reset"),
    (BrokenPipeError(), "reset"),
    (asyncio.IncompleteReadError(b"", 10), "reset"),
    (OSError(errno.EHOSTUNREACH, "no route"), "unreachable"),
    (OSError(errno.ECONNREFUSED, "refused"), "refused"),
    (socket.gaierror(-2, "Name or service not known"), "unreachable"),
    (ssl.SSLError("bad handshake"), "tls"),
    (asyncio.CancelledError(), "canceled"),
    (type("MultiselectClientError", (Exception,), {})(), "protocol"),
    (type("HandshakeFailure", (Exception,), {})(), "protocol"),
    (ValueError("secret message"), "other"),
    (ConnectionRefusedError, "refused"),
    ("timeout", "timeout"),
    ("a remote peer's string", "other"),
    (None, "other"),
    (["unhashable"], "other"),
])
def test_error_type_is_bounded(error, expected):
    assert error_type(error) == expected


def test_error_type_follows_the_cause():
    try:
        try:
            raise ConnectionRefusedError
        except ConnectionRefusedError as inner:
            raise RuntimeError("dial failed") from inner
    except RuntimeError as outer:
        assert error_type(outer) == "refused"
