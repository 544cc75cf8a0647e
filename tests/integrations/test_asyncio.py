"""asyncio integration on real loopback sockets: exact bytes both ways, levels, failures, resets, cancellation."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from conftest import collect
from p2p_telemetry.integrations.asyncio import instrument_streams, open_connection, start_server
from realstack import free_port

HOST = "127.0.0.1"


def io(exported, direction: str, protocol: str = "task") -> int:
    return exported.value("p2p.network.io", {"network.io.direction": direction, "p2p.protocol": protocol,
                                             "network.transport": "tcp"})


def active(exported, direction: str) -> int:
    return exported.value("p2p.connection.active", {"p2p.connection.direction": direction,
                                                    "network.transport": "tcp", "p2p.transport": "tcp"})


def lifetimes(exported, direction: str) -> int:
    return exported["p2p.connection.duration"].point({"p2p.connection.direction": direction,
                                                      "network.transport": "tcp", "p2p.transport": "tcp"}).count


async def until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def fill_backlog(address) -> list[socket.socket]:
    """Connect to a listener that never accepts until its backlog is full (the next SYN goes unanswered)."""
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.settimeout(0.3)
        try:
            filler.connect(address)
        except OSError:
            filler.close()
            return fillers
        fillers.append(filler)
    raise AssertionError("the listen backlog never filled")



def test_exact_bytes_both_directions_and_levels(collector, reader):
    payload = bytes(range(256)) * 397  # 101,632 bytes: many chunks, not a multiple of 4 KiB
    done = asyncio.Event

    async def main():
        finished = done()
        during = {}

        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            data = await r.readexactly(len(payload))
            w.writelines([data[:1000], memoryview(data)[1000:]])
            await w.drain()
            line = await r.readline()
            w.write(line.upper())
            await w.drain()
            assert await r.read() == b""  # the client's EOF
            w.close()
            await w.wait_closed()
            finished.set()

        server = await start_server(echo, HOST, 0, collector=collector, protocol="task")
        port = server.sockets[0].getsockname()[1]
        r, w = await open_connection(HOST, port, collector=collector, protocol="task")
        assert isinstance(r, asyncio.StreamReader) and isinstance(w, asyncio.StreamWriter)
        for i in range(0, len(payload), 4096):
            w.write(payload[i:i + 4096])
        await w.drain()
        assert await r.readexactly(len(payload)) == payload
        w.write(b"hello\n")
        assert await r.readline() == b"HELLO\n"
        during.update(collector.network.totals())
        w.write_eof()
        await finished.wait()
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()
        return during

    during = asyncio.run(main())
    assert during["active_connections"] == 2
    moved = len(payload) + len(b"hello\n")
    exported = collect(reader)
    for direction in ("transmit", "receive"):
        assert io(exported, direction) == 2 * moved  # each side sent and received `moved` bytes
    assert active(exported, "outbound") == 0 and active(exported, "inbound") == 0
    assert lifetimes(exported, "outbound") == 1 and lifetimes(exported, "inbound") == 1
    attempts = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp"}
    assert exported.value("p2p.connection.attempts", attempts) == 1
    assert exported["p2p.connection.setup.duration"].point(attempts).count == 1
    assert sum(p.value for p in exported["p2p.connection.failures"].points) == 0


def test_refused_dial_counts_failure(collector, reader):
    port = free_port()  # nothing listens there

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await open_connection(HOST, port, collector=collector)

    asyncio.run(main())
    exported = collect(reader)
    wanted = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp",
              "error.type": "refused"}
    assert exported.value("p2p.connection.failures", wanted) == 1
    assert "p2p.connection.active" not in exported  # nothing was ever open


def test_reset_by_peer_and_cancelled_handler_are_closed_and_counted(collector, reader):
    async def main():
        handlers: list[asyncio.Task] = []
        started = asyncio.Event()

        async def hang(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())
            started.set()
            try:
                await r.read(1)  # b"" at EOF, or raises on reset; then wait forever
            except ConnectionResetError:
                pass
            await asyncio.Event().wait()

        server = await start_server(hang, HOST, 0, collector=collector)
        port = server.sockets[0].getsockname()[1]

        # 1. The peer resets the connection (RST via SO_LINGER 0): the server side closes its books.
        raw = socket.create_connection((HOST, port))
        await until(lambda: collector.network.totals()["active_connections"] == 1)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
        await until(lambda: collector.network.totals()["active_connections"] == 0)

        # 2. The handler task is cancelled: its connection is closed, and the client sees EOF.
        started.clear()
        r, w = await open_connection(HOST, port, collector=collector)
        await started.wait()
        assert collector.network.totals()["active_connections"] == 2
        handlers[-1].cancel()
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
        await w.wait_closed()
        await until(lambda: collector.network.totals()["active_connections"] == 0)

        # 3. A dialling task cancelled mid-dial (the listener's backlog is full, so the SYN goes
        #    unanswered) counts a canceled failure and leaves no connection open.
        with socket.socket() as full:
            full.bind((HOST, 0))
            full.listen(0)
            fillers = fill_backlog(full.getsockname())
            task = asyncio.create_task(open_connection(*full.getsockname(), collector=collector))
            await asyncio.sleep(0.2)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for filler in fillers:
                filler.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    exported = collect(reader)
    assert active(exported, "inbound") == 0 and active(exported, "outbound") == 0
    assert lifetimes(exported, "inbound") == 2 and lifetimes(exported, "outbound") == 1
    canceled = {"p2p.connection.direction": "outbound", "network.transport": "tcp", "p2p.transport": "tcp",
                "error.type": "canceled"}
    assert exported.value("p2p.connection.failures", canceled) == 1


def test_instrument_streams_on_existing_connection(collector, reader):
    async def main():
        got = asyncio.Queue()

        async def serve(r, w):
            await got.put(await r.read())
            w.close()

        server = await asyncio.start_server(serve, HOST, 0)  # plain asyncio: only the client is instrumented
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection(HOST, port)
        instrument_streams(r, w, collector=collector, direction="outbound", protocol="discovery")
        w.write(b"x" * 12345)
        w.write_eof()
        assert len(await got.get()) == 12345
        assert await r.read() == b""
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    exported = collect(reader)
    assert io(exported, "transmit", "discovery") == 12345
    assert active(exported, "outbound") == 0 and lifetimes(exported, "outbound") == 1
