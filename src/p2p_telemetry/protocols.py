"""Protocol group: event counters per registered protocol and event name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import catalogue as c
from .bounds import NameSet, Rejections
from .cells import Counter, Family, counter_points
from .instruments import InstrumentHub, Points

__all__ = ["ProtocolGroup"]


class ProtocolGroup:
    """Counts ``p2p.protocol.events``; unknown protocols and excess event names fold into ``other``."""

    def __init__(self, hub: InstrumentHub, rejections: Rejections, registry: NameSet,
                 max_event_names: int) -> None:
        self.registry = registry
        self._max_event_names = max_event_names
        self._rejections = rejections
        self._events: dict[str, NameSet] = {}
        self._family = Family(c.PROTOCOL_EVENTS.attributes,
                              lambda attrs: Counter(attrs, rejections, "p2p.protocol.events"))
        self._cache: dict[tuple, Counter] = {}
        hub.observe(c.PROTOCOL_EVENTS, self, self._observe)

    def register(self, *protocols: str) -> None:
        """Count these protocols under their own names (a libp2p node passes its protocol IDs)."""
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
                name, NameSet(f"event names of protocol {name!r}", limit=self._max_event_names))
        event_name = events.admit(event)
        cell: Counter = self._family.get((name, event_name))  # type: ignore[assignment]
        if name == protocol and event_name == event and type(protocol) is str and type(event) is str:
            self._cache[protocol, event] = cell  # only accepted names: the cache stays bounded
        return cell

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Event totals by protocol and event name."""
        result: dict[str, dict[str, int]] = {}
        for cell in self._family:
            attrs = cell.attributes  # type: ignore[attr-defined]
            result.setdefault(attrs[c.PROTOCOL], {})[attrs[c.EVENT]] = cell.total  # type: ignore[attr-defined]
        return result

    def protocols(self) -> Iterable[str]:
        """The registered protocol names."""
        return iter(self.registry)

    def _observe(self) -> Points:
        return counter_points(self._family)
