"""Peer group: the peer table, peer counts by health, latency samples, and the worst reputations."""

from __future__ import annotations

import heapq
import logging
import threading
from typing import Any, ClassVar

from .. import _sdk_bridge
from .._fork import after_fork_in_child
from ..attributes import HEALTH, HEALTH_STATES, PEER_ID, PEER_RANK
from ..bounds import MAX_PEER_ID_LENGTH, ratio_problem, seconds_problem
from ..histograms import BatchedHistogram
from ..instruments import Point, Points
from ..metric import Kind, MetricSpec
from ..model import HealthStatus, PeerStats
from .base import GroupContext, MetricGroup

__all__ = ["PeerGroup", "SPECS", "PEERS", "PEER_LATENCY", "PEER_REPUTATION", "LATENCY_BUCKETS"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

PEERS = MetricSpec(
    "p2p.peers", Kind.UP_DOWN_COUNTER, "{peer}", "Peers in the peer table, by health.",
    (HEALTH,), "p2p_peers")
PEER_LATENCY = MetricSpec(
    "p2p.peer.latency", Kind.HISTOGRAM, "s", "Round-trip latency samples of peers (pings, requests).",
    (HEALTH,), "p2p_peer_latency_seconds", LATENCY_BUCKETS)
PEER_REPUTATION = MetricSpec(
    "p2p.peer.reputation", Kind.GAUGE, "1", "Reputation (0..1) of the peers with the lowest reputation.",
    (PEER_ID,), "p2p_peer_reputation")
SPECS = (PEERS, PEER_LATENCY, PEER_REPUTATION)

logger = logging.getLogger("p2p_telemetry")

_HEALTH_INDEX: dict[Any, int] = {name: i for i, name in enumerate(HEALTH_STATES)}
_HEALTH_STATUS = tuple(HealthStatus(name) for name in HEALTH_STATES)
_HEALTH_ATTRIBUTES = tuple({HEALTH: name} for name in HEALTH_STATES)
_MAX_REASON_LENGTH = 256


class _Peer:
    __slots__ = ("health", "latency", "reputation", "reason")

    def __init__(self, health: int) -> None:
        self.health = health
        self.latency: float | None = None
        self.reputation: float | None = None
        self.reason: str | None = None


class _ReputationSeries:
    """``p2p.peer.reputation`` on one provider: peer-id keys kept bounded by pruning the SDK's
    stale attribute sets, or rank keys when that is not possible."""

    def __init__(self) -> None:
        self.use_ranks = False
        self.limit = 0

    def combine(self, per_source: list[list[Point]]) -> list[Point]:
        points = sorted((p for points in per_source for p in points), key=lambda p: p[1])[: self.limit]
        if self.use_ranks:
            return [({PEER_RANK: rank}, value) for rank, (_, value) in enumerate(points, 1)]
        return points

    def after(self, instrument: Any, points: list[Point]) -> None:
        if self.use_ranks:
            return
        try:
            _sdk_bridge.prune_attribute_sets(instrument, [dict(attributes) for attributes, _ in points])
        except _sdk_bridge.SdkInternalsChanged as error:
            self.use_ranks = True
            logger.warning("p2p-telemetry: p2p.peer.reputation falls back to %s keys (1..%d) instead of peer "
                           "ids, as the SDK's internals are not what it expects: %s",
                           PEER_RANK, self.limit, error)


class PeerGroup(MetricGroup):
    """The peer table; every method is safe from any thread and never raises."""

    name: ClassVar[str] = "peers"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        series_limit = context.options.peer_series_limit
        self._series_limit = series_limit
        self._max_peers = context.options.max_peers
        self._peers: dict[str, _Peer] = {}
        self._counts = [0, 0, 0]
        self._heap: list[tuple[float, str]] = []  # (reputation, peer id); stale entries skipped lazily
        self._lock = threading.Lock()
        after_fork_in_child(self)
        self._latency = BatchedHistogram(self.histogram(PEER_LATENCY), LATENCY_BUCKETS, _HEALTH_ATTRIBUTES,
                                         context.rejections, context.hub.exemplar_filter, PEER_LATENCY.name)
        self.before_collect(self.flush_latency)  # collection time is when latency samples reach the SDK
        self.observe(PEERS, self._observe_counts)
        self._reputation: _ReputationSeries = context.hub.shared("p2p.peer.reputation", _ReputationSeries)
        self._reputation.limit = max(self._reputation.limit, series_limit)
        if series_limit:
            self.observe(PEER_REPUTATION, self._observe_reputation,
                         combine=self._reputation.combine, after=self._reputation.after)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def flush_latency(self) -> None:
        """Hand the latency samples recorded since the last collection to the SDK."""
        with self._lock:
            batches = self._latency.take()
        self._latency.hand_over(batches)

    def close(self) -> None:
        """Hand pending latency samples to the SDK, then stop reporting the table."""
        if not self.closed:
            self.flush_latency()
        super().close()

    def update(self, peer_id: str, health: HealthStatus | str | None = None, latency: float | None = None,
               reputation: float | None = None, reason: str | None = None) -> None:
        """Add or change a peer; only the fields given change. A new peer starts healthy."""
        try:
            if self._update(peer_id, health, latency, reputation, reason):
                self.flush_latency()  # a full batch: handed over here, outside the table's lock
        except Exception:
            self._rejections.reject("error", "peers.update")

    def _update(self, peer_id: Any, health: Any, latency: Any, reputation: Any, reason: Any) -> bool:
        """Apply one update; True when the latency batch is full."""
        index = None
        if health is not None:
            index = _HEALTH_INDEX.get(health) if isinstance(health, str) else None
            if index is None:
                self._rejections.reject("range" if isinstance(health, str) else "type", "peers.update")
        if latency is not None and (problem := seconds_problem(latency)):
            self._rejections.reject(problem, "peers.update")
            latency = None
        if reputation is not None and (problem := ratio_problem(reputation)):
            self._rejections.reject(problem, "peers.update")
            reputation = None
        if reason is not None and (reason.__class__ is not str or len(reason) > _MAX_REASON_LENGTH):
            self._rejections.reject("type", "peers.update")
            reason = None
        with self._lock:
            peer = self._peers.get(peer_id) if peer_id.__class__ is str else None
            if peer is None:
                if not self._valid_new_id(peer_id):
                    return False
                peer = self._peers[peer_id] = _Peer(0 if index is None else index)
                self._counts[peer.health] += 1
            elif index is not None and index != peer.health:
                self._counts[peer.health] -= 1
                self._counts[index] += 1
                peer.health = index
            if reputation is not None and reputation != peer.reputation:
                peer.reputation = reputation
                heapq.heappush(self._heap, (reputation, peer_id))
                if len(self._heap) > 2 * len(self._peers) + 1024:
                    self._compact()
            if reason is not None:
                peer.reason = reason
            if latency is not None:
                peer.latency = latency
                return self._latency.record(latency, peer.health)
        return False

    def _valid_new_id(self, peer_id: Any) -> bool:
        # Called with the lock held.
        if (peer_id.__class__ is not str or not 0 < len(peer_id) <= MAX_PEER_ID_LENGTH
                or not (peer_id.isascii() or _encodes(peer_id))):
            self._rejections.reject("peer_id", "peers.update")
            return False
        if len(self._peers) >= self._max_peers:
            self._rejections.reject("peer_limit", "peers.update")
            return False
        return True

    def _compact(self) -> None:
        self._heap = [(p.reputation, pid) for pid, p in self._peers.items() if p.reputation is not None]
        heapq.heapify(self._heap)

    def remove(self, peer_id: str) -> None:
        """Forget a peer (it left, or was disconnected); an id that was never admitted is ignored."""
        if peer_id.__class__ is not str:
            return
        try:
            with self._lock:
                peer = self._peers.pop(peer_id, None)
                if peer is not None:
                    self._counts[peer.health] -= 1
                if not self._peers:
                    self._heap = []
        except Exception:
            self._rejections.reject("error", "peers.remove")

    def record(self, peer_id: str, stats: PeerStats) -> None:
        """The seed's ``record_peer_metrics``."""
        try:
            self.update(peer_id, stats.health_status, stats.latency, stats.reputation, stats.reason)
        except Exception:
            self._rejections.reject("type", "record_peer_metrics")

    def get(self, peer_id: str) -> PeerStats | None:
        """What the table holds for ``peer_id``, or None."""
        with self._lock:
            peer = self._peers.get(peer_id) if peer_id.__class__ is str else None
            if peer is None:
                return None
            return PeerStats(_HEALTH_STATUS[peer.health], peer.latency, peer.reputation, peer.reason)

    def ids(self) -> list[str]:
        """A snapshot of the peer ids in the table."""
        with self._lock:
            return list(self._peers)

    def counts(self) -> dict[str, int]:
        """``{"total", "healthy", "degraded", "unhealthy"}``, exact."""
        with self._lock:
            counts = list(self._counts)
        return {"total": sum(counts), **dict(zip(HEALTH_STATES, counts))}

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, peer_id: object) -> bool:
        try:
            return peer_id in self._peers
        except TypeError:
            return False

    def _observe_counts(self) -> Points:
        with self._lock:
            counts = list(self._counts)
        return list(zip(_HEALTH_ATTRIBUTES, counts))

    def lowest_reputations(self, limit: int) -> list[tuple[str, float]]:
        """The ``limit`` peers with the lowest reputation, lowest first."""
        found: list[tuple[float, str]] = []
        seen: set[str] = set()
        with self._lock:
            heap, peers = self._heap, self._peers
            while heap and len(found) < limit:
                reputation, peer_id = heapq.heappop(heap)
                peer = peers.get(peer_id)
                if peer is None or peer.reputation != reputation or peer_id in seen:
                    continue  # stale: the peer left or its reputation changed since
                seen.add(peer_id)
                found.append((reputation, peer_id))
            for entry in found:
                heapq.heappush(heap, entry)
        return [(peer_id, reputation) for reputation, peer_id in found]

    def _observe_reputation(self) -> Points:
        return [({PEER_ID: peer_id}, reputation)
                for peer_id, reputation in self.lowest_reputations(self._series_limit)]


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
        return text.isprintable()
    except UnicodeEncodeError:
        return False
