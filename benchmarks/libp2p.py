"""py-libp2p hosts: the cost p2p-telemetry adds per event, and a gossipsub swarm at full speed, side by side with
py-libp2p's own metrics module on the same work.

    python benchmarks/libp2p.py [--messages 2000] [--rounds 5]

Per event (in this process, no network): the calls py-libp2p makes for one gossipsub message
(200-300 bytes of data) received and delivered, one received again, one RPC received, one Kademlia
request handled, one stream read and one write on a Kademlia stream (where p2p-telemetry notes
py-libp2p's PING answers), on real py-libp2p objects, plain against instrumented; and what
``libp2p.metrics.Metrics`` spends on the same event (its channel send and receive, and its
prometheus_client ``record`` with a ``peer_id`` label).

Full speed: three hosts in one process on loopback, A - B - C in a line, all subscribed to one
topic; A publishes as fast as the line carries the messages (at most 32 in flight) and B relays
every message to C. CPU seconds of
the process from the first publish to C's last delivery; each round in a fresh interpreter, plain,
instrumented (``instrument_host`` on all three) and py-libp2p's own metrics (``enable_metrics=True``
and ``Metrics`` reading every host's channel), alternating; the best round of each is kept.
Targets: at most about 0.5 us per event; the swarm at most 3 % more CPU instrumented; the plugin
cheaper than py-libp2p's own module.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from typing import Any

try:
    from benchmarks._timing import per_call_ns, table
except ImportError:  # run as a script from the benchmarks directory
    from _timing import per_call_ns, table  # type: ignore[no-redef,import-not-found]

TOPIC = "bench"
PAYLOAD = b"x" * 256
# Per event, the messages of a topic vary in size as real ones do (200-300 bytes, the same sequence in every run).
PAYLOADS = [b"x" * size for size in random.Random(7).choices(range(200, 301), k=997)]
PING_ANSWER = b"\x08\x05"  # py-libp2p's answer to a Kademlia PING: the type field alone
WINDOW = 32


def _done(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (as these calls do not) to its end, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the coroutine suspended")


class _Stream:
    """A stream stand-in whose read returns at once, as a read of buffered data does."""

    def __init__(self) -> None:
        self.data = b"y" * 4096
        self.metric_send_channel: Any = None
        self.swarm_conn = None

    async def read(self, n: int | None = None) -> bytes:
        return self.data

    async def write(self, data: bytes) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass


def per_event() -> dict[str, dict[str, float]]:
    """ns per event: plain, instrumented, and py-libp2p's Metrics, for each kind of event."""
    import trio
    from libp2p import new_host
    from libp2p.custom_types import TProtocol
    from libp2p.kad_dht import kad_dht as kad_module
    from libp2p.kad_dht.kad_dht import KadDhtEvent
    from libp2p.metrics.gossipsub import GossipsubMetrics
    from libp2p.metrics.kad_dht import KadDhtMetrics
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.pubsub import GossipsubEvent, Pubsub
    from opentelemetry.sdk.metrics import MeterProvider

    from p2p_telemetry import MetricsCollector
    from p2p_telemetry.integrations.libp2p import instrument_host

    collector = MetricsCollector(MeterProvider(), sample_resources=False)
    plain_host, host = new_host(), new_host()
    handle = instrument_host(host, collector)

    def pubsub_of(h: Any) -> Any:
        router = GossipSub(protocols=[TProtocol("/meshsub/1.1.0")], degree=2, degree_low=1, degree_high=3)
        pubsub = Pubsub(h, router, strict_signing=False)
        # subscribed, as subscribe() does; ``deliver`` takes each message from the queue, as the subscriber would
        send, receive = trio.open_memory_channel(1)
        pubsub.subscribed_topics_send[TOPIC], pubsub.subscribed_topics_receive[TOPIC] = send, receive
        return pubsub

    plain, instrumented = pubsub_of(plain_host), pubsub_of(host)
    collector.pubsub.topic(TOPIC, own=True)  # a topic of its own, as subscribe() registers it
    assert id(instrumented) in handle.parts and id(plain) not in handle.parts
    seqno, arrivals = [0], [0]

    def deliver(pubsub: Any, again: bool = False) -> None:
        # What py-libp2p asks of Pubsub for one message: subscribed? seen? valid? then hand it over. ``again``: the
        # message arrives once more (in a gossipsub mesh of degree D, most arrivals are such duplicates).
        seqno[0] += 0 if again else 1
        arrivals[0] += 1
        data = PAYLOADS[arrivals[0] % len(PAYLOADS)]
        message = rpc_pb2.Message(data=data, topicIDs=[TOPIC], from_id=b"\x00\x24" + b"p" * 36,
                                  seqno=seqno[0].to_bytes(8, "big"))
        pubsub._is_subscribed_to_msg(message)
        if not pubsub._is_msg_seen(message):
            _done(pubsub.validate_msg(None, message))
            pubsub._mark_msg_seen(message)
            pubsub.notify_subscriptions(message)
            pubsub.subscribed_topics_receive[TOPIC].receive_nowait()

    for _ in range(2000):  # a running node's state: py-libp2p's validation cache (1,000 ids, an LRU list) full
        deliver(plain)
        deliver(instrumented)

    async def emit(channel: Any, event: Any) -> None:
        # How py-libp2p hands an event to a stream's metric channel (after building the event either way).
        if channel is not None:
            await channel.send(event)

    pubsub_event = GossipsubEvent()
    pubsub_event.peer_id, pubsub_event.publish, pubsub_event.message_size = "QmPeer", True, 300
    kad_event = KadDhtEvent()
    kad_event.peer_id, kad_event.inbound, kad_event.find_node = "QmPeer", True, True
    plain_stream, stream, kad_stream = _Stream(), _Stream(), _Stream()
    handle.stream_opened(kad_stream)
    kad_stream.set_protocol(str(kad_module.PROTOCOL_ID))  # its bytes sent note py-libp2p's PING answers
    handle.stream_opened(stream)  # the books a real stream gets from the host's notifee
    stream.set_protocol("/meshsub/1.1.0")
    books = stream._p2p_telemetry  # type: ignore[attr-defined]
    send, receive = trio.open_memory_channel(100)
    gossipsub_metrics, kad_metrics = GossipsubMetrics(), KadDhtMetrics()

    class Channel:
        """py-libp2p's own path, without scheduling: the host's channel, then Metrics.record."""

        def __init__(self, record: Callable[[Any], None]) -> None:
            self.record = record

        async def send(self, event: Any) -> None:
            send.send_nowait(event)
            self.record(receive.receive_nowait())

    def event_cases(event: Any, record: Callable[[Any], None]) -> dict[str, tuple[str, dict[str, Any]]]:
        env = {"done": _done, "emit": emit, "event": event}
        return {"plain": ("done(emit(None, event))", env),
                "p2p-telemetry": ("done(emit(books, event))", {**env, "books": books}),
                "py-libp2p Metrics": ("done(emit(channel, event))", {**env, "channel": Channel(record)})}

    cases = {
        "message received and delivered": {
            "plain": ("deliver(plain)", {"deliver": deliver, "plain": plain}),
            "p2p-telemetry": ("deliver(pubsub)", {"deliver": deliver, "pubsub": instrumented}),
        },
        "message received again (a duplicate)": {
            "plain": ("deliver(plain, True)", {"deliver": deliver, "plain": plain}),
            "p2p-telemetry": ("deliver(pubsub, True)", {"deliver": deliver, "pubsub": instrumented}),
        },
        "pubsub RPC received (its event)": event_cases(pubsub_event, gossipsub_metrics.record),
        "Kademlia request handled (its event)": event_cases(kad_event, kad_metrics.record),
        "stream read (4 KiB)": {
            "plain": ("done(stream.read(4096))", {"done": _done, "stream": plain_stream}),
            "p2p-telemetry": ("done(stream.read(4096))", {"done": _done, "stream": stream}),
        },
        "stream write (a Kademlia answer, 2 bytes)": {
            "plain": ("done(stream.write(ANSWER))", {"done": _done, "stream": plain_stream, "ANSWER": PING_ANSWER}),
            "p2p-telemetry": ("done(stream.write(ANSWER))", {"done": _done, "stream": kad_stream,
                                                              "ANSWER": PING_ANSWER}),
        },
    }
    results: dict[str, dict[str, float]] = {}
    for event, variants in cases.items():
        results[event] = per_call_ns(variants, number=20_000, rounds=7)
    handle.close()
    return results


