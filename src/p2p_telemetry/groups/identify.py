"""Identify group: identify exchanges by event, and how many connected peers speak each of this node's protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from ..attributes import IDENTIFY_EVENT, IDENTIFY_EVENTS, PROTOCOL
from ..bounds import NameSet, choices, fold
from ..cells import Counter, Family, counter_points, new_counter
from ..instruments import Points
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup
from .views import Views

__all__ = ["IdentifyGroup", "SPECS", "IDENTIFY_EVENTS_METRIC", "PEER_PROTOCOLS", "ProtocolCounts"]

IDENTIFY_EVENTS_METRIC = MetricSpec(
    "p2p.identify.events", Kind.COUNTER, "{event}",
    "Identify exchanges: received, sent, push_received, push_sent, error.", (IDENTIFY_EVENT,),
    "p2p_identify_events_total")
PEER_PROTOCOLS = MetricSpec(
    "p2p.peer.protocols", Kind.UP_DOWN_COUNTER, "{peer}",
    "Connected peers that announced (through identify) support for a protocol registered on this node.",
    (PROTOCOL,), "p2p_peer_protocols")
SPECS = (IDENTIFY_EVENTS_METRIC, PEER_PROTOCOLS)

#: ``(protocol, peers)`` pairs for the protocols registered on one node, read at collection.
ProtocolCounts = Callable[[], Iterable[tuple[str, int]]]

_EVENTS = choices(*IDENTIFY_EVENTS)


class IdentifyGroup(MetricGroup):
    """Counts identify events; reads, per registered protocol, the connected peers that announced it."""

    name: ClassVar[str] = "identify"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS
    title: ClassVar[str] = "Identify (py-libp2p)"
    attribute_docs: ClassVar[dict[str, str]] = {
        IDENTIFY_EVENT: f"{', '.join(f'`{e}`' for e in IDENTIFY_EVENTS)}: an answer to this node's request applied, "
                        "this node answered a request, a push applied, a push sent; `error` when any of them failed "
                        "or a connected peer gave no usable answer.",
    }
    metric_notes: ClassVar[dict[str, str]] = {
        PEER_PROTOCOLS.name: "One point per protocol registered on this node (a py-libp2p host: the protocols it "
                             "has handlers for), each the number of connected peers that announced it: \"how many "
                             "of my peers speak gossipsub\". Read at collection.",
    }

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        self._protocols: NameSet = context.protocols
        self._events: Family[Counter] = Family(IDENTIFY_EVENTS_METRIC.attributes,
                                               new_counter(context.rejections, IDENTIFY_EVENTS_METRIC.name))
        #: Callables returning ``(protocol, peers)`` for the protocols registered on one node.
        self.peer_protocols: Views[ProtocolCounts] = Views("the protocols of a node's peers")
        self.observe(IDENTIFY_EVENTS_METRIC, lambda: counter_points(self._events))
        self.observe(PEER_PROTOCOLS, self._observe_peer_protocols)

    def event(self, name: str) -> Counter:
        """A bound handle counting identify events named ``name`` (one of ``IDENTIFY_EVENTS``)."""
        return self._events.get((fold(name, _EVENTS, "error"),))

    def enable(self) -> None:
        """Start every event's series at zero (a host was attached)."""
        for name in IDENTIFY_EVENTS:
            self.event(name)

    def _observe_peer_protocols(self) -> Points:
        if not self.peer_protocols:
            return []
        totals: dict[str, int] = {}

        def add(counts: ProtocolCounts) -> None:
            for protocol, peers in counts():
                name = self._protocols.lookup(protocol)
                totals[name] = totals.get(name, 0) + peers
        self.peer_protocols.read(add)
        return [({PROTOCOL: protocol}, peers) for protocol, peers in totals.items()]
