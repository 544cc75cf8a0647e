"""Gossipsub on three real py-libp2p hosts: messages per topic and event, sizes, RPC parts, mesh and topic peers."""

from __future__ import annotations

import pytest
import trio

from realstack import missing

try:
    from libp2p.pubsub.pubsub import Pubsub
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import OwnMethodsPubsub, connect, instrumented, new_hosts, running, until

from conftest import collect
from p2p_telemetry import MetricsCollector
from p2p_telemetry.groups.pubsub import PubsubGroup

TOPIC, OTHER_TOPIC, THEIRS = "blocks", "tx", "only-c-cares"
K = 15


@pytest.mark.parametrize("inline", [True, False], ids=["py-libp2p's code run by the hooks", "methods wrapped"])
def test_k_published_k_delivered_per_subscriber_and_every_arrival_accounted_for(inline):
    hosts = new_hosts(3)
    telemetry, handles = instrumented(hosts)
    payloads = [b"block %03d " % i + b"x" * (i * 37) for i in range(K)]
    bad = [b"bad 1", b"bad two"]

    async def main() -> dict:
        async with running(hosts, pubsub=True, pubsub_class=Pubsub if inline else OwnMethodsPubsub) as nodes:
            a, b, c = nodes
            for node, handle in zip(nodes, handles):
                assert set(handle.parts[id(node.pubsub)]._messages.inline.values()) == {inline}
            for node in nodes:
                node.subscriptions[TOPIC] = await node.pubsub.subscribe(TOPIC)
            await c.pubsub.subscribe(THEIRS)  # a topic only C cares about: no other node may report it
            await b.pubsub.subscribe(OTHER_TOPIC)
            # B rejects messages whose data starts with b"bad": each arrival of one is rejected
            b.pubsub.set_topic_validator(TOPIC, lambda peer, msg: not msg.data.startswith(b"bad"), False)
            await connect(a.host, b.host)
            await connect(a.host, c.host)
            await connect(b.host, c.host)
            for x in nodes:
                for y in nodes:
                    if x is not y:
                        await x.pubsub.wait_for_mesh(y.id, TOPIC, timeout=10)
            for data in payloads[:5] + bad + payloads[5:]:
                await a.pubsub.publish(TOPIC, data)
            delivered: dict[str, list[bytes]] = {}

            async def drain(name: str, node) -> None:
                got = delivered[name] = []
                while len([m for m in got if not m.startswith(b"bad")]) < K:
                    got.append((await node.subscriptions[TOPIC].get()).data)

            with trio.fail_after(15):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(drain, "b", b)
                    nursery.start_soon(drain, "c", c)
            # Each arrival is then handled in a task of its own: wait until every one counted as received is
            # also delivered, a duplicate or rejected (it never holds if an arrival goes uncounted).
            def settled(snapshot: dict) -> bool:
                return snapshot["received"] == sum(snapshot[e] for e in ("delivered", "duplicate", "rejected"))
            await until(lambda: all(settled(t.collector.pubsub.snapshot()[TOPIC]) for t in telemetry[1:]),
                        what="every message received to be handled")
            mesh = {name: len(node.router.mesh[TOPIC]) for name, node in zip("abc", nodes)}
            subscribers = {name: len(node.pubsub.peer_topics[TOPIC]) for name, node in zip("abc", nodes)}
            exported = {name: t.collect() for name, t in zip("abc", telemetry)}
            return {"delivered": delivered, "mesh": mesh, "subscribers": subscribers, "exported": exported}

    got = trio.run(main)
    for handle in handles:
        handle.close()
    a, b, c = (got["exported"][name] for name in "abc")

    def events(exported) -> dict[str, int]:
        return {(p.attributes["p2p.pubsub.topic"], p.attributes["p2p.pubsub.event"]): p.value
                for p in exported["p2p.pubsub.messages"].points}

    a_events, b_events, c_events = events(a), events(b), events(c)
    assert a_events[(TOPIC, "published")] == K + len(bad)
    assert b_events[(TOPIC, "published")] == c_events[(TOPIC, "published")] == 0
    # B's validator drops the bad ones: K delivered; C has none: K + 2.
    assert got["delivered"]["b"] == payloads and b_events[(TOPIC, "delivered")] == K
    assert c_events[(TOPIC, "delivered")] == K + len(bad) == len(got["delivered"]["c"])
    assert b_events[(TOPIC, "rejected")] >= len(bad) and c_events[(TOPIC, "rejected")] == 0
    for node_events in (b_events, c_events):
        # every arrival is exactly one of delivered, duplicate, rejected
        assert node_events[(TOPIC, "received")] == sum(node_events[(TOPIC, e)] for e in
                                                       ("delivered", "duplicate", "rejected"))
    # The publisher's own subscription gets its messages too (py-libp2p delivers them locally).
    assert a_events[(TOPIC, "delivered")] == K + len(bad)

    # Sizes: the publisher's histogram holds exactly what it published.
    sizes = a["p2p.pubsub.message.size"].point({"p2p.pubsub.topic": TOPIC})
    published = payloads + bad
    assert (sizes.count, sizes.sum) == (len(published), sum(len(p) for p in published))
    b_sizes = b["p2p.pubsub.message.size"].point({"p2p.pubsub.topic": TOPIC})
    assert b_sizes.count == b_events[(TOPIC, "received")]

    # Mesh and topic peers, as each router holds them.
    for name, exported in zip("abc", (a, b, c)):
        assert exported.value("p2p.pubsub.mesh.peers", {"p2p.pubsub.topic": TOPIC}) == got["mesh"][name] == 2
        assert exported.value("p2p.pubsub.topic.peers", {"p2p.pubsub.topic": TOPIC}) == got["subscribers"][name]
    # No topic value a remote peer chose: A and B never subscribed to THEIRS, and A not to OTHER_TOPIC.
    for exported, own in ((a, {TOPIC}), (b, {TOPIC, OTHER_TOPIC}), (c, {TOPIC, THEIRS})):
        seen = {p.attributes["p2p.pubsub.topic"] for name in ("p2p.pubsub.messages", "p2p.pubsub.mesh.peers",
                                                             "p2p.pubsub.topic.peers", "p2p.pubsub.message.size")
                for p in exported[name].points}
        assert seen <= own | {"other"}, seen
        assert not any(str(h.get_id()) in str(p.attributes) for h in hosts
                       for m in exported.metrics.values() for p in m.points)

    # RPC parts: each received publish RPC carried one of the messages; both directions are counted.
    rpc = {(p.attributes["network.io.direction"], p.attributes["p2p.pubsub.rpc.part"]): p.value
           for p in b["p2p.pubsub.rpc"].points}
    assert rpc[("receive", "publish")] >= b_events[(TOPIC, "received")] > 0
    assert rpc[("receive", "subscription")] >= 2 and rpc[("transmit", "subscription")] >= 2
    sent = {(p.attributes["network.io.direction"], p.attributes["p2p.pubsub.rpc.part"]): p.value
            for p in a["p2p.pubsub.rpc"].points}
    print("A's RPC parts:", sent, "B's:", rpc)
    assert sent[("transmit", "publish")] >= K + len(bad)  # each message left in at least one RPC
    for telemetry_ in telemetry:
        telemetry_.shutdown()


