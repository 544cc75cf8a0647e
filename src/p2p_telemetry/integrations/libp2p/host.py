"""``instrument_host(host, collector)``: one py-libp2p host, instrumented from outside, in small parts.

- ``connections.ConnectionBook``: attempts, set-up, failures, open connections, lifetimes, peers
  (the network notifee's ``connected``/``disconnected`` and wrappers on the dial and accept paths);
- ``streams.StreamBooks``: bytes per protocol, stream events, and py-libp2p's own metric events
  read on their way to the host's channel (never taken from it);
- the host's protocol objects, found by the stream handlers they register and by their
  constructors (hooked): ``_attach_table()`` maps each class (``Pubsub``, ``KadDHT``,
  ``CircuitV2Protocol``) to the part that instruments it; ``attach(obj)`` does it by hand for one
  made before ``instrument_host`` that registers no handler (a client-mode DHT);
- process-wide hooks (``patches``) for what no instance exposes: ping round trips, identify
  exchanges, relay clients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol

from ...bounds import SettingTypeError
from ...collector import MetricsCollector
from . import kad, patches, ping, protocols, pubsub
from .connections import ConnectionBook
from .streams import StreamBooks, event_table

__all__ = ["HostInstrumentation", "instrument_host", "Part"]

logger = logging.getLogger("p2p_telemetry")


class Part(Protocol):
    """The instrumentation of one protocol object of a host; ``close()`` lets go of it."""

    def close(self) -> None: ...


#: Hooks installed once per process at the first instrumented host.
PATCHES: tuple[patches.Patch, ...] = protocols.patches()
_HOST_WRAPPED = ("set_stream_handler",)


def _attach_table() -> dict[type, Callable[[HostInstrumentation, Any], Part]]:
    """``{protocol object class: part that instruments it}`` (py-libp2p imported on first use only)."""
    if not _ATTACH:
        _ATTACH.update(protocols.attachable())
    return _ATTACH


_ATTACH: dict[type, Callable[[HostInstrumentation, Any], Part]] = {}


class HostInstrumentation:
    """The handle ``instrument_host`` returns; ``close()`` stops counting this host's new events."""

    def __init__(self, host: Any, collector: MetricsCollector, on_disconnect: str, metric_events: bool) -> None:
        self.host = host
        self.collector = collector
        self.on_disconnect = on_disconnect
        self.metric_events = metric_events
        self.closed = False
        self.swarm = host.get_network()
        self.connections = ConnectionBook(self)
        self.parts: dict[int, Part] = {}
        self._views: list[Callable[[], None]] = []
        self.rpc_received: pubsub.RpcCounters | None = None  # bound at the first pubsub RPC
        self.kad_inbound: kad.InboundCounters | None = None  # bound at the first Kademlia request
        #: The recorders of py-libp2p's metric events read on this host's streams; emptied at ``close()``.
        self.event_recorders = dict(event_table())
        patches.install(PATCHES)
        patches.HOSTS[host] = self
        try:
            patches.PEERSTORES[host.get_peerstore()] = self
        except Exception:
            pass
        self._notifee = _notifee(self)
        self._register_protocols(ping.PING_PROTOCOL, *self._handler_ids())
        self._ping_pong = collector.protocols.counter(ping.PING_PROTOCOL, "pong")
        self._ping_failure = collector.protocols.counter(ping.PING_PROTOCOL, "ping_failure")
        self._wrap_host()
        self.connections.wrap(self.swarm)
        self.swarm.register_notifee(self._notifee)
        self._views.extend(protocols.attach_host(self))
        for handler in self._handlers():
            self._discover(handler)

    # -- protocols and their objects --------------------------------------------------------------

    def _handlers(self) -> list[Any]:
        try:
            return list(self.host.get_mux().handlers.values())
        except Exception:
            return []

    def _handler_ids(self) -> list[str]:
        try:
            return [str(p) for p in list(self.host.get_mux().handlers) if p is not None]
        except Exception:
            return []

    def _register_protocols(self, *protocol_ids: str) -> None:
        for protocol_id in protocol_ids:
            try:
                self.collector.protocols.register(protocol_id)
            except Exception:
                pass  # over the registry's bound: it counts under ``other``

    def _discover(self, handler: Any) -> None:
        obj = getattr(handler, "__self__", None)
        if obj is not None and not patches.constructing(obj):  # else its constructor attaches it when done
            self.attach(obj, quiet=True)

    def attach(self, obj: Any, *, quiet: bool = False) -> bool:
        """Instrument a protocol object of this host (a ``Pubsub``, a ``KadDHT``, a ``CircuitV2Protocol``).

        Objects are found by the stream handlers they register; call this for one that registers
        none, such as a client-mode ``KadDHT`` made before ``instrument_host``. Idempotent; False
        when the object is not of a kind this instrumentation knows.
        """
        if self.closed or id(obj) in self.parts:
            return id(obj) in self.parts
        table = _attach_table()
        for cls in type(obj).__mro__:
            make = table.get(cls)
            if make is not None:
                try:
                    self.parts[id(obj)] = make(self, obj)
                except Exception:
                    logger.warning("p2p-telemetry: a %s of a libp2p host was left uninstrumented",
                                   type(obj).__name__, exc_info=True)
                    return False
                return True
        if not quiet:
            logger.warning("p2p-telemetry: cannot instrument a %s", type(obj).__name__)
        return False

    def _wrap_host(self) -> None:
        set_stream_handler = self.host.set_stream_handler

        def counted_set_stream_handler(protocol_id: Any, handler: Any, *args: Any, **kwargs: Any) -> Any:
            result = set_stream_handler(protocol_id, handler, *args, **kwargs)
            if not self.closed:
                self._register_protocols(str(protocol_id))
                self._discover(handler)
            return result

        self.host.set_stream_handler = counted_set_stream_handler

    # -- streams ----------------------------------------------------------------------------------

    def stream_opened(self, stream: Any) -> None:
        """Give a new stream its books: bytes counted under its protocol once chosen; its metric events read."""
        conn = getattr(stream, "swarm_conn", None)
        transport = self.connections.kinds_of(conn)[0] if conn is not None else "other"
        books = StreamBooks(self, transport, getattr(stream, "metric_send_channel", None))
        read, write, set_protocol = stream.read, stream.write, stream.set_protocol
        protocols = self.collector.protocols

        async def counted_read(n: int | None = None) -> bytes:
            data: bytes = await read(n)
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
                books.rebind(name)
                if books.protocol is None:
                    protocols.increment(name, "stream_opened")
                books.protocol = name
            except Exception:
                pass

        stream.read, stream.write, stream.set_protocol = counted_read, counted_write, counted_set_protocol
        stream._p2p_telemetry = books
        if self.metric_events:
            stream.metric_send_channel = books

    def stream_closed(self, stream: Any) -> None:
        """Count ``stream_closed`` for a stream whose protocol was chosen (once)."""
        books = getattr(stream, "_p2p_telemetry", None)
        if books is not None and books.protocol is not None:
            self.collector.protocols.increment(books.protocol, "stream_closed")
            books.protocol = None

    # -- ping -------------------------------------------------------------------------------------

    def ping_measured(self, stream: Any, seconds: float | None, *, latency: bool) -> None:
        """One ping round trip on ``stream`` (``seconds`` None: it failed); ``latency`` feeds p2p.peer.latency."""
        if seconds is None:
            self._ping_failure.add(1)
            return
        self._ping_pong.add(1)
        if latency:
            peer_id = stream.muxed_conn.peer_id
            self.collector.peers.update(str(peer_id), latency=seconds)

    # -- tear-down --------------------------------------------------------------------------------

    def close(self) -> None:
        """Unregister the notifee, unwrap the host and its protocol objects (idempotent).

        Connections still open stay counted as open; streams already open keep handing py-libp2p's
        events to the host's channel.
        """
        if self.closed:
            return
        self.closed = True
        self.event_recorders.clear()
        try:
            self.swarm.remove_notifee(self._notifee)
        except Exception:
            pass
        _unwrap(self.host, _HOST_WRAPPED)
        _unwrap(self.swarm, ConnectionBook.WRAPPED)
        for part in self.parts.values():
            try:
                part.close()
            except Exception:
                logger.debug("p2p-telemetry: closing a part of a host's instrumentation failed", exc_info=True)
        self.parts.clear()
        for remove in self._views:
            remove()
        self._views.clear()
        for registry, key in ((patches.HOSTS, self.host), (patches.PEERSTORES, self._peerstore())):
            try:
                if registry.get(key) is self:
                    del registry[key]
            except Exception:
                pass

    def _peerstore(self) -> Any:
        try:
            return self.host.get_peerstore()
        except Exception:
            return None


