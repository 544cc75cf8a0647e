"""Connections of one host: attempts, set-up times, failures, open connections and their lifetimes, peers.

Where each figure comes from:

- An outbound attempt is one ``dial_peer`` that dialed an address (one that reuses a connection,
  waits for another task's dial of the same peer, or has no address to dial is not an attempt).
  Its transport is that of the address py-libp2p dialed: the one that succeeded, or for a failure
  the last one tried (``_dial_addr_single_attempt`` is wrapped to see them). Its set-up time runs
  from the call to the usable connection.
- An inbound attempt is one connection a listener accepted (``_handle_inbound_connection`` is
  wrapped); its transport is the listener's, its set-up time runs from the accept to the
  usable connection, and it fails when no connection comes of it.
- The network notifee's ``connected`` opens a connection and ``disconnected`` closes it. It runs
  inside the task that dialed or accepted (py-libp2p awaits its notifees there), so a context
  variable tells it which address was dialed or which listener accepted: the attempt, the set-up
  time, the open connection and its lifetime carry the same transports. A connection that came
  some other way (a relayed one, say) counts its attempt there, with the transports read from
  the connection.
"""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any

from ...attributes import OTHER
from ...groups.network import error_type
from ...model import HealthStatus
from . import transports
from .transports import Kinds

if TYPE_CHECKING:
    from .host import HostInstrumentation

__all__ = ["ConnectionBook"]


class _Dial:
    __slots__ = ("last", "kinds")

    def __init__(self) -> None:
        self.last: Any = None  # the last address tried
        self.kinds: Kinds | None = None  # the transports of the connection this dial opened


class _Accept:
    __slots__ = ("kinds", "started", "connected", "error")

    def __init__(self, kinds: Kinds) -> None:
        self.kinds = kinds
        self.started = time.perf_counter()
        self.connected = False
        self.error: BaseException | None = None


_DIAL: contextvars.ContextVar[_Dial | None] = contextvars.ContextVar("p2p_telemetry_dial", default=None)
_DIALED: contextvars.ContextVar[Any] = contextvars.ContextVar("p2p_telemetry_dialed_address", default=None)
_ACCEPT: contextvars.ContextVar[_Accept | None] = contextvars.ContextVar("p2p_telemetry_accept", default=None)


def _direction(conn: Any) -> str:
    direction = getattr(conn, "direction", None)
    name = str(getattr(direction, "name", direction)).lower()
    return name if name in ("inbound", "outbound") else "unknown"


def _peer_id(conn: Any) -> Any:
    try:
        return conn.muxed_conn.peer_id
    except Exception:
        return None


def failure_class(error: BaseException) -> str:
    """The ``error.type`` of a failed dial or accept: py-libp2p wraps the socket's error a few levels deep
    (``SwarmDialAllFailedError`` from a ``MultiError`` of ``SwarmException``s from ``OpenConnectionError``...),
    so the first error down the chain with a class more telling than ``other`` names it."""
    pending: list[Any] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        name = error_type(current)
        if name != OTHER:
            return name
        pending.extend((current.__cause__, current.__context__, *getattr(current, "errors", ()),
                        *getattr(current, "exceptions", ())))
    return OTHER


