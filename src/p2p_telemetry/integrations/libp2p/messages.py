"""The pubsub messages of one py-libp2p ``Pubsub``, per topic: received, duplicate, rejected, delivered.

Where each count comes from (py-libp2p makes these calls once per message):

- ``received``: ``_is_subscribed_to_msg(msg)``, which py-libp2p asks of every message an RPC from a
  peer carries (duplicates included), with the data size;
- ``duplicate``: ``_is_msg_seen(msg)`` answered yes;
- ``rejected``: ``validate_msg`` raised ``ValidationError`` (``rejected(msg)``, called by the pubsub
  part), or the message signature failed (``signature_validator``, hooked process-wide: py-libp2p
  checks the signature right after asking ``_is_msg_seen``, with no await in between, so the message
  tells whose it is);
- ``delivered``: ``notify_subscriptions(msg)`` handed it to this node's subscription of a topic.

These three methods are the hot path, so the hooks run py-libp2p's own bodies of them (see
``verbatim``) and read the message's topics once; a method whose code is not the one known is
wrapped instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ...cells import GIL_ENABLED
from ...groups.pubsub import PubsubGroup, TopicBook
from ...histograms import BATCH_SIZE
from .patches import Patch
from .verbatim import BODIES, same_code

__all__ = ["MessageHooks", "SIGNATURE_PATCH"]

# The message whose seen-check answered "new" last, and how to count it rejected: see the module docstring.
_last_new: list[Any] = [None, None]


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


SIGNATURE_PATCH = Patch("libp2p.pubsub.pubsub", "signature_validator", _checked_signature)


class MessageHooks:
    """The replacements of the three per-message methods of one pubsub (``hooks``), and ``rejected(msg)``."""

    def __init__(self, pubsub: Any, group: PubsubGroup, book: Callable[[str], TopicBook],
                 cache: dict[str, TopicBook]) -> None:
        originals = {name: getattr(pubsub, name) for name in BODIES if hasattr(pubsub, name)}
        #: method name -> its replacement, for the methods this pubsub has.
        self.hooks: dict[str, Callable[[Any], Any]] = {}
        #: True for the methods whose body the hook runs itself (py-libp2p's code, checked).
        self.inline = {name: same_code(pubsub, name) for name in BODIES}
        #: Count a message rejected (its validation raised): called by the pubsub part's ``validate_msg``.
        self.rejected: Callable[[Any], None]
        inline_subscribed = self.inline["_is_subscribed_to_msg"]
        inline_seen = self.inline["_is_msg_seen"]
        original_is_subscribed: Any = originals.get("_is_subscribed_to_msg")
        original_is_seen: Any = originals.get("_is_msg_seen")
        original_notify: Any = originals.get("notify_subscriptions")
        # py-libp2p asks about one message several times in a row (subscribed? seen? delivered?), and with
        # upb each reading of ``msg.topicIDs`` builds a container and decodes the topic again: the receive
        # hook keeps the last one-topic message, its book, and the container it read (held, so that
        # py-libp2p's other readings of it find it built): ``msg is last_msg`` says which book, with no
        # lookup. A message of several topics is read again. The message is let go as soon as py-libp2p
        # is done with it (a duplicate once seen, a new one once delivered): holding it longer costs the
        # node more than the hooks' own work (measured in benchmarks/libp2p.py).
        last_msg: Any = None
        last_ids: Any = None
        last_book: Any = None  # a TopicBook once ``last_msg`` is set
        batch_size = BATCH_SIZE
        # With the GIL, ``counter.total += 1`` is ``counter.add(1)`` without the call (see ``cells``).
        lock_free = GIL_ENABLED
        flush_sizes = group.flush_sizes

        def topic_books(msg: Any) -> Iterable[tuple[str, TopicBook]]:
            if msg is last_msg:
                return ((last_ids[0], last_book),)
            return [(topic, cache.get(topic) or book(topic)) for topic in msg.topicIDs]

        def is_subscribed_to_msg(msg: Any) -> bool:
            # Every message an RPC from a peer carries passes here first: the hot path, kept flat.
            nonlocal last_msg, last_ids, last_book
            if inline_subscribed:  # py-libp2p's body, its one reading of the topics kept
                ids = msg.topicIDs
                subscribed: bool = any(topic in pubsub.topic_ids for topic in ids)
            else:
                subscribed = original_is_subscribed(msg)
                ids = _topics(msg)
            try:
                size = len(msg.data)
                if len(ids) == 1:
                    topic = ids[0]
                    try:
                        topic_book = cache[topic]
                    except KeyError:
                        topic_book = book(topic)
                    last_msg, last_ids, last_book = msg, ids, topic_book
                    received_sizes = topic_book.received_sizes  # topic_book.receive(size), without the call
                    received_sizes.append(size)
                    if len(received_sizes) >= batch_size:
                        flush_sizes()
                else:
                    for topic in ids:
                        (cache.get(topic) or book(topic)).receive(size)
            except Exception:
                pass
            return subscribed

        def rejected(msg: Any) -> None:
            for _, topic_book in topic_books(msg):
                topic_book.rejected.add(1)

        def let_go(msg: Any) -> None:
            # py-libp2p delivered ``msg``: hold it no longer than the node does (the signature check, which
            # ``_last_new`` serves, came before).
            nonlocal last_msg, last_ids
            if msg is last_msg:
                last_msg = last_ids = None
            _last_new[0] = None

        def is_msg_seen(msg: Any) -> bool:
            nonlocal last_msg, last_ids
            if inline_seen:  # py-libp2p's body
                msg_id = pubsub._msg_id_constructor(msg)
                seen: bool = pubsub.seen_messages.has(msg_id)
            else:
                seen = original_is_seen(msg)
            try:
                if not seen:
                    _last_new[0], _last_new[1] = msg, rejected
                elif msg is last_msg:  # the usual duplicate: just counted as received
                    if lock_free:
                        last_book.duplicate.total += 1
                    else:
                        last_book.duplicate.add(1)
                    last_msg = last_ids = None  # let_go(msg): py-libp2p drops a duplicate here
                else:
                    for _, topic_book in topic_books(msg):
                        topic_book.duplicate.add(1)
            except Exception:
                pass
            return seen

        def delivered(msg: Any, topic: str) -> None:
            try:
                topic_book = last_book if msg is last_msg else None  # a one-topic message: its topic
                (topic_book or cache.get(topic) or book(topic)).delivered.add(1)
            except Exception:
                pass

        if self.inline["notify_subscriptions"]:
            module = original_notify.__func__.__globals__  # the names py-libp2p's body uses, as it sees them
            would_block, libp2p_logger = module["trio"].WouldBlock, module["logger"]

            def notify_subscriptions(msg: Any) -> None:
                # py-libp2p's body, counting each message its subscription queue took
                nonlocal last_msg, last_ids
                for topic in msg.topicIDs:
                    if topic in pubsub.topic_ids:
                        try:
                            pubsub.subscribed_topics_send[topic].send_nowait(msg)
                        except would_block:
                            libp2p_logger.warning("fail to deliver message to subscription for topic %s", topic)
                        else:
                            if msg is last_msg and lock_free:  # a one-topic message: its topic
                                last_book.delivered.total += 1
                            else:
                                delivered(msg, topic)
                if msg is last_msg:  # let_go(msg), inline
                    last_msg = last_ids = None
                _last_new[0] = None
        else:
            def notify_subscriptions(msg: Any) -> None:
                # Other code: it cannot be told whether a full subscription queue refused the message.
                original_notify(msg)
                try:
                    subscriptions = pubsub.subscribed_topics_send
                    for topic, _ in topic_books(msg):
                        if topic in subscriptions:
                            delivered(msg, topic)
                    let_go(msg)
                except Exception:
                    pass

        for name, hook in (("_is_subscribed_to_msg", is_subscribed_to_msg), ("_is_msg_seen", is_msg_seen),
                           ("notify_subscriptions", notify_subscriptions)):
            if name in originals:
                self.hooks[name] = hook
        self.rejected = rejected

    def close(self) -> None:
        """Forget the last message (the hooks are taken off by the pubsub part)."""
        _last_new[0] = _last_new[1] = None


def _topics(msg: Any) -> Any:
    try:
        return msg.topicIDs
    except Exception:
        return ()
