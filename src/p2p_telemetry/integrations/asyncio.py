"""asyncio streams that count their bytes, and their connection's attempt, set-up, failure, level and lifetime.

Drop-in replacements for ``asyncio.open_connection`` and ``asyncio.start_server``, plus
``instrument_streams`` for streams a node already has. The streams returned are the plain
asyncio objects, with three methods replaced on the instances (``isinstance`` still holds):

- received bytes are counted where asyncio hands them to the reader (``feed_data``), once per
  chunk off the socket, whichever ``read*`` method the node then uses;
- sent bytes are counted in ``write``/``writelines``;
- the connection is closed in the books (``p2p.connection.active`` down, ``p2p.connection.duration``
  recorded) from the protocol's ``connection_lost``, which asyncio calls however the connection
  ends: a local ``close()``, the peer's FIN or RST, an abort.

A handler of ``start_server`` that raises or is cancelled has its connection closed (as Python
3.12's asyncio does for a raising handler), so a cancelled connection is closed and counted.
Instrumentation never raises into the node: if a stream is not what it expects, it is returned
uninstrumented and a warning is logged once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..catalogue import OTHER
from ..collector import MetricsCollector

__all__ = ["open_connection", "start_server", "instrument_streams"]

logger = logging.getLogger("p2p_telemetry")
_TCP = "tcp"
_warned = False

ClientConnected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


def _size(data: Any) -> int:
    return data.nbytes if data.__class__ is memoryview else len(data)


class _Books:
    """One instrumented connection's open entry; closed exactly once."""

    __slots__ = ("_network", "_direction", "_transport", "_opened", "closed")

    def __init__(self, collector: MetricsCollector, direction: str, transport: str) -> None:
        self._network = collector.network
        self._direction = direction
        self._transport = transport
        self._opened = time.perf_counter()
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._network.connection_closed(self._direction, self._transport, time.perf_counter() - self._opened)


def _attach(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, collector: MetricsCollector,
            direction: str, protocol: str | None, transport: str, count_open: bool) -> None:
    network = collector.network
    add_sent = network.sent(protocol or OTHER, transport).add
    add_received = network.received(protocol or OTHER, transport).add
    connection = writer.transport.get_protocol()
    feed_data, write, writelines = reader.feed_data, writer.write, writer.writelines
    if type(writer).write is asyncio.StreamWriter.write:
        write = writer.transport.write  # what StreamWriter.write does; one Python frame less a write
    lost = connection.connection_lost

    def counted_feed_data(data: bytes) -> None:
        feed_data(data)
        add_received(len(data))

    def counted_write(data: Any) -> None:
        write(data)
        add_sent(len(data) if data.__class__ is bytes else _size(data))  # bytes first: once per write

    def counted_writelines(data: Any) -> None:
        chunks = list(data)
        writelines(chunks)
        add_sent(sum(_size(chunk) for chunk in chunks))

    if count_open:
        network.connection_opened(direction, transport)
    books = _Books(collector, direction, transport)

    def counted_connection_lost(exc: Exception | None) -> None:
        try:
            books.close()
        finally:
            lost(exc)

    reader.feed_data = counted_feed_data  # type: ignore[method-assign,assignment]
    writer.write = counted_write  # type: ignore[method-assign]
    writer.writelines = counted_writelines  # type: ignore[method-assign]
    connection.connection_lost = counted_connection_lost  # type: ignore[method-assign]


def _instrument(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, collector: MetricsCollector,
                direction: str, protocol: str | None, transport: str, count_open: bool) -> None:
    global _warned
    try:
        _attach(reader, writer, collector, direction, protocol, transport, count_open)
    except Exception as error:
        if not _warned:
            _warned = True
            logger.warning("p2p-telemetry: streams of type %s/%s left uninstrumented: %r",
                           type(reader).__name__, type(writer).__name__, error)


def instrument_streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                       collector: MetricsCollector, direction: str, protocol: str | None = None,
                       transport: str = _TCP) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Count an open connection's bytes from now on, and it as open until it closes; returns the same streams."""
    _instrument(reader, writer, collector, direction, protocol, transport, count_open=True)
    return reader, writer


async def open_connection(host: str | None = None, port: int | None = None, *, collector: MetricsCollector,
                          protocol: str | None = None, **kwargs: Any
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` that counts the attempt, times the set-up, maps a failure to ``error.type``."""
    async with collector.network.connecting("outbound", _TCP):
        reader, writer = await asyncio.open_connection(host, port, **kwargs)
    _instrument(reader, writer, collector, "outbound", protocol, _TCP, count_open=False)
    return reader, writer


async def start_server(client_connected_cb: ClientConnected, host: Any = None, port: int | None = None, *,
                       collector: MetricsCollector, protocol: str | None = None, **kwargs: Any) -> asyncio.Server:
    """``asyncio.start_server`` whose handler gets instrumented streams for every accepted connection."""
    network = collector.network

    async def guarded(result: Awaitable[None], writer: asyncio.StreamWriter) -> None:
        try:
            await result
        except asyncio.CancelledError:
            writer.close()  # nothing awaits a handler task; ending it quietly spares 3.11's done-callback error
        except BaseException:
            writer.close()
            raise

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        network.connection_attempted("inbound", _TCP)
        _instrument(reader, writer, collector, "inbound", protocol, _TCP, count_open=True)
        try:
            result = client_connected_cb(reader, writer)
        except BaseException:
            writer.close()
            raise
        return guarded(result, writer) if inspect.isawaitable(result) else result

    return await asyncio.start_server(accepted, host, port, **kwargs)
