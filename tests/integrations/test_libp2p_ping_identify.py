"""Ping round trips into p2p.peer.latency exactly once, whoever pings; identify events and the protocols peers speak."""

from __future__ import annotations

import trio

from realstack import missing

try:
    from libp2p.host.ping import PingService
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import connect, instrumented, new_hosts, running, until

from p2p_telemetry import HealthChecker, HealthPolicy, Libp2pPingProbe

PING = "/ipfs/ping/1.0.0"
ECHO = "/p2p-telemetry-test/echo/1.0.0"


def latency_count(exported) -> int:
    return sum(p.count for p in exported["p2p.peer.latency"].points) if "p2p.peer.latency" in exported else 0


def test_every_ping_is_one_latency_sample_whoever_pings():
    hosts = new_hosts(3)
    telemetry, handles = instrumented(hosts)
    own_pings, probe_rounds = 6, 3

    async def main() -> dict:
        async with running(hosts) as nodes:
            a, b, c = nodes
            await connect(a.host, b.host)
            await connect(a.host, c.host)
            service = PingService(a.host)
            rtts = []
            for _ in range(own_pings // 2):
                rtts += await service.ping(b.id, 2)  # two round trips on one stream
            # The health checker's probe: its round trips reach p2p.peer.latency through the checker only.
            checker = HealthChecker(Libp2pPingProbe(a.host), HealthPolicy(latency_threshold=1.0), timeout=5.0)
            for _ in range(probe_rounds):
                await trio.to_thread.run_sync(checker.check_now, telemetry[0].collector)
            # A round trip that fails: C answers pings with the wrong bytes.
            async def wrong_pong(stream) -> None:
                await stream.read(32)
                await stream.write(b"\x00" * 32)

            c.host.set_stream_handler(PING, wrong_pong)
            failed = False
            try:
                await service.ping(c.id, 1)
            except ValueError:
                failed = True
            return {"rtts": rtts, "a": telemetry[0].collect(), "b": telemetry[1].collect(), "failed": failed}

    got = trio.run(main)
    for handle in handles:
        handle.close()
    a = got["a"]
    assert len(got["rtts"]) == own_pings
    # B and C are in A's peer table: each probe round pings both.
    assert latency_count(a) == own_pings + probe_rounds * 2
    events = {(p.attributes["p2p.protocol"], p.attributes["p2p.protocol.event"]): p.value
              for p in a["p2p.protocol.events"].points}
    assert events[(PING, "pong")] == own_pings + probe_rounds * 2
    # The responder measured nothing.
    assert latency_count(got["b"]) == 0
    assert got["failed"] and events[(PING, "ping_failure")] == 1
    latency = a["p2p.peer.latency"]
    assert all(p.sum < 5 and p.min >= 0 for p in latency.points)
    for t in telemetry:
        t.shutdown()


def test_identify_events_and_the_protocols_connected_peers_speak():
    hosts = new_hosts(3)
    telemetry, handles = instrumented(hosts)

    async def echo(stream) -> None:
        await stream.close()

    async def main() -> dict:
        hosts[1].set_stream_handler(ECHO, echo)  # only B speaks the test protocol (A registers it too, below)
        hosts[0].set_stream_handler(ECHO, echo)
        async with running(hosts) as nodes:
            a, b, c = nodes
            await connect(a.host, b.host)
            await connect(a.host, c.host)
            identify = telemetry[0].collector.identify

            def identified() -> bool:
                events = {cell.attributes["p2p.identify.event"]: cell.total for cell in identify._events}
                return events.get("received", 0) >= 2 and events.get("sent", 0) >= 2
            await until(identified, what="A to identify B and C, and answer theirs")
            # Ground truth from A's peerstore: who announced what.
            store = a.host.get_peerstore()
            announced = {str(peer): set(store.get_protocols(peer)) for peer in (b.id, c.id)}
            return {"a": telemetry[0].collect(), "announced": announced,
                    "handlers": {str(p) for p in a.host.get_mux().handlers}}

    got = trio.run(main)
    for handle in handles:
        handle.close()
    a = got["a"]
    events = {p.attributes["p2p.identify.event"]: p.value for p in a["p2p.identify.events"].points}
    assert events["received"] == 2 and events["sent"] == 2 and events["error"] == 0
    protocols = {p.attributes["p2p.protocol"]: p.value for p in a["p2p.peer.protocols"].points}
    # One point per protocol A has a handler for, each the number of connected peers that announced it.
    assert set(protocols) == got["handlers"]
    for protocol, peers in protocols.items():
        assert peers == sum(protocol in announced for announced in got["announced"].values()), protocol
    assert protocols[ECHO] == 1 and protocols[PING] == 2
    for t in telemetry:
        t.shutdown()