class ConnectionBook:
    """The connection figures of one host, fed by its notifee and by wrappers on its network."""

    WRAPPED = ("dial_peer", "_dial_addr_single_attempt", "_handle_inbound_connection", "upgrade_inbound_raw_conn")

    def __init__(self, owner: HostInstrumentation) -> None:
        self.owner = owner
        self.network = owner.collector.network
        self.relay = owner.collector.relay
        #: Live connections only: id(conn) -> (opened at, direction, kinds).
        self.opened: dict[int, tuple[float, str, Kinds]] = {}
        #: Connected peers: peer id -> open connections (the peer-id objects, for reading the peerstore).
        self.peers: dict[Any, int] = {}

    # -- wrappers on the network ------------------------------------------------------------------

    def wrap(self, swarm: Any) -> None:
        """Wrap the network's dial and accept paths on the instance."""
        owner, network = self.owner, self.network
        dial_peer = swarm.dial_peer
        single_attempt = getattr(swarm, "_dial_addr_single_attempt", None)
        handle_inbound = getattr(swarm, "_handle_inbound_connection", None)
        upgrade_inbound = getattr(swarm, "upgrade_inbound_raw_conn", None)

        async def counted_dial_peer(peer_id: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                reused = owner.closed or any(not c.is_closed for c in swarm.get_connections(peer_id))
            except Exception:
                reused = True
            if reused:
                return await dial_peer(peer_id, *args, **kwargs)
            dial = _Dial()
            token = _DIAL.set(dial)
            started = time.perf_counter()
            try:
                connections = await dial_peer(peer_id, *args, **kwargs)
            except BaseException as error:
                if dial.last is not None:  # else no address was dialed: it waited for another dial, or had none
                    kinds = transports.of_multiaddr(dial.last)
                    network.connection_attempted("outbound", *kinds)
                    network.connection_failed(failure_class(error), "outbound", *kinds)
                raise
            finally:
                _DIAL.reset(token)
            if dial.kinds is None and dial.last is None:
                return connections  # it waited for another task's dial of the same peer: not an attempt
            kinds = dial.kinds or (transports.of_connection(connections[0]) if connections else
                                   transports.UNKNOWN_KINDS)
            network.connection_attempted("outbound", *kinds)
            network.connection_setup(time.perf_counter() - started, "outbound", *kinds)
            return connections

        async def tracked_single_attempt(addr: Any, *args: Any, **kwargs: Any) -> Any:
            dial = _DIAL.get()
            if dial is not None:
                dial.last = addr
            token = _DIALED.set(addr)
            try:
                assert single_attempt is not None
                return await single_attempt(addr, *args, **kwargs)
            finally:
                _DIALED.reset(token)

        async def counted_inbound(read_write_closer: Any, listen_addr: Any, *args: Any, **kwargs: Any) -> Any:
            assert handle_inbound is not None
            if owner.closed:
                return await handle_inbound(read_write_closer, listen_addr, *args, **kwargs)
            accept = _Accept(transports.of_multiaddr(listen_addr))
            network.connection_attempted("inbound", *accept.kinds)
            token = _ACCEPT.set(accept)
            try:
                return await handle_inbound(read_write_closer, listen_addr, *args, **kwargs)
            except BaseException as error:
                accept.error = accept.error or error
                raise
            finally:
                _ACCEPT.reset(token)
                if not accept.connected:
                    failure = failure_class(accept.error) if accept.error is not None else OTHER
                    network.connection_failed(failure, "inbound", *accept.kinds)

        async def noted_upgrade(*args: Any, **kwargs: Any) -> Any:
            assert upgrade_inbound is not None
            try:
                return await upgrade_inbound(*args, **kwargs)
            except BaseException as error:
                accept = _ACCEPT.get()
                if accept is not None:
                    accept.error = error
                raise

        swarm.dial_peer = counted_dial_peer
        if single_attempt is not None:
            swarm._dial_addr_single_attempt = tracked_single_attempt
        if handle_inbound is not None:
            swarm._handle_inbound_connection = counted_inbound
        if upgrade_inbound is not None:
            swarm.upgrade_inbound_raw_conn = noted_upgrade

    # -- notifee events ---------------------------------------------------------------------------

    def connected(self, conn: Any) -> None:
        """A connection is open: count it, with the transports of its dial or accept."""
        direction = _direction(conn)
        network = self.network
        dial, dialed, accept = _DIAL.get(), _DIALED.get(), _ACCEPT.get()
        if direction != "inbound" or (accept is not None and accept.connected):
            accept = None  # an accept's context is that of its own first connection only
        known = (transports.of_multiaddr(dialed) if direction == "outbound" and dialed is not None
                 else accept.kinds if accept is not None else transports.UNKNOWN_KINDS)
        kinds = known if known != transports.UNKNOWN_KINDS else transports.of_connection(conn)
        if kinds[1] == "circuit" and kinds[0] == OTHER:
            kinds = (self._relay_layer4(conn), "circuit")
        if direction == "outbound" and dial is not None:
            dial.kinds = kinds  # the dial counts the attempt and its set-up time
        elif accept is not None:
            accept.connected = True  # counted its attempt at the accept
            network.connection_setup(time.perf_counter() - accept.started, direction, *kinds)
        else:
            network.connection_attempted(direction, *kinds)  # a connection that came another way
        network.connection_opened(direction, *kinds)
        self.opened[id(conn)] = (time.perf_counter(), direction, kinds)
        if kinds[1] == "circuit":
            self.relay.event("circuit_opened").add(1)
        peer_id = _peer_id(conn)
        if peer_id is not None:
            self.peers[peer_id] = self.peers.get(peer_id, 0) + 1
            self.owner.collector.peers.update(str(peer_id))

    def disconnected(self, conn: Any) -> None:
        """A connection closed: record its lifetime; apply the ``on_disconnect`` policy to its last one."""
        entry = self.opened.pop(id(conn), None)
        if entry is None:
            return  # opened before instrumentation
        started, direction, kinds = entry
        self.network.connection_closed(direction, kinds[0], time.perf_counter() - started, kinds[1])
        if kinds[1] == "circuit":
            self.relay.event("circuit_closed").add(1)
        peer_id = _peer_id(conn)
        if peer_id is None:
            return
        left = self.peers.get(peer_id, 1) - 1
        if left > 0:
            self.peers[peer_id] = left
            return
        self.peers.pop(peer_id, None)
        if self.owner.on_disconnect == "remove":
            self.owner.collector.peers.remove(str(peer_id))
        else:
            self.owner.collector.peers.update(str(peer_id), health=HealthStatus.UNHEALTHY, reason="disconnected")

    def _relay_layer4(self, conn: Any) -> str:
        """The layer-4 transport of a relayed connection: that of this node's connection to the relay."""
        relay_conn = transports.carrier(conn)
        return OTHER if relay_conn is None else self.kinds_of(relay_conn)[0]

    def kinds_of(self, conn: Any) -> Kinds:
        """The transports recorded for an open connection (read from it when it was opened before instrumentation)."""
        entry = self.opened.get(id(conn))
        return entry[2] if entry is not None else transports.of_connection(conn)
