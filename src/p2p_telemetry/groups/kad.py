"""Kademlia DHT group: requests this node answered, the queries it made, and its routing table."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from ..attributes import KAD_QUERY_OUTCOME, KAD_QUERY_OUTCOMES, KAD_REQUEST_TYPE, KAD_REQUEST_TYPES, OTHER
from ..bounds import choices, fold, seconds_problem
from ..cells import Counter, Family, counter_points, new_counter
from ..instruments import Points
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup
from .views import Views

__all__ = ["KadGroup", "SPECS", "KAD_INBOUND_REQUESTS", "KAD_QUERY_DURATION", "KAD_ROUTING_TABLE_PEERS",
           "QUERY_BUCKETS"]

#: Seconds: a query answered from a nearby peer takes milliseconds, a lookup across a large DHT up to minutes.
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

KAD_INBOUND_REQUESTS = MetricSpec(
    "p2p.kad.inbound.requests", Kind.COUNTER, "{request}", "Kademlia requests from peers this node handled, by type.",
    (KAD_REQUEST_TYPE,), "p2p_kad_inbound_requests_total")
KAD_QUERY_DURATION = MetricSpec(
    "p2p.kad.query.duration", Kind.HISTOGRAM, "s", "Duration of the Kademlia queries this node made, by outcome.",
    (KAD_REQUEST_TYPE, KAD_QUERY_OUTCOME), "p2p_kad_query_duration_seconds", QUERY_BUCKETS)
KAD_ROUTING_TABLE_PEERS = MetricSpec(
    "p2p.kad.routing_table.peers", Kind.UP_DOWN_COUNTER, "{peer}", "Peers in the Kademlia routing table.",
    (), "p2p_kad_routing_table_peers")
SPECS = (KAD_INBOUND_REQUESTS, KAD_QUERY_DURATION, KAD_ROUTING_TABLE_PEERS)

_TYPES = choices(*KAD_REQUEST_TYPES)
_OUTCOMES = choices(*KAD_QUERY_OUTCOMES)


class KadGroup(MetricGroup):
    """Counts inbound Kademlia requests, times queries, and reads the routing tables attached to it."""

    name: ClassVar[str] = "kad"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS
    title: ClassVar[str] = "Kademlia DHT (py-libp2p)"
    attribute_docs: ClassVar[dict[str, str]] = {
        KAD_REQUEST_TYPE: f"{', '.join(f'`{t}`' for t in KAD_REQUEST_TYPES)}. A query's type is that of the "
                          "requests it makes: `find_peer` and a routing table refresh are `find_node`, `provide` is "
                          "`add_provider`, `find_providers` is `get_providers`.",
        KAD_QUERY_OUTCOME: f"{', '.join(f'`{o}`' for o in KAD_QUERY_OUTCOMES)}: `not_found` when the query found "
                           "nothing (no value, no peer, no provider); `error` when it raised, was cancelled, or a "
                           "`provide` reached no peer.",
    }
    metric_notes: ClassVar[dict[str, str]] = {
        KAD_INBOUND_REQUESTS.name: "The same counts as py-libp2p's own `kad_inbound_*` counters (summed over their "
                                   "peer ids); their total is its `kad_inbound_total`.",
        KAD_QUERY_DURATION.name: "Recorded once when a query this node makes ends (a query made inside another is "
                                 "part of it): the histogram's count is the number of queries.",
        KAD_ROUTING_TABLE_PEERS.name: "Read at collection.",
    }

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        self._inbound: Family[Counter] = Family(KAD_INBOUND_REQUESTS.attributes,
                                                new_counter(context.rejections, KAD_INBOUND_REQUESTS.name))
        self._queries = self.histogram(KAD_QUERY_DURATION)
        self._query_counts: dict[tuple[str, str], int] = {}
        #: Callables returning the number of peers in one routing table.
        self.routing_tables: Views[Callable[[], int]] = Views("a Kademlia routing table")
        self.observe(KAD_INBOUND_REQUESTS, lambda: counter_points(self._inbound))
        self.observe(KAD_ROUTING_TABLE_PEERS, self._observe_routing_tables)

    def inbound(self, request_type: str) -> Counter:
        """A bound handle counting inbound requests of one type (unknown types count under ``other``)."""
        return self._inbound.get((fold(request_type, _TYPES),))

    def enable(self) -> None:
        """Start every request type's series at zero (a DHT was attached)."""
        for request_type in KAD_REQUEST_TYPES:
            self.inbound(request_type)

    def query(self, request_type: str, outcome: str, seconds: float) -> None:
        """Record one finished query: its type, its outcome (``ok``, ``not_found``, ``error``) and its duration."""
        problem = seconds_problem(seconds)
        if problem:
            self._rejections.reject(problem, KAD_QUERY_DURATION.name)
            return
        key = (fold(request_type, _TYPES, OTHER), fold(outcome, _OUTCOMES, "error"))
        try:
            self._queries.record(seconds, {KAD_REQUEST_TYPE: key[0], KAD_QUERY_OUTCOME: key[1]})
        except Exception:
            self._rejections.reject("error", KAD_QUERY_DURATION.name)
            return
        self._query_counts[key] = self._query_counts.get(key, 0) + 1

    def queries(self) -> dict[tuple[str, str], int]:
        """Queries so far, by type and outcome."""
        return dict(self._query_counts)

    def _observe_routing_tables(self) -> Points:
        if not self.routing_tables:
            return []
        sizes: list[int] = []
        self.routing_tables.read(lambda size: sizes.append(int(size())))
        return [({}, sum(sizes))]

    def snapshot(self) -> dict[str, int]:
        """Inbound requests by type."""
        return {cell.attributes[KAD_REQUEST_TYPE]: cell.total for cell in self._inbound}
