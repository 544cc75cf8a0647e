"""py-libp2p hosts, instrumented from outside: ``handle = instrument_host(host, collector)``; ``handle.close()``.

What is counted, and from where:

- Connections, from a network notifiee (``libp2p.abc.INotifee``): ``connected`` counts the
  connection as open (direction from the connection, transport from its address: ``tcp``,
  ``quic``, ...), ``disconnected`` closes it and records its lifetime. An inbound connection also
  counts as one attempt. Outbound attempts, their set-up time and failures (``error.type`` mapped
  from py-libp2p's exception classes) come from the network's ``dial_peer``, wrapped on the
  instance; a dial that reuses an existing connection is not an attempt. Attempts and failures
  count under ``network.transport=tcp`` (the transport a dial ends on is known only once it
  succeeds; its set-up time is recorded under that transport).
- Streams: each stream's ``read``/``write`` count bytes in ``p2p.network.io`` under the stream's
  protocol ID (bytes of the multistream negotiation, before a protocol is chosen, count under
  ``other``); a stream whose protocol is chosen counts ``stream_opened`` and, when it closes,
  ``stream_closed`` in ``p2p.protocol.events``.
- Protocols: the host's protocol IDs (its handlers, now and as handlers are added later), and
  the protocol IDs this node opens streams on, are registered as protocols. An inbound stream's
  protocol is always one of the node's handlers, so a remote peer cannot add protocol names.
- Peers: a connected peer enters the peer table (healthy if new; a known peer keeps its
  health). When its last connection closes, the ``on_disconnect`` policy applies: ``"remove"``
  (default) takes it out of the table, ``"unhealthy"`` keeps it as unhealthy with the reason
  ``disconnected`` (a health checker may bring it back). No peer id ever becomes an attribute.

The ``enable_metrics=True`` path: such a host pushes py-libp2p's own metric events into a
bounded channel, and its swarm blocks once 100 are unread. With ``metric_events=True`` (default)
the handle consumes that channel in a trio system task started at the first network event:
``SwarmEvent.conn_incoming_error`` counts an inbound failure (``error.type=other``; the event says
no more), and ``PingEvent`` counts ``pong``/``ping_failure`` events of ``/ipfs/ping/1.0.0``. Dial
attempts and errors in that channel are ignored, as the wrapped ``dial_peer`` counts them
already (py-libp2p's event also fires for a reused connection). Ping RTTs there are not fed to
``p2p.peer.latency``: the health checker's ping probe does that, and would be counted twice.
A node that consumes the channel itself (``libp2p.metrics.Metrics``) passes ``metric_events=False``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from ..catalogue import OTHER, TRANSPORTS
from ..collector import MetricsCollector
from ..model import HealthStatus

__all__ = ["instrument_host", "HostInstrumentation", "PING_PROTOCOL"]

logger = logging.getLogger("p2p_telemetry")

PING_PROTOCOL = "/ipfs/ping/1.0.0"
_QUIC = ("quic", "quic-v1")


def _transport(conn: Any) -> str:
    try:
        names = [p.name for p in conn.get_transport_addresses()[0].protocols()]
    except Exception:
        return OTHER
    if any(name in _QUIC for name in names):
        return "quic"
    for name in ("tcp", "udp", "unix"):
        if name in names and name in TRANSPORTS:
            return name
    return OTHER


def _direction(conn: Any) -> str:
    direction = getattr(conn, "direction", None)
    name = str(getattr(direction, "name", direction)).lower()
    return name if name in ("inbound", "outbound") else "unknown"


def _peer_id(conn: Any) -> str | None:
    try:
        return str(conn.muxed_conn.peer_id)
    except Exception:
        return None


class _StreamBooks:
    """One stream's byte handles, rebound when its protocol is chosen."""

    __slots__ = ("sent", "received", "protocol")

    def __init__(self, collector: MetricsCollector, transport: str) -> None:
        self.sent = collector.network.sent(OTHER, transport).add
        self.received = collector.network.received(OTHER, transport).add
        self.protocol: str | None = None


