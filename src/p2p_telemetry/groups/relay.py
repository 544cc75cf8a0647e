"""Circuit relay v2 group: reservations and circuits, as a relay or as a client of one."""

from __future__ import annotations

from typing import ClassVar

from ..attributes import RELAY_EVENT, RELAY_EVENTS
from ..bounds import choices, fold
from ..cells import Counter, Family, counter_points, new_counter
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup

__all__ = ["RelayGroup", "SPECS", "RELAY_EVENTS_METRIC"]

RELAY_EVENTS_METRIC = MetricSpec(
    "p2p.relay.events", Kind.COUNTER, "{event}",
    "Circuit relay v2 events: reservations accepted and denied, circuits opened, closed and failed.",
    (RELAY_EVENT,), "p2p_relay_events_total")
SPECS = (RELAY_EVENTS_METRIC,)

_EVENTS = choices(*RELAY_EVENTS)


class RelayGroup(MetricGroup):
    """Counts relay events."""

    name: ClassVar[str] = "relay"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS
    title: ClassVar[str] = "Circuit relay v2 (py-libp2p)"
    attribute_docs: ClassVar[dict[str, str]] = {
        RELAY_EVENT: f"{', '.join(f'`{e}`' for e in RELAY_EVENTS)}. As a relay: reservations it accepted (renewals "
                     "included) or refused, circuits it opened, that ended, or that it could not open. As a client: "
                     "its reservations the relay accepted or refused, its relayed connections opened and closed, "
                     "its dials through a relay that failed.",
    }

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        self._events: Family[Counter] = Family(RELAY_EVENTS_METRIC.attributes,
                                               new_counter(context.rejections, RELAY_EVENTS_METRIC.name))
        self.observe(RELAY_EVENTS_METRIC, lambda: counter_points(self._events))

    def event(self, name: str) -> Counter:
        """A bound handle counting relay events named ``name`` (one of ``RELAY_EVENTS``)."""
        return self._events.get((fold(name, _EVENTS, "circuit_failed"),))

    def enable(self) -> None:
        """Start every event's series at zero (a relay protocol was attached)."""
        for name in RELAY_EVENTS:
            self.event(name)

    def snapshot(self) -> dict[str, int]:
        """Relay events so far, by name."""
        return {cell.attributes[RELAY_EVENT]: cell.total for cell in self._events}
