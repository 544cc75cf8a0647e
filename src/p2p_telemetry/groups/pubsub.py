"""Pubsub group (gossipsub, floodsub): messages and their sizes per topic, RPC parts, mesh and topic peers.

A topic is one this node subscribed to or published on, at most ``max_topics`` of them (the
collector's option, default 64); any other topic counts under ``other``. Only the node's own
calls (``topic(name, own=True)``) add a topic, so a remote peer never adds a value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import ClassVar

from .._fork import after_fork_in_child
from ..attributes import (
    IO_DIRECTION,
    IO_DIRECTIONS,
    PUBSUB_EVENT,
    PUBSUB_EVENTS,
    PUBSUB_RPC_PART,
    PUBSUB_RPC_PARTS,
    PUBSUB_TOPIC,
)
from ..bounds import NameSet, choices, fold
from ..cells import Counter, Family, counter_points, new_counter
from ..histograms import BATCH_SIZE, BatchedHistogram
from ..instruments import Points
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup
from .views import Views

__all__ = ["PubsubGroup", "TopicBook", "SPECS", "PUBSUB_MESSAGES", "PUBSUB_MESSAGE_SIZE", "PUBSUB_RPC",
           "PUBSUB_MESH_PEERS", "PUBSUB_TOPIC_PEERS", "MESSAGE_SIZE_BUCKETS", "TopicCounts"]

#: Bytes: py-libp2p's own histogram goes to 4 KiB; gossipsub's default message size limit is 1 MiB.
MESSAGE_SIZE_BUCKETS = (64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0)

PUBSUB_MESSAGES = MetricSpec(
    "p2p.pubsub.messages", Kind.COUNTER, "{message}",
    "Pubsub messages by topic and event: published, received (duplicates included), delivered, duplicate, rejected.",
    (PUBSUB_TOPIC, PUBSUB_EVENT), "p2p_pubsub_messages_total")
PUBSUB_MESSAGE_SIZE = MetricSpec(
    "p2p.pubsub.message.size", Kind.HISTOGRAM, "By", "Data size of the pubsub messages received or published.",
    (PUBSUB_TOPIC,), "p2p_pubsub_message_size_bytes", MESSAGE_SIZE_BUCKETS)
PUBSUB_RPC = MetricSpec(
    "p2p.pubsub.rpc", Kind.COUNTER, "{rpc}", "Pubsub RPCs sent and received, one count per part each carries.",
    (IO_DIRECTION, PUBSUB_RPC_PART), "p2p_pubsub_rpc_total")
PUBSUB_MESH_PEERS = MetricSpec(
    "p2p.pubsub.mesh.peers", Kind.UP_DOWN_COUNTER, "{peer}", "Peers in the gossipsub mesh of each topic joined.",
    (PUBSUB_TOPIC,), "p2p_pubsub_mesh_peers")
PUBSUB_TOPIC_PEERS = MetricSpec(
    "p2p.pubsub.topic.peers", Kind.UP_DOWN_COUNTER, "{peer}", "Connected peers known to be subscribed to each topic.",
    (PUBSUB_TOPIC,), "p2p_pubsub_topic_peers")
SPECS = (PUBSUB_MESSAGES, PUBSUB_MESSAGE_SIZE, PUBSUB_RPC, PUBSUB_MESH_PEERS, PUBSUB_TOPIC_PEERS)

#: ``(topic, peers)`` pairs a router reports at collection.
TopicCounts = Callable[[], Iterable[tuple[str, int]]]

_DIRECTIONS = choices(*IO_DIRECTIONS)


def _list(values: Iterable[str]) -> str:
    return ", ".join(f"`{value}`" for value in values)

_PARTS = choices(*PUBSUB_RPC_PARTS)


class TopicBook:
    """The handles of one topic, made by ``PubsubGroup.topic``: ``book.receive(size)``, ``book.delivered.add(1)``.

    A message received is one entry in ``received_sizes`` (its data size) and nothing else: the
    ``received`` counter advances by the entries handed over, before every collection and whenever
    ``BATCH_SIZE`` of them wait, so what is exported is exact and recording one is one append.
    Published sizes wait in ``sizes``. Recording takes no lock: see ``_take``.
    """

    __slots__ = ("name", "published", "received", "delivered", "duplicate", "rejected", "received_sizes", "sizes",
                 "_histogram", "_group")

    def __init__(self, group: PubsubGroup, name: str, counter: Callable[[str], Counter],
                 histogram: BatchedHistogram) -> None:
        self.name = name
        self.published = counter("published")
        self.received = counter("received")
        self.delivered = counter("delivered")
        self.duplicate = counter("duplicate")
        self.rejected = counter("rejected")
        self.received_sizes: list[int] = []
        self.sizes: list[int] = []
        self._histogram = histogram
        self._group = group

    def receive(self, size: int) -> None:
        """Count one message received from a peer, with its data size in bytes."""
        if size.__class__ is not int or size < 0:
            self._reject(size)
            self.received.add(1)  # still a message received; its size is not a sample
            return
        received_sizes = self.received_sizes
        received_sizes.append(size)
        if len(received_sizes) >= BATCH_SIZE:
            self._group.flush_sizes()

    def size(self, n: int) -> None:
        """Record the data size of one message published, in bytes."""
        if n.__class__ is not int or n < 0:
            self._reject(n)
            return
        sizes = self.sizes
        sizes.append(n)
        if len(sizes) >= BATCH_SIZE:
            self._group.flush_sizes()

    def _reject(self, size: object) -> None:
        self._group._rejections.reject("type" if size.__class__ is not int else "range", PUBSUB_MESSAGE_SIZE.name)

    def _hand_over(self) -> None:
        # Called with the group's flush lock held: this is the only place that drains the lists.
        received, published = _take(self.received_sizes), _take(self.sizes)
        if received:
            self.received.add(len(received))
        if received or published:
            self._histogram.hand_over([received + published])


def _take(pending: list[int]) -> list[int]:
    """The entries of ``pending``, removed from it. Each statement is one atomic list operation (under the
    GIL, and under the list's own lock on a free-threaded build), and recording only appends: an entry
    appended in between stays for the next hand-over."""
    taken = pending[:]
    del pending[:len(taken)]
    return taken


class PubsubGroup(MetricGroup):
    """Counts pubsub messages per topic and RPC parts; reads mesh and topic peers from attached routers."""

    name: ClassVar[str] = "pubsub"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS
    title: ClassVar[str] = "Pubsub (py-libp2p gossipsub, floodsub)"
    attribute_docs: ClassVar[dict[str, str]] = {
        PUBSUB_TOPIC: "a topic this node subscribed to or published on, at most `max_topics` of them (default 64); "
                      "any other topic (one only remote peers use, or one past the bound) counts under `other` in "
                      "`p2p.pubsub.messages` and is not reported by the peer gauges.",
        PUBSUB_EVENT: f"{_list(PUBSUB_EVENTS)}: `published` by this node; `received` from a peer (duplicates "
                      "included); `delivered`: taken by this node's subscription (a new, valid message, once); "
                      "`duplicate` (already seen); `rejected` (failed validation or its signature).",
        PUBSUB_RPC_PART: f"{_list(PUBSUB_RPC_PARTS)}: one count per RPC that carries the part.",
    }
    metric_notes: ClassVar[dict[str, str]] = {
        PUBSUB_MESSAGES.name: "A node that publishes K messages on a topic counts K `published`; a subscriber that "
                              "gets all of them counts exactly K `delivered`. Every message received is exactly one "
                              "of `delivered`, `duplicate`, `rejected` (for a subscribed topic).",
        PUBSUB_MESSAGE_SIZE.name: "The data size of each message received or published.",
        PUBSUB_RPC.name: "Over `receive`, the same counts as py-libp2p's own `gossipsub_publish_total`, "
                         "`gossipsub_subopts_total` and `gossipsub_control_total` (summed over their peer ids).",
        PUBSUB_MESH_PEERS.name: "Read at collection, for the topics the node joined (subscribed to): a topic it only "
                                "publishes on has no mesh.",
        PUBSUB_TOPIC_PEERS.name: "Read at collection from the router's view of its peers' subscriptions, for every "
                                 "topic of the node's own (0 when no peer is subscribed).",
    }

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        #: The node's own topics (subscribed or published), bounded by ``max_topics``.
        self.topics = NameSet("pubsub topics", capacity=context.options.max_topics)
        self._messages: Family[Counter] = Family(PUBSUB_MESSAGES.attributes,
                                                 new_counter(context.rejections, PUBSUB_MESSAGES.name))
        self._rpc: Family[Counter] = Family(PUBSUB_RPC.attributes, new_counter(context.rejections, PUBSUB_RPC.name))
        self._sizes_instrument = self.histogram(PUBSUB_MESSAGE_SIZE)
        self._books: dict[str, TopicBook] = {}  # by topic as given; only accepted names, so it stays bounded
        self._by_name: dict[str, TopicBook] = {}  # by folded name (``other`` included)
        self._flush_lock = threading.Lock()
        self._books_lock = threading.Lock()
        after_fork_in_child(self)
        self.meshes: Views[TopicCounts] = Views("a pubsub router's mesh")
        self.subscribers: Views[TopicCounts] = Views("a pubsub router's topic peers")
        self.observe(PUBSUB_MESSAGES, lambda: counter_points(self._messages))
        self.observe(PUBSUB_RPC, lambda: counter_points(self._rpc))
        self.observe(PUBSUB_MESH_PEERS, lambda: self._observe_topics(self.meshes, every_topic=False))
        self.observe(PUBSUB_TOPIC_PEERS, lambda: self._observe_topics(self.subscribers, every_topic=True))
        self.before_collect(self.flush_sizes)

    def _after_fork_in_child(self) -> None:
        self._flush_lock = threading.Lock()
        self._books_lock = threading.Lock()

    # -- recording --------------------------------------------------------------------------------

    def topic(self, topic: object, *, own: bool = False) -> TopicBook:
        """The handles of ``topic``; ``own=True`` (this node subscribes or publishes) admits it within the bound."""
        try:
            book: TopicBook | None = self._books.get(topic)  # type: ignore[call-overload]
        except TypeError:
            book = None
        if book is not None:
            return book
        if own:
            try:
                self.topics.register(topic)  # type: ignore[arg-type]
            except (ValueError, TypeError):
                pass  # not a valid attribute value: it counts under ``other``
        name = self.topics.lookup(topic)
        book = self._book(name)
        if name == topic:
            self._books[name] = book
        return book

    def _book(self, name: str) -> TopicBook:
        book = self._by_name.get(name)
        if book is None:
            with self._books_lock:
                book = self._by_name.get(name)
                if book is None:
                    # Only its hand-over is used (no exemplars: a message carries no trace of the node's).
                    sizes = BatchedHistogram(self._sizes_instrument, MESSAGE_SIZE_BUCKETS, [{PUBSUB_TOPIC: name}],
                                             self._rejections, None, PUBSUB_MESSAGE_SIZE.name)
                    book = TopicBook(self, name, lambda event: self._messages.get((name, event)), sizes)
                    self._by_name = {**self._by_name, name: book}
        return book

    def rpc(self, direction: str, part: str) -> Counter:
        """A bound handle counting RPCs that carry ``part`` (``publish``, ``subscription``, ``control``)."""
        return self._rpc.get((fold(direction, _DIRECTIONS), fold(part, _PARTS)))

    def enable(self) -> None:
        """Start every RPC series at zero (a router was attached): PromQL's increase() then sees the first count."""
        for direction in IO_DIRECTIONS:
            for part in PUBSUB_RPC_PARTS:
                self.rpc(direction, part)

    def flush_sizes(self) -> None:
        """Hand the message sizes recorded since the last collection to the SDK, and count the messages received."""
        with self._flush_lock:
            for book in list(self._by_name.values()):
                book._hand_over()

    def close(self) -> None:
        """Hand pending sizes to the SDK, then stop reporting."""
        if not self.closed:
            self.flush_sizes()
        super().close()

    # -- reading ----------------------------------------------------------------------------------

    def _observe_topics(self, views: Views[TopicCounts], every_topic: bool) -> Points:
        """The peers the attached routers report per topic, for the node's own topics: all of them (0 when
        none reports it) with ``every_topic``, else those the routers report (the mesh: topics joined)."""
        if not views:
            return []
        own = set(self.topics)
        totals = dict.fromkeys(own, 0) if every_topic else {}

        def add(counts: TopicCounts) -> None:
            for topic, peers in counts():
                if topic in own:
                    totals[topic] = totals.get(topic, 0) + peers
        views.read(add)
        return [({PUBSUB_TOPIC: topic}, peers) for topic, peers in totals.items()]

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Message totals by topic and event (the messages received so far included)."""
        self.flush_sizes()
        result: dict[str, dict[str, int]] = {}
        for cell in self._messages:
            result.setdefault(cell.attributes[PUBSUB_TOPIC], {})[cell.attributes[PUBSUB_EVENT]] = cell.total
        return result