# -- the swarm at full speed ------------------------------------------------------------------------


def swarm_round(variant: str, messages: int) -> float:
    """CPU seconds for ``messages`` published by A, relayed by B, delivered to C (run in a fresh process)."""
    import logging

    import trio

    logging.disable(logging.WARNING)
    return trio.run(_swarm, variant, messages)


async def _swarm(variant: str, messages: int) -> float:
    from contextlib import AsyncExitStack

    import multiaddr
    import trio
    from libp2p import new_host
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service import background_trio_service

    metrics_module = variant == "py-libp2p Metrics"
    hosts = [new_host(enable_metrics=metrics_module) for _ in range(3)]
    if variant == "p2p-telemetry":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from p2p_telemetry import MetricsCollector
        from p2p_telemetry.integrations.libp2p import instrument_host

        collector = MetricsCollector(MeterProvider(metric_readers=[InMemoryMetricReader()]), sample_resources=False)
        for host in hosts:
            instrument_host(host, collector)
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    routers = [GossipSub(protocols=[TProtocol("/meshsub/1.1.0")], degree=2, degree_low=1, degree_high=3,
                         heartbeat_interval=1, spam_protection_enabled=False,
                         eclipse_protection_enabled=False)  # every peer on one IP: loopback
               for _ in hosts]
    pubsubs = [Pubsub(host, router) for host, router in zip(hosts, routers)]
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        if metrics_module:
            from libp2p.metrics.metrics import Metrics

            metrics = Metrics()
            for host in hosts:
                nursery.start_soon(_consume, metrics, host.get_metrics_recv_channel())
        for service in (*pubsubs, *routers):
            await stack.enter_async_context(background_trio_service(service))
        for host in hosts:
            await stack.enter_async_context(host.run(listen))
        for pubsub in pubsubs:
            await pubsub.wait_until_ready()
        subscriptions = [await pubsub.subscribe(TOPIC) for pubsub in pubsubs]
        a, b, c = hosts
        await a.connect(info_from_p2p_addr(b.get_addrs()[0]))
        await c.connect(info_from_p2p_addr(b.get_addrs()[0]))
        await pubsubs[0].wait_for_mesh(b.get_id(), TOPIC, timeout=10)
        await pubsubs[2].wait_for_mesh(b.get_id(), TOPIC, timeout=10)
        for subscription in subscriptions[:2]:
            nursery.start_soon(_drain, subscription)
        # At most WINDOW messages in flight: publishing faster than the line carries them only fills
        # gossipsub's queues until they drop messages.
        window = trio.Semaphore(WINDOW)
        delivered = trio.Event()
        nursery.start_soon(_deliveries, subscriptions[2], window, messages, delivered)
        started = time.process_time()
        for _ in range(messages):
            await window.acquire()
            await pubsubs[0].publish(TOPIC, PAYLOAD)
        await delivered.wait()
        cpu = time.process_time() - started
        nursery.cancel_scope.cancel()  # the hosts and services stop first (the stack), then the nursery's tasks
    return cpu


