"""A py-libp2p ``Pubsub`` (gossipsub or floodsub router), instrumented: messages per topic, RPC parts, mesh.

Where each figure comes from:

- ``published``: ``publish(topic, data)`` returned (one per topic it names), with the data size;
- ``received``, ``duplicate``, ``delivered``, ``rejected``: the calls py-libp2p makes for each message
  (see ``messages``); ``validate_msg`` is wrapped to count rejections only once the pubsub has a topic
  validator (without one it never raises, and the wrapper would cost every message a coroutine);
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
from .messages import SIGNATURE_PATCH, MessageHooks
from .patches import Patch, attaching_init

if TYPE_CHECKING:
    from .host import HostInstrumentation
    from .streams import StreamBooks

__all__ = ["PubsubInstrumentation", "RpcCounters", "PATCHES", "attachable", "events"]

_OTHERS = 1024  # topics under ``other`` whose book is remembered (beyond, each is looked up again)
_WRAPPED = ("publish", "subscribe", "validate_msg", "set_topic_validator", "write_msg", "get_hello_packet")


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


PATCHES = (SIGNATURE_PATCH, Patch("libp2p.pubsub.pubsub:Pubsub", "__init__", attaching_init))


class PubsubInstrumentation:
    """The wrappers on one ``Pubsub`` and the views of its router; ``close()`` removes them."""

    def __init__(self, owner: HostInstrumentation, pubsub: Any) -> None:
        from libp2p.exceptions import ValidationError

        self.pubsub = pubsub
        group = self.group = owner.collector.pubsub
        group.enable()
        self._books: dict[str, TopicBook] = {}  # topic -> its book: own topics, and at most _OTHERS others
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

    def _wrap(self, pubsub: Any, validation_error: type[BaseException], sent: RpcCounters) -> None:
        originals = {name: getattr(pubsub, name) for name in _WRAPPED if hasattr(pubsub, name)}
        book = self._book
        messages = self._messages = MessageHooks(pubsub, self.group, book, self._books)
        rejected = messages.rejected
        original_publish: Any = originals.get("publish")
        original_subscribe: Any = originals.get("subscribe")
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

        wrappers = {"publish": publish, "subscribe": subscribe, "set_topic_validator": set_topic_validator,
                    "write_msg": write_msg, "get_hello_packet": get_hello_packet}
        for name, wrapper in [*((name, wrapper) for name, wrapper in wrappers.items() if name in originals),
                              *messages.hooks.items()]:
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
        self._messages.close()


def _sizes(peers_by_topic: dict[str, Any]) -> Iterable[tuple[str, int]]:
    """``(topic, number of peers)`` of a ``{topic: set of peers}`` that another thread may be changing."""
    return [(topic, len(peers)) for topic, peers in list(peers_by_topic.items())]