class HostInstrumentation:
    """The handle ``instrument_host`` returns; ``close()`` stops counting this host's new events."""

    def __init__(self, host: Any, collector: MetricsCollector, on_disconnect: str, metric_events: bool) -> None:
        from libp2p.abc import INotifee

        self.host = host
        self.collector = collector
        self.on_disconnect = on_disconnect
        self.closed = False
        self._network = host.get_network()
        self._opened: dict[int, tuple[float, str, str]] = {}  # live connections only
        self._metric_channel = host.get_metrics_recv_channel() if metric_events else None
        self._consumer_started = False
        instrumentation = self

        class Notifee(INotifee):
            async def opened_stream(self, network: Any, stream: Any) -> None:
                instrumentation._guard(instrumentation._stream_opened, stream)

            async def closed_stream(self, network: Any, stream: Any) -> None:
                instrumentation._guard(instrumentation._stream_closed, stream)

            async def connected(self, network: Any, conn: Any) -> None:
                instrumentation._guard(instrumentation._connected, conn)

            async def disconnected(self, network: Any, conn: Any) -> None:
                instrumentation._guard(instrumentation._disconnected, conn)

            async def listen(self, network: Any, multiaddr: Any) -> None:
                instrumentation._guard(instrumentation._start_consumer)

            async def listen_close(self, network: Any, multiaddr: Any) -> None:
                pass

        self._notifee = Notifee()
        self._register_protocols(*self._handler_ids())
        self._wrap_host()
        self._network.register_notifee(self._notifee)

    # -- set-up and tear-down ---------------------------------------------------------------------

    def _handler_ids(self) -> list[str]:
        try:
            return [str(p) for p in self.host.get_mux().handlers if p is not None]
        except Exception:
            return []

    def _register_protocols(self, *protocol_ids: str) -> None:
        for protocol_id in protocol_ids:
            try:
                self.collector.protocols.register(protocol_id)
            except Exception:
                pass  # over the registry's bound: it counts under ``other``

    def _wrap_host(self) -> None:
        set_stream_handler = self.host.set_stream_handler
        dial_peer = self._network.dial_peer
        network, collector = self._network, self.collector

        def counted_set_stream_handler(protocol_id: Any, *args: Any, **kwargs: Any) -> Any:
            result = set_stream_handler(protocol_id, *args, **kwargs)
            if not self.closed:
                self._register_protocols(str(protocol_id))
            return result

        async def counted_dial_peer(peer_id: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                reused = self.closed or any(not c.is_closed for c in network.get_connections(peer_id))
            except Exception:
                reused = True
            if reused:
                return await dial_peer(peer_id, *args, **kwargs)
            started = time.perf_counter()
            collector.network.connection_attempted("outbound", "tcp")
            try:
                connections = await dial_peer(peer_id, *args, **kwargs)
            except BaseException as error:
                collector.network.connection_failed(error, "outbound", "tcp")
                raise
            transport = _transport(connections[0]) if connections else "tcp"
            collector.network.connection_setup(time.perf_counter() - started, "outbound", transport)
            return connections

        self.host.set_stream_handler = counted_set_stream_handler
        self._network.dial_peer = counted_dial_peer

    def close(self) -> None:
        """Unregister the notifee and unwrap the host (idempotent); connections still open stay counted as open."""
        if self.closed:
            return
        self.closed = True
        try:
            self._network.remove_notifee(self._notifee)
        except Exception:
            pass
        for owner, name in ((self.host, "set_stream_handler"), (self._network, "dial_peer")):
            owner.__dict__.pop(name, None)

    # -- events -----------------------------------------------------------------------------------

    def _guard(self, handler: Any, *args: Any) -> None:
        try:
            handler(*args)
        except Exception:
            logger.debug("p2p-telemetry: a libp2p event was not counted", exc_info=True)

    def _connected(self, conn: Any) -> None:
        self._start_consumer()
        direction, transport = _direction(conn), _transport(conn)
        network = self.collector.network
        if direction == "inbound":
            network.connection_attempted(direction, transport)
        network.connection_opened(direction, transport)
        self._opened[id(conn)] = (time.perf_counter(), direction, transport)
        peer_id = _peer_id(conn)
        if peer_id is not None:
            self.collector.peers.update(peer_id)

    def _disconnected(self, conn: Any) -> None:
        entry = self._opened.pop(id(conn), None)
        if entry is None:
            return  # opened before instrumentation
        started, direction, transport = entry
        self.collector.network.connection_closed(direction, transport, time.perf_counter() - started)
        peer_id = _peer_id(conn)
        if peer_id is None or self._still_connected(conn):
            return
        if self.on_disconnect == "remove":
            self.collector.peers.remove(peer_id)
        else:
            self.collector.peers.update(peer_id, health=HealthStatus.UNHEALTHY, reason="disconnected")

    def _still_connected(self, conn: Any) -> bool:
        try:
            return any(c is not conn and not c.is_closed for c in self._network.get_connections(conn.muxed_conn.peer_id))
        except Exception:
            return False

    def _stream_opened(self, stream: Any) -> None:
        conn = getattr(stream, "swarm_conn", None)
        transport = _transport(conn) if conn is not None else OTHER
        books = _StreamBooks(self.collector, transport)
        read, write, set_protocol = stream.read, stream.write, stream.set_protocol
        collector = self.collector

        async def counted_read(n: int | None = None) -> bytes:
            data = await read(n)
            books.received(len(data))
            return data

        async def counted_write(data: bytes) -> None:
            await write(data)
            books.sent(len(data))

        def counted_set_protocol(protocol_id: Any) -> None:
            set_protocol(protocol_id)
            try:
                name = str(protocol_id)
                self._register_protocols(name)
                books.sent = collector.network.sent(name, transport).add
                books.received = collector.network.received(name, transport).add
                if books.protocol is None:
                    collector.protocols.increment(name, "stream_opened")
                books.protocol = name
            except Exception:
                pass

        stream.read, stream.write, stream.set_protocol = counted_read, counted_write, counted_set_protocol
        stream._p2p_telemetry = books

    def _stream_closed(self, stream: Any) -> None:
        books = getattr(stream, "_p2p_telemetry", None)
        if books is not None and books.protocol is not None:
            self.collector.protocols.increment(books.protocol, "stream_closed")
            books.protocol = None  # count the close once

    # -- the enable_metrics path ------------------------------------------------------------------

    def _start_consumer(self) -> None:
        if self._metric_channel is None or self._consumer_started or self.closed:
            return
        import trio

        self._consumer_started = True
        trio.lowlevel.spawn_system_task(self._consume, name="p2p-telemetry-libp2p-metrics")

    async def _consume(self) -> None:
        from libp2p.host.ping import PingEvent
        from libp2p.metrics.swarm import SwarmEvent

        try:
            async for event in self._metric_channel:  # type: ignore[union-attr]
                if self.closed:
                    continue  # keep draining: the swarm blocks on a full channel
                if isinstance(event, SwarmEvent) and event.conn_incoming_error:
                    self.collector.network.connection_failed(OTHER, "inbound", "tcp")
                elif isinstance(event, PingEvent):
                    failed = event.failure_error is not None
                    self.collector.protocols.increment(PING_PROTOCOL, "ping_failure" if failed else "pong",
                                                       1 if failed else len(event.rtts or ()))
        except Exception:
            logger.debug("p2p-telemetry: stopped reading libp2p metric events", exc_info=True)


def instrument_host(host: Any, collector: MetricsCollector, *,
                    on_disconnect: Literal["remove", "unhealthy"] = "remove",
                    metric_events: bool = True) -> HostInstrumentation:
    """Count a ``libp2p.new_host()`` host's connections, streams, bytes and peers; returns a handle with ``close()``."""
    if on_disconnect not in ("remove", "unhealthy"):
        raise ValueError(f"on_disconnect must be 'remove' or 'unhealthy', got {on_disconnect!r}")
    return HostInstrumentation(host, collector, on_disconnect, metric_events)