async def _deliveries(subscription: Any, window: Any, messages: int, delivered: Any) -> None:
    for _ in range(messages):
        await subscription.get()
        window.release()
    delivered.set()


async def _drain(subscription: Any) -> None:
    while True:
        await subscription.get()


async def _consume(metrics: Any, channel: Any) -> None:
    from libp2p.host.ping import PingEvent
    from libp2p.kad_dht.kad_dht import KadDhtEvent
    from libp2p.metrics.swarm import SwarmEvent
    from libp2p.pubsub.pubsub import GossipsubEvent

    async for event in channel:  # Metrics.start_prometheus_server's loop, without its HTTP server
        if isinstance(event, GossipsubEvent):
            metrics.gossipsub.record(event)
        elif isinstance(event, KadDhtEvent):
            metrics.kad_dht.record(event)
        elif isinstance(event, PingEvent):
            metrics.ping.record(event)
        elif isinstance(event, SwarmEvent):
            metrics.swarm.record(event)


VARIANTS = ("plain", "p2p-telemetry", "py-libp2p Metrics")


def swarm_cpu(messages: int = 2000, rounds: int = 5) -> dict[str, float]:
    """Best CPU ms per 1,000 messages of each variant, alternating fresh processes."""
    best = dict.fromkeys(VARIANTS, float("inf"))
    context = multiprocessing.get_context("spawn")
    for _ in range(rounds):
        for variant in VARIANTS:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                cpu = pool.submit(swarm_round, variant, messages).result()
            best[variant] = min(best[variant], cpu / messages * 1e6)
    return best


def profiled_share(messages: int) -> tuple[float, int]:
    """The share of the process's CPU spent in p2p-telemetry's own functions in one instrumented swarm
    round, and how many calls of them: cProfile's own time of each function (the same run, so free of
    the round-to-round noise that the CPU comparison above carries; cProfile's per-call cost inflates
    small functions, so this is an upper bound)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    swarm_round("p2p-telemetry", messages)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())
    ours = [entry for key, entry in stats.items() if "p2p_telemetry" in key[0]]
    return sum(entry[2] for entry in ours) / total, sum(entry[1] for entry in ours)


def _in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def rows(messages: int, rounds: int) -> list[tuple[str, ...]]:
    """The table rows of ``python -m benchmarks``."""
    found: list[tuple[str, ...]] = []
    for event, ns in per_event().items():
        added = ns["p2p-telemetry"] - ns["plain"]
        context = f"{ns['plain']:.0f} -> {ns['p2p-telemetry']:.0f} ns; target <= 500 ns"
        if "py-libp2p Metrics" in ns:
            context += f"; py-libp2p Metrics +{ns['py-libp2p Metrics'] - ns['plain']:.0f} ns"
        found.append((f"libp2p per event: {event}", f"+{added:.0f} ns", context))
    cpu = swarm_cpu(messages, rounds)
    for variant in VARIANTS[1:]:
        overhead = cpu[variant] / cpu["plain"] - 1
        found.append((f"gossipsub A->B->C at full speed: {variant}", f"{overhead:+.1%} CPU",
                      f"{cpu['plain']:.0f} -> {cpu[variant]:.0f} ms CPU per 1,000 messages"
                      + ("; target <= 3 %" if variant == "p2p-telemetry" else "")))
    share, calls = _in_fresh_process(profiled_share, messages)
    found.append(("gossipsub A->B->C: p2p-telemetry's own code", f"{share:.2%} CPU",
                  f"cProfile, one round; {calls / messages:.0f} calls a message for the 3 hosts; target <= 3 %"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per swarm round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="swarm rounds per variant (default 5)")
    args = parser.parse_args()
    print(table(rows(args.messages, args.rounds), ("measurement", "figure", "context")))


if __name__ == "__main__":
    main()
