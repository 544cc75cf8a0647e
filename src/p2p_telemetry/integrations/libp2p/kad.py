"""A py-libp2p ``KadDHT``, instrumented: inbound requests by type, query durations and outcomes, routing table.

- Inbound requests: py-libp2p's own ``KadDhtEvent`` (sent once a request is handled, read on its
  way to the host's metric channel), so the counts equal its ``kad_inbound_*`` counters. An event
  without a type flag is a PING or a type py-libp2p does not know: whether py-libp2p answered it
  with a PING (noted as the stream's bytes sent are counted) tells which.
- Queries: ``put_value``, ``get_value``, ``find_peer``, ``provide``, ``find_providers`` and
  ``refresh_routing_table`` wrapped on the instance, each timed once when it ends (a query made
  inside another is part of it, not a second one). Outcome: ``ok``; ``not_found`` when it found
  nothing (no value, no peer, no provider); ``error`` when it raised, was cancelled, or a
  ``provide`` reached no peer.
- Routing table: ``get_routing_table_size()`` at collection.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...attributes import KAD_REQUEST_TYPES
from ...cells import Counter
from ...groups.kad import KadGroup
from .patches import Patch, attaching_init

if TYPE_CHECKING:
    from .host import HostInstrumentation
    from .streams import StreamBooks

__all__ = ["KadInstrumentation", "InboundCounters", "PATCHES", "attachable", "events", "sent_recorders", "QUERIES"]

_PING = 5  # Message.MessageType.PING in py-libp2p's kademlia.proto


def _found(result: Any) -> str:
    return "ok" if result else "not_found"


def _done(result: Any) -> str:
    return "ok"


def _stored(result: Any) -> str:
    return "ok" if result else "error"


#: method -> (p2p.kad.request.type, outcome of its result)
QUERIES: dict[str, tuple[str, Callable[[Any], str]]] = {
    "put_value": ("put_value", _done),
    "get_value": ("get_value", _found),
    "find_peer": ("find_node", _found),
    "provide": ("add_provider", _stored),
    "find_providers": ("get_providers", _found),
    "refresh_routing_table": ("find_node", _done),  # a refresh is a series of FIND_NODE lookups
}
_IN_QUERY: contextvars.ContextVar[bool] = contextvars.ContextVar("p2p_telemetry_kad_query", default=False)


class InboundCounters:
    """One handle per request type."""

    __slots__ = KAD_REQUEST_TYPES
    find_node: Counter
    get_value: Counter
    put_value: Counter
    get_providers: Counter
    add_provider: Counter
    ping: Counter
    other: Counter

    def __init__(self, group: KadGroup) -> None:
        group.enable()
        for name in KAD_REQUEST_TYPES:
            setattr(self, name, group.inbound(name))


def _inbound_request(books: StreamBooks, event: Any) -> None:
    owner = books.owner
    counters = owner.kad_inbound
    if counters is None:
        counters = owner.kad_inbound = InboundCounters(owner.collector.kad)
    # py-libp2p sets at most one of its flags; one attribute read each (no getattr call, no table)
    if event.find_node:
        counter = counters.find_node
    elif event.get_value:
        counter = counters.get_value
    elif event.put_value:
        counter = counters.put_value
    elif event.get_providers:
        counter = counters.get_providers
    elif event.add_provider:
        counter = counters.add_provider
    else:
        counter = counters.ping if books.kad_type == _PING else counters.other
    books.kad_type = -1
    counter.add(1)


def events() -> tuple[tuple[type, Callable[[StreamBooks, Any], None]], ...]:
    """This module's entries of the stream books' event table."""
    from libp2p.kad_dht.kad_dht import KadDhtEvent

    return ((KadDhtEvent, _inbound_request),)


def attachable() -> dict[type, Callable[[HostInstrumentation, Any], KadInstrumentation]]:
    """The protocol object class this module instruments."""
    from libp2p.kad_dht.kad_dht import KadDHT

    return {KadDHT: KadInstrumentation}


def _noting_ping_answers(books: StreamBooks, counter: Counter) -> Callable[[int], None]:
    """The bytes-sent recorder of a Kademlia stream: it also notes py-libp2p's answer to a PING, its type
    field alone (two bytes, after their length). Only an event without a type flag (a PING, or a type
    py-libp2p does not know, which it does not answer) reads the note, and every event clears it."""
    add = counter.add

    def sent(n: int) -> None:
        add(n)
        if n == 2:
            books.kad_type = _PING
    return sent


def sent_recorders() -> tuple[tuple[str, Callable[[StreamBooks, Counter], Callable[[int], None]]], ...]:
    """The bytes-sent recorder of this module's streams."""
    from libp2p.kad_dht.common import PROTOCOL_ID

    return ((str(PROTOCOL_ID), _noting_ping_answers),)


PATCHES = (Patch("libp2p.kad_dht.kad_dht:KadDHT", "__init__", attaching_init),)


class KadInstrumentation:
    """The query wrappers on one ``KadDHT`` and the view of its routing table; ``close()`` removes them."""

    def __init__(self, owner: HostInstrumentation, dht: Any) -> None:
        self.dht = dht
        group: KadGroup = owner.collector.kad
        group.enable()
        self._wrapped: dict[str, Any] = {}
        for method, (request_type, outcome) in QUERIES.items():
            original = getattr(dht, method, None)
            if original is not None:
                wrapper = _timed(original, request_type, outcome, group)
                setattr(dht, method, wrapper)
                self._wrapped[method] = wrapper
        self._remove_view = group.routing_tables.add(dht.get_routing_table_size)

    def close(self) -> None:
        """Take the wrappers off the DHT (those still ours) and stop reading its routing table."""
        for name, wrapper in self._wrapped.items():
            if self.dht.__dict__.get(name) is wrapper:
                del self.dht.__dict__[name]
        self._wrapped.clear()
        self._remove_view()


def _timed(original: Callable[..., Any], request_type: str, outcome: Callable[[Any], str],
           group: KadGroup) -> Callable[..., Any]:
    async def query(*args: Any, **kwargs: Any) -> Any:
        if _IN_QUERY.get():
            return await original(*args, **kwargs)
        token = _IN_QUERY.set(True)
        started = time.perf_counter()
        result_outcome = "error"
        try:
            result = await original(*args, **kwargs)
            result_outcome = outcome(result)
            return result
        finally:
            _IN_QUERY.reset(token)
            group.query(request_type, result_outcome, time.perf_counter() - started)
    return query