def _unwrap(obj: Any, names: tuple[str, ...]) -> None:
    for name in names:
        try:
            obj.__dict__.pop(name, None)
        except Exception:
            pass


def _notifee(owner: HostInstrumentation) -> Any:
    """A network notifee (``libp2p.abc.INotifee``) that hands each event to ``owner``, never raising."""
    from libp2p.abc import INotifee

    def guard(handler: Callable[[Any], None], arg: Any) -> None:
        try:
            handler(arg)
        except Exception:
            logger.debug("p2p-telemetry: a libp2p event was not counted", exc_info=True)

    class Notifee(INotifee):
        async def opened_stream(self, network: Any, stream: Any) -> None:
            guard(owner.stream_opened, stream)

        async def closed_stream(self, network: Any, stream: Any) -> None:
            guard(owner.stream_closed, stream)

        async def connected(self, network: Any, conn: Any) -> None:
            guard(owner.connections.connected, conn)

        async def disconnected(self, network: Any, conn: Any) -> None:
            guard(owner.connections.disconnected, conn)

        async def listen(self, network: Any, multiaddr: Any) -> None:
            pass

        async def listen_close(self, network: Any, multiaddr: Any) -> None:
            pass

    return Notifee()


def instrument_host(host: Any, collector: MetricsCollector, *,
                    on_disconnect: Literal["remove", "unhealthy"] = "remove",
                    metric_events: bool = True) -> HostInstrumentation:
    """Count a ``libp2p.new_host()`` host's connections, streams, bytes, peers and protocols.

    ``on_disconnect``: what happens to a peer in the peer table when its last connection closes
    (``"remove"``, or ``"unhealthy"`` to keep it for a health checker). ``metric_events=False``
    leaves the streams' metric channels alone (pubsub RPC parts and Kademlia inbound requests are
    then not reported). Returns a handle with ``close()`` and ``attach(obj)``.
    """
    if on_disconnect not in ("remove", "unhealthy"):
        raise ValueError(f"on_disconnect must be 'remove' or 'unhealthy', got {on_disconnect!r}")
    if metric_events.__class__ is not bool:
        raise SettingTypeError(f"metric_events must be a bool, got {metric_events!r}")
    return HostInstrumentation(host, collector, on_disconnect, metric_events)
