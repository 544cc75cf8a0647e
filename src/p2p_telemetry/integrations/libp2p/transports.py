"""Which transport a libp2p connection runs on: from the multiaddr dialed or listened on, else from the connection.

Every connection metric carries two values: ``network.transport`` (the layer-4 protocol of the
semantic conventions: ``tcp``, ``quic``, ``udp``...) and ``p2p.transport`` (the libp2p transport
stack: ``tcp``, ``quic``, ``ws``, ``wss``, ``webtransport``, ``webrtc``, ``circuit``, ``other``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ...attributes import OTHER

__all__ = ["Kinds", "of_multiaddr", "of_protocol_names", "of_connection", "carrier", "UNKNOWN_KINDS"]

Kinds = tuple[str, str]  # (network.transport, p2p.transport)
UNKNOWN_KINDS: Kinds = (OTHER, OTHER)

_QUIC = frozenset(("quic", "quic-v1"))
_WEBRTC = frozenset(("webrtc", "webrtc-direct"))
_CHAIN = ("muxed_conn", "secured_conn", "conn", "stream", "read_writer", "_conn", "raw_conn")
# Connection classes, by words in their module path (py-libp2p 0.8's transport packages).
_MODULE_KINDS = (("relay", ("tcp", "circuit")), ("webtransport", ("quic", "webtransport")),
                 ("webrtc", ("udp", "webrtc")), ("quic", ("quic", "quic")), ("websocket", ("tcp", "ws")),
                 ("io.trio", ("tcp", "tcp")), ("transport.tcp", ("tcp", "tcp")))


def of_protocol_names(names: Iterable[str]) -> Kinds:
    """The transports of a multiaddr given by its protocol names (``["ip4", "tcp", "ws"]``)."""
    found = set(names)
    if found & _QUIC:
        layer4 = "quic"
    elif "tcp" in found:
        layer4 = "tcp"
    elif "udp" in found:
        layer4 = "udp"
    elif "unix" in found:
        layer4 = "unix"
    else:
        layer4 = OTHER
    if "p2p-circuit" in found:
        return layer4, "circuit"
    if "webtransport" in found:
        return layer4, "webtransport"
    if found & _WEBRTC:
        return layer4, "webrtc"
    if found & _QUIC:
        return layer4, "quic"
    if "wss" in found or ("ws" in found and ("tls" in found or "sni" in found)):
        return layer4, "wss"
    if "ws" in found:
        return layer4, "ws"
    if layer4 == "tcp":
        return layer4, "tcp"
    return layer4, OTHER


def of_multiaddr(address: Any) -> Kinds:
    """The transports of a multiaddr (``/ip4/1.2.3.4/tcp/4001/ws``); unknown when it cannot be read."""
    try:
        return of_protocol_names(protocol.name for protocol in address.protocols())
    except Exception:
        return UNKNOWN_KINDS


def of_connection(conn: Any) -> Kinds:
    """The transports of an open connection: its addresses, its relayed flag, else the classes it is built of."""
    try:
        addresses = conn.get_transport_addresses()
    except Exception:
        addresses = None
    if addresses:
        kinds = of_multiaddr(addresses[0])
        if kinds != UNKNOWN_KINDS:
            return kinds
    try:
        if str(getattr(conn.get_connection_type(), "name", "")).upper() == "RELAYED":
            return "tcp", "circuit"
    except Exception:
        pass
    return _of_classes(conn)


def _parts(conn: Any) -> Iterator[Any]:
    """The objects a connection is built of (muxer, security session, raw connection, socket...), outermost first."""
    seen: set[int] = set()
    pending = [conn]
    while pending and len(seen) < 16:
        obj = pending.pop(0)
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        pending.extend(getattr(obj, name, None) for name in _CHAIN)


def _of_classes(conn: Any) -> Kinds:
    for obj in _parts(conn):
        module = type(obj).__module__
        for word, kinds in _MODULE_KINDS:
            if word in module:
                if kinds[1] == "ws" and getattr(obj, "_is_secure", False):
                    return "tcp", "wss"
                return kinds
    return UNKNOWN_KINDS


def carrier(conn: Any) -> Any:
    """The connection a relayed connection runs over (to the relay), found through the stream it is made of."""
    for obj in _parts(conn):
        if obj is not conn and getattr(obj, "swarm_conn", None) is not None:
            return obj.swarm_conn
    return None
