"""The per-message hooks run py-libp2p's own bodies of three ``Pubsub`` methods: they must answer and deliver
exactly as those methods do, count what really happened, and fall back to wrapping when the code differs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from realstack import missing

try:
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.pubsub import Pubsub
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import OwnMethodsPubsub, gossipsub, new_hosts

from conftest import collect
from p2p_telemetry import MetricsCollector
from p2p_telemetry.integrations.libp2p import instrument_host, messages
from p2p_telemetry.integrations.libp2p.messages import MessageHooks
from p2p_telemetry.integrations.libp2p.verbatim import BODIES, same_code

HOOKED = tuple(BODIES)


def _subscribed(pubsub: Pubsub, topic: str, room: int) -> trio.MemoryReceiveChannel:
    """Subscribe ``pubsub`` to ``topic`` as ``subscribe()`` does, with a queue of ``room`` messages."""
    send, receive = trio.open_memory_channel(room)
    pubsub.subscribed_topics_send[topic] = send
    pubsub.subscribed_topics_receive[topic] = receive
    return receive


def _message(seqno: int, *topics: str) -> rpc_pb2.Message:
    return rpc_pb2.Message(data=b"m" * seqno, topicIDs=list(topics), from_id=b"\x00\x24" + b"p" * 36,
                           seqno=seqno.to_bytes(8, "big"))


# Each message: its topics, and whether it arrives once more (a duplicate) after it was handled.
ARRIVALS = [(("a",), False), (("a",), True), (("c",), False), (("a", "b"), True), (("c", "a"), False),
            ((), False), (("a",), False), (("a",), False), (("b",), False)]


@pytest.mark.parametrize("gil", [True, False], ids=["counts in place (GIL)", "counts through add (no GIL)"])
@pytest.mark.parametrize("pubsub_class", [Pubsub, OwnMethodsPubsub], ids=["py-libp2p's code", "other code"])
def test_hooks_answer_and_deliver_as_the_methods_they_replace(provider, reader, pubsub_class, gil, monkeypatch):
    monkeypatch.setattr(messages, "GIL_ENABLED", gil)
    plain_host, host = new_hosts(2)
    collector = MetricsCollector(provider, sample_resources=False)
    handle = instrument_host(host, collector)
    plain = Pubsub(plain_host, gossipsub(), strict_signing=False)
    hooked = pubsub_class(host, gossipsub(), strict_signing=False)
    part = handle.parts[id(hooked)]
    expected_inline = pubsub_class is Pubsub
    assert part._messages.inline == dict.fromkeys(HOOKED, expected_inline)
    assert all(hooked.__dict__[name] is part._messages.hooks[name] for name in HOOKED)
    # "a" has room for 5 messages: the 6th delivery finds it full (py-libp2p logs it and drops it).
    queues = {pubsub: {"a": _subscribed(pubsub, "a", 5), "b": _subscribed(pubsub, "b", 10)}
              for pubsub in (plain, hooked)}
    for topic in ("a", "b"):
        collector.pubsub.topic(topic, own=True)

    answers: dict[Pubsub, list] = {plain: [], hooked: []}
    for pubsub in (plain, hooked):
        with _warnings_of("libp2p.pubsub.pubsub") as warnings:
            for seqno, (topics, again) in enumerate(ARRIVALS, start=1):
                for _ in range(2 if again else 1):
                    msg = _message(seqno, *topics)
                    subscribed = pubsub._is_subscribed_to_msg(msg)
                    seen = pubsub._is_msg_seen(msg) if subscribed else None
                    if subscribed and not seen:
                        pubsub._mark_msg_seen(msg)
                        pubsub.notify_subscriptions(msg)
                    answers[pubsub].append((subscribed, seen))
        answers[pubsub].append(warnings)
        answers[pubsub].append({topic: _drain(queue) for topic, queue in queues[pubsub].items()})
    assert answers[hooked] == answers[plain]
    delivered = answers[hooked][-1]
    assert len(delivered["a"]) == 5 and answers[hooked][-2] == ["fail to deliver message to subscription for topic a"]

    # What was counted is what happened to the hooked pubsub's messages (the plain one is not instrumented).
    counts = {(p.attributes["p2p.pubsub.topic"], p.attributes["p2p.pubsub.event"]): p.value
              for p in collect(reader)["p2p.pubsub.messages"].points}
    arrivals = [topics for topics, again in ARRIVALS for _ in range(2 if again else 1)]
    for topic in ("a", "b"):
        assert counts[(topic, "received")] == sum(topic in topics for topics in arrivals)
        # Running py-libp2p's body, the hook sees the queue refuse the message; wrapping other code, it cannot
        # tell, and counts the message handed to notify_subscriptions.
        dropped = 1 if topic == "a" and not expected_inline else 0
        assert counts[(topic, "delivered")] == len(delivered[topic]) + dropped
        assert counts[(topic, "duplicate")] == sum(topic in topics for topics, again in ARRIVALS
                                                   if again and ("a" in topics or "b" in topics))
    assert counts[("other", "received")] == sum(topic == "c" for topics in arrivals for topic in topics)
    handle.close()
    assert not any(name in hooked.__dict__ for name in HOOKED)


@pytest.mark.parametrize("pubsub_class", [Pubsub, OwnMethodsPubsub], ids=["py-libp2p's code", "other code"])
def test_hooks_hold_a_message_no_longer_than_py_libp2p_does(provider, pubsub_class):
    host = new_hosts(1)[0]
    instrument_host(host, MetricsCollector(provider, sample_resources=False))
    pubsub = pubsub_class(host, gossipsub(), strict_signing=False)
    queue = _subscribed(pubsub, "a", 10)
    first, again = _message(1, "a"), _message(1, "a")
    references = sys.getrefcount(first), sys.getrefcount(again)
    # A new message: py-libp2p delivers it, and is done with it.
    assert pubsub._is_subscribed_to_msg(first) and not pubsub._is_msg_seen(first)
    pubsub._mark_msg_seen(first)
    pubsub.notify_subscriptions(first)
    assert queue.receive_nowait() is first
    # The same message again: py-libp2p is done with it once told it was seen.
    assert pubsub._is_subscribed_to_msg(again) and pubsub._is_msg_seen(again)
    assert (sys.getrefcount(first), sys.getrefcount(again)) == references


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _warnings_of(name: str) -> Iterator[list[str]]:
    """The warnings logged to logger ``name``, read at the logger itself (py-libp2p's ``libp2p`` logger does not
    propagate to the root, where pytest's caplog listens)."""
    handler = _Messages()
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _drain(queue: trio.MemoryReceiveChannel) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(queue.receive_nowait().seqno)
        except trio.WouldBlock:
            return got


def test_same_code_compares_the_code_not_its_text():
    pubsub = Pubsub(new_hosts(1)[0], gossipsub(), strict_signing=False)
    assert all(same_code(pubsub, name) for name in HOOKED)  # the pinned py-libp2p: the hooks run its bodies
    assert not any(same_code(OwnMethodsPubsub.__new__(OwnMethodsPubsub), name) for name in HOOKED)
    pubsub._is_msg_seen = lambda msg: False  # replaced on the instance by someone else
    assert not same_code(pubsub, "_is_msg_seen") and same_code(pubsub, "notify_subscriptions")

    class Reworded(Pubsub):
        def _is_subscribed_to_msg(self, message: rpc_pb2.Message) -> bool:  # a renamed argument is other code
            return any(topic in self.topic_ids for topic in message.topicIDs)

        def _is_msg_seen(self, msg: object) -> bool:
            """Another docstring and other annotations: the same code."""
            msg_id = self._msg_id_constructor(msg)
            return self.seen_messages.has(msg_id)

    reworded = Reworded.__new__(Reworded)
    assert not same_code(reworded, "_is_subscribed_to_msg") and same_code(reworded, "_is_msg_seen")


def test_message_hooks_of_a_pubsub_without_the_methods_hook_nothing(provider):
    collector = MetricsCollector(provider, sample_resources=False)

    class Bare:
        topic_ids: list[str] = []

    hooks = MessageHooks(Bare(), collector.pubsub, collector.pubsub.topic, {})
    assert hooks.hooks == {} and hooks.inline == dict.fromkeys(HOOKED, False)
