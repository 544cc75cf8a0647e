"""Protocol group: event counters per registered protocol and event name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar

from ..attributes import EVENT, PROTOCOL
from ..bounds import NameSet
from ..cells import Counter, Family, counter_points, new_counter
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup

__all__ = ["ProtocolGroup", "SPECS", "PROTOCOL_EVENTS"]

PROTOCOL_EVENTS = MetricSpec(
    "p2p.protocol.events", Kind.COUNTER, "{event}", "Protocol events, by protocol and event name.",
    (PROTOCOL, EVENT), "p2p_protocol_events_total")
SPECS = (PROTOCOL_EVENTS,)


class ProtocolGroup(MetricGroup):
    """Counts ``p2p.protocol.events``; unknown protocols and excess event names fold into ``other``."""

    name: ClassVar[str] = "protocols"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        self.registry = context.protocols
        self._max_event_names = context.options.max_event_names
        self._events: dict[str, NameSet] = {}
        self._family: Family[Counter] = Family(PROTOCOL_EVENTS.attributes,
                                               new_counter(context.rejections, PROTOCOL_EVENTS.name))
        self._cache: dict[tuple[str, str], Counter] = {}
        self.observe(PROTOCOL_EVENTS, lambda: counter_points(self._family))

    def register(self, *protocols: str) -> None:
        """Count these protocols under their own names (a libp2p node passes its protocol IDs).

        A protocol past the registry's capacity is refused with a warning and counts under ``other``.
        """
        for protocol in protocols:
            self.registry.register(protocol)

    def increment(self, protocol: str, event: str, n: int = 1) -> None:
        """Count ``n`` events named ``event`` of ``protocol``."""
        try:
            cell = self._cache[protocol, event]
        except Exception:
            cell = self.counter(protocol, event)
        cell.add(n)

    def record(self, protocol: str, events: Mapping[str, int]) -> None:
        """Count several events of one protocol: ``{event: n}`` (the seed's ``record_protocol_metrics``)."""
        try:
            items = list(events.items())
        except Exception:
            self._rejections.reject("type", "record_protocol_metrics")
            return
        for event, n in items:
            self.increment(protocol, event, n)

    def counter(self, protocol: str, event: str) -> Counter:
        """A bound handle whose ``add(n)`` counts events of ``protocol`` named ``event``."""
        name = self.registry.lookup(protocol)
        events = self._events.get(name)
        if events is None:
            events = self._events.setdefault(
                name, NameSet(f"event names of protocol {name!r}", admit_limit=self._max_event_names))
        event_name = events.admit(event)
        cell = self._family.get((name, event_name))
        if name == protocol and event_name == event:
            self._cache[name, event_name] = cell  # only accepted names: the cache stays bounded
        return cell

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Event totals by protocol and event name."""
        result: dict[str, dict[str, int]] = {}
        for cell in self._family:
            attributes = cell.attributes
            result.setdefault(attributes[PROTOCOL], {})[attributes[EVENT]] = cell.total
        return result

    def protocols(self) -> Iterator[str]:
        """The registered protocol names."""
        return iter(self.registry)
