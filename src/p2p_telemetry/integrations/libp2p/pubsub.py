"""A py-libp2p ``Pubsub`` (gossipsub or floodsub router), instrumented: messages per topic, RPC parts, mesh.

Where each figure comes from (methods wrapped on the instance, each called by py-libp2p once per
message or RPC):

- ``published``: ``publish(topic, data)`` returned (one per topic it names), with the data size;
- ``received``: ``_is_subscribed_to_msg(msg)``, which py-libp2p asks of every message an RPC
  from a peer carries (duplicates included), with the data size;
- ``duplicate``: ``_is_msg_seen(msg)`` answered yes;
- ``rejected``: ``validate_msg`` raised ``ValidationError`` (wrapped only once the pubsub has a topic
  validator: without one it never raises, and the wrapper would cost every message a coroutine), or
  the message signature failed
  (``signature_validator``, hooked process-wide: py-libp2p checks the signature right after
  asking ``_is_msg_seen``, with no await in between, so the message tells whose it is);
- ``delivered``: ``notify_subscriptions(msg)`` handed it to this node's subscription of a topic;
- RPC parts received: py-libp2p's own ``GossipsubEvent`` (one per RPC, read on its way to the
  host's metric channel), so they equal its ``gossipsub_*_total`` counters; RPC parts sent:
  ``write_msg`` succeeded, and the hello packet of each new peer stream;
- mesh and topic peers: the router's ``mesh`` and the pubsub's ``peer_topics``, read at collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ...cells import Counter
from ...groups.pubsub import PubsubGroup, TopicBook
from ...histograms import BATCH_SIZE
from .patches import Patch, attaching_init

if TYPE_CHECKING:
    from .host import HostInstrumentation
    from .streams import StreamBooks

__all__ = ["PubsubInstrumentation", "RpcCounters", "PATCHES", "attachable", "events"]

_OTHERS = 1024  # topics under ``other`` whose book is remembered (beyond, each is looked up again)
_WRAPPED = ("publish", "subscribe", "_is_subscribed_to_msg", "_is_msg_seen", "notify_subscriptions", "validate_msg",
            "set_topic_validator", "write_msg", "get_hello_packet")
# The message whose seen-check answered "new" last, and how to count it rejected: see the module docstring.
_last_new: list[Any] = [None, None]


class RpcCounters:
    """The three part counters of one direction: ``count(rpc_flags)``."""

    __slots__ = ("publish", "subscription", "control")

    def __init__(self, group: PubsubGroup, direction: str) -> None:
        self.publish: Counter = group.rpc(direction, "publish")
        self.subscription: Counter = group.rpc(direction, "subscription")
        self.control: Counter = group.rpc(direction, "control")


def _received_rpc(books: StreamBooks, event: Any) -> None:
    owner = books.owner
    counters = owner.rpc_received
    if counters is None:
        owner.collector.pubsub.enable()
        counters = owner.rpc_received = RpcCounters(owner.collector.pubsub, "receive")
    if event.publish:
        counters.publish.add(1)
    if event.subopts:
        counters.subscription.add(1)
    if event.control:
        counters.control.add(1)


def events() -> tuple[tuple[type, Callable[[StreamBooks, Any], None]], ...]:
    """This module's entries of the stream books' event table."""
    from libp2p.pubsub.pubsub import GossipsubEvent

    return ((GossipsubEvent, _received_rpc),)


def attachable() -> dict[type, Callable[[HostInstrumentation, Any], PubsubInstrumentation]]:
    """The protocol object class this module instruments."""
    from libp2p.pubsub.pubsub import Pubsub

    return {Pubsub: PubsubInstrumentation}


def _checked_signature(original: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def signature_validator(msg: Any) -> bool:
        valid = original(msg)
        if not valid and _last_new[0] is msg:
            try:
                _last_new[1](msg)
            except Exception:
                pass
        return valid
    return signature_validator


PATCHES = (Patch("libp2p.pubsub.pubsub", "signature_validator", _checked_signature),
           Patch("libp2p.pubsub.pubsub:Pubsub", "__init__", attaching_init))


class PubsubInstrumentation:
    """The wrappers on one ``Pubsub`` and the views of its router; ``close()`` removes them."""

    def __init__(self, owner: HostInstrumentation, pubsub: Any) -> None:
        from libp2p.exceptions import ValidationError

        self.pubsub = pubsub
        group = self.group = owner.collector.pubsub
        group.enable()
        self._books: dict[str, TopicBook] = {}  # topic -> its book: own topics, and at most _OTHERS others
        self._last: tuple[Any, tuple[str, ...], tuple[TopicBook, ...]] = (None, (), ())  # see _topic_books
        for topic in list(pubsub.topic_ids):
            self._book(topic, own=True)
        self._wrapped: dict[str, Any] = {}
        self._wrap(pubsub, ValidationError, RpcCounters(group, "transmit"))
        router = pubsub.router
        self._views = [group.subscribers.add(lambda: _sizes(pubsub.peer_topics))]
        if isinstance(getattr(router, "mesh", None), dict):
            self._views.append(group.meshes.add(lambda: _sizes(router.mesh)))

    def _book(self, topic: Any, own: bool = False) -> TopicBook:
        book = self._books.get(topic)
        if book is None or (own and book.name != topic):
            book = self.group.topic(topic, own=own)
            if book.name == topic or len(self._books) < (self.group.topics.capacity or 0) + _OTHERS:
                self._books[topic] = book  # a topic under ``other`` too, up to a bound: its lookup is not cheap
        return book

    def _topic_books(self, msg: Any) -> tuple[tuple[str, ...], tuple[TopicBook, ...]]:
        # py-libp2p asks about one message several times in a row (subscribed? seen? delivered?) and
        # ``msg.topicIDs`` decodes its strings at each reading: the last message's topics and books are kept.
        last = self._last
        if msg is last[0]:
            return last[1], last[2]
        ids = msg.topicIDs
        cache = self._books
        if len(ids) == 1:  # the usual message: one topic
            topic = ids[0]
            topics: tuple[str, ...] = (topic,)
            books: tuple[TopicBook, ...] = (cache.get(topic) or self._book(topic),)
        else:
            topics = tuple(ids)
            books = tuple([cache.get(topic) or self._book(topic) for topic in topics])
        self._last = (msg, topics, books)
        return topics, books

    def _wrap(self, pubsub: Any, validation_error: type[BaseException], sent: RpcCounters) -> None:
        originals = {name: getattr(pubsub, name) for name in _WRAPPED if hasattr(pubsub, name)}
        topic_books, book, group = self._topic_books, self._book, self.group
        subscriptions = pubsub.subscribed_topics_send
        original_publish: Any = originals.get("publish")
        original_subscribe: Any = originals.get("subscribe")
        original_is_subscribed: Any = originals.get("_is_subscribed_to_msg")
        original_is_seen: Any = originals.get("_is_msg_seen")
        original_notify: Any = originals.get("notify_subscriptions")
        original_validate: Any = originals.get("validate_msg")
        original_set_validator: Any = originals.get("set_topic_validator")
        original_write: Any = originals.get("write_msg")
        original_hello: Any = originals.get("get_hello_packet")

        async def publish(topic_id: Any, data: bytes, *args: Any, **kwargs: Any) -> Any:
            try:
                books = [book(topic, own=True) for topic in ([topic_id] if isinstance(topic_id, str) else topic_id)]
            except Exception:
                books = []  # py-libp2p judges the argument; a record call never raises
            result = await original_publish(topic_id, data, *args, **kwargs)
            try:
                size = len(data)
                for topic_book in books:
                    topic_book.published.add(1)
                    topic_book.size(size)
            except Exception:
                pass
            return result

        async def subscribe(topic_id: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                book(topic_id, own=True)
            except Exception:
                pass
            return await original_subscribe(topic_id, *args, **kwargs)

        cache = self._books

        def is_subscribed_to_msg(msg: Any) -> bool:
            # Every message an RPC from a peer carries passes here first (the hot path: kept flat, with
            # the usual one-topic message read once and remembered for the hooks that follow).
            subscribed: bool = original_is_subscribed(msg)
            try:
                ids = msg.topicIDs
                if len(ids) == 1:
                    topic = ids[0]
                    topic_book = cache.get(topic) or book(topic)
                    self._last = (msg, (topic,), (topic_book,))
                    topic_book.received.add(1)
                    sizes = topic_book.sizes
                    sizes.append(len(msg.data))
                    if len(sizes) >= BATCH_SIZE:
                        group.flush_sizes()
                else:
                    size, full = len(msg.data), False
                    for topic_book in topic_books(msg)[1]:
                        topic_book.received.add(1)
                        topic_book.sizes.append(size)
                        full = full or len(topic_book.sizes) >= BATCH_SIZE
                    if full:
                        group.flush_sizes()
            except Exception:
                pass
            return subscribed

        def rejected(msg: Any) -> None:
            for topic_book in topic_books(msg)[1]:
                topic_book.rejected.add(1)

        def is_msg_seen(msg: Any) -> bool:
            seen: bool = original_is_seen(msg)
            try:
                if seen:
                    for topic_book in topic_books(msg)[1]:
                        topic_book.duplicate.add(1)
                else:
                    _last_new[0], _last_new[1] = msg, rejected
            except Exception:
                pass
            return seen

        def notify_subscriptions(msg: Any) -> None:
            original_notify(msg)
            try:
                last = self._last
                topics, books = (last[1], last[2]) if msg is last[0] else topic_books(msg)
                if len(topics) == 1:
                    if topics[0] in subscriptions:
                        books[0].delivered.add(1)
                else:
                    for topic, topic_book in zip(topics, books):
                        if topic in subscriptions:
                            topic_book.delivered.add(1)
            except Exception:
                pass

        async def validate_msg(forwarder: Any, msg: Any) -> None:
            try:
                await original_validate(forwarder, msg)
            except validation_error:
                try:
                    rejected(msg)
                except Exception:
                    pass
                raise

        def count_rejections() -> None:
            if "validate_msg" in originals and "validate_msg" not in self._wrapped:
                pubsub.validate_msg = self._wrapped["validate_msg"] = validate_msg

        def set_topic_validator(topic: Any, validator: Any, is_async_validator: bool) -> Any:
            result = original_set_validator(topic, validator, is_async_validator)
            count_rejections()
            return result

        async def write_msg(stream: Any, rpc: Any) -> bool:
            written: bool = await original_write(stream, rpc)
            if written:
                try:
                    if rpc.publish:
                        sent.publish.add(1)
                    if rpc.subscriptions:
                        sent.subscription.add(1)
                    if rpc.HasField("control"):
                        sent.control.add(1)
                except Exception:
                    pass
            return written

        def get_hello_packet() -> Any:
            packet = original_hello()
            try:
                if packet.subscriptions:
                    sent.subscription.add(1)
            except Exception:
                pass
            return packet

        for name, wrapper in (("publish", publish), ("subscribe", subscribe),
                              ("_is_subscribed_to_msg", is_subscribed_to_msg), ("_is_msg_seen", is_msg_seen),
                              ("notify_subscriptions", notify_subscriptions),
                              ("set_topic_validator", set_topic_validator),
                              ("write_msg", write_msg), ("get_hello_packet", get_hello_packet)):
            if name in originals:
                setattr(pubsub, name, wrapper)
                self._wrapped[name] = wrapper
        if getattr(pubsub, "topic_validators", None) != {}:  # validators already set (or not knowable)
            count_rejections()

    def close(self) -> None:
        """Take the wrappers off the pubsub (those still ours) and stop reading its router."""
        for name, wrapper in self._wrapped.items():
            if self.pubsub.__dict__.get(name) is wrapper:
                del self.pubsub.__dict__[name]
        self._wrapped.clear()
        for remove in self._views:
            remove()
        self._views.clear()
        _last_new[0] = _last_new[1] = None


def _sizes(peers_by_topic: dict[str, Any]) -> Iterable[tuple[str, int]]:
    """``(topic, number of peers)`` of a ``{topic: set of peers}`` that another thread may be changing."""
    return [(topic, len(peers)) for topic, peers in list(peers_by_topic.items())]