def test_a_closed_instrumentation_counts_nothing_more_and_the_node_goes_on():
    hosts = new_hosts(2)
    telemetry, handles = instrumented(hosts)

    def counts() -> dict:
        exported = telemetry[1].collect()
        rpc = {(p.attributes["network.io.direction"], p.attributes["p2p.pubsub.rpc.part"]): p.value
               for p in exported["p2p.pubsub.rpc"].points}
        messages = {p.attributes["p2p.pubsub.event"]: p.value for p in exported["p2p.pubsub.messages"].points}
        return {"rpc": rpc, "messages": messages}

    async def main() -> tuple[dict, dict]:
        async with running(hosts, pubsub=True) as (a, b):
            subscription = await b.pubsub.subscribe(TOPIC)
            await a.pubsub.subscribe(TOPIC)
            await connect(a.host, b.host)
            await a.pubsub.wait_for_mesh(b.id, TOPIC, timeout=10)

            async def publish_and_receive(n: int) -> None:
                for i in range(n):
                    await a.pubsub.publish(TOPIC, b"message %d" % i)
                with trio.fail_after(10):
                    for _ in range(n):
                        await subscription.get()

            await publish_and_receive(3)
            # B sends an RPC's event once it has handled it, before reading the next RPC: a message delivered
            # after these says their events were sent.
            await publish_and_receive(1)
            before = counts()
            handles[1].close()
            await publish_and_receive(3)  # B's streams are still open, and still hand py-libp2p's events on
            await publish_and_receive(1)
            return before, counts()

    before, after = trio.run(main)
    handles[0].close()
    assert before["rpc"][("receive", "publish")] >= 4 and before["messages"]["delivered"] == 4
    assert after == before
    for t in telemetry:
        t.shutdown()


def test_topics_are_bounded_by_max_topics(provider, reader):
    from conftest import collect
    from p2p_telemetry import MetricsCollector

    collector = MetricsCollector(provider, sample_resources=False)
    group: PubsubGroup = collector.pubsub
    limit = group.topics.capacity
    assert limit == 64
    for i in range(limit + 10):
        group.topic(f"topic-{i}", own=True).published.add(1)
    group.topic("never-subscribed").received.add(3)  # a topic of a remote peer: never admitted
    group.topic(b"not a str", own=True).published.add(1)
    exported = collect(reader)
    topics = {p.attributes["p2p.pubsub.topic"] for p in exported["p2p.pubsub.messages"].points}
    assert len(topics) == limit + 1 and "other" in topics and "never-subscribed" not in topics
    published = {(p.attributes["p2p.pubsub.topic"], p.attributes["p2p.pubsub.event"]): p.value
                 for p in exported["p2p.pubsub.messages"].points}
    assert published[("other", "published")] == 10 + 1 and published[("other", "received")] == 3
    assert sum(v for (t, e), v in published.items() if e == "published") == limit + 11


def test_max_topics_bounds_the_topics_reported_by_name(provider, reader):
    pubsub = MetricsCollector(provider, sample_resources=False, max_topics=2).pubsub
    for topic in ("a", "b", "c"):
        pubsub.topic(topic, own=True).published.add(1)
    points = {p.attributes["p2p.pubsub.topic"]: p.value for p in collect(reader)["p2p.pubsub.messages"].points
              if p.attributes["p2p.pubsub.event"] == "published"}
    assert points == {"a": 1, "b": 1, "other": 1}


def test_max_topics_must_fit_the_cardinality_limit(provider):
    with pytest.raises(ValueError, match="max_topics"):
        MetricsCollector(provider, max_topics=1000)
    with pytest.raises(TypeError, match="max_topics"):
        MetricsCollector(provider, max_topics="64")  # type: ignore[arg-type]
