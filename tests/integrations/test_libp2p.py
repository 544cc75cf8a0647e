"""Real py-libp2p hosts on 127.0.0.1: connections, streams, bytes, peers and pings, read back as exported."""

from __future__ import annotations

import time

from conftest import collect
from p2p_telemetry import HealthChecker, HealthPolicy, Libp2pPingProbe, MetricsCollector

try:
    import multiaddr
    import trio
    from libp2p import new_host
    from libp2p.peer.peerinfo import info_from_p2p_addr
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    from realstack import missing
    missing("py-libp2p (the libp2p extra)")

from p2p_telemetry.integrations.libp2p import PING_PROTOCOL, instrument_host

ECHO = "/p2p-telemetry-test/echo/1.0.0"
LISTEN = "/ip4/127.0.0.1/tcp/0"
PAYLOAD = bytes(range(256)) * 9 + b"tail"  # 2,308 bytes


async def echo(stream) -> None:
    data = await read_exactly(stream, len(PAYLOAD))
    await stream.write(data)
    await stream.close()


async def read_exactly(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.read(n - len(data))
        assert chunk, "stream ended early"
        data += chunk
    return data


def listen():
    return [multiaddr.Multiaddr(LISTEN)]


async def until(check, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not check():
            await trio.sleep(0.01)


def series_count(exported) -> int:
    return sum(len(m.points) for m in exported.metrics.values())


def tcp(direction: str) -> dict:
    return {"p2p.connection.direction": direction, "network.transport": "tcp", "p2p.transport": "tcp"}


def test_three_hosts_connections_pings_streams_and_churn(provider, reader):
    collector = MetricsCollector(provider, sample_resources=False)
    rounds = 3

    async def main() -> dict:
        a, b, c = new_host(), new_host(), new_host()
        handle = instrument_host(a, collector)
        for host in (b, c):
            host.set_stream_handler(ECHO, echo)
        async with a.run(listen()), b.run(listen()), c.run(listen()):
            started = time.perf_counter()
            for host in (b, c):
                await a.connect(info_from_p2p_addr(host.get_addrs()[0]))
            connect_time = time.perf_counter() - started
            await until(lambda: collector.peer_counts()["total"] == 2)

            # Pings through the health checker: rounds run in the host's own trio loop, driven from a
            # thread the way MonitoringSystem's would (trio.from_thread through the probe's trio token).
            checker = HealthChecker(Libp2pPingProbe(a), HealthPolicy(latency_threshold=1.0), timeout=5.0)
            assert checker.trio_token is not None
            for _ in range(rounds):
                await trio.to_thread.run_sync(checker.check_now, collector)
            assert checker.rounds == rounds

            # Streams on a protocol of the test's own, both peers.
            a.set_stream_handler("/p2p-telemetry-test/unused/1.0.0", echo)  # registered when added
            for host in (b, c):
                for _ in range(3):
                    stream = await a.new_stream(host.get_id(), [ECHO])
                    await stream.write(PAYLOAD)
                    assert await read_exactly(stream, len(PAYLOAD)) == PAYLOAD
                    await stream.close()

            await a.disconnect(c.get_id())
            await until(lambda: collector.network.totals()["active_connections"] == 1)
            await until(lambda: collector.peer_counts()["total"] == 1)
            phase1 = collect(reader)

            # 200 short-lived connections from fresh peer identities leave the series count unchanged.
            a_info = info_from_p2p_addr(a.get_addrs()[0])

            async def visit() -> None:
                visitor = new_host()
                async with visitor.run(listen()):
                    await visitor.connect(a_info)
                    await visitor.disconnect(a.get_id())

            await visit()  # the first one creates the inbound series
            await until(lambda: collector.network.totals()["active_connections"] == 1)
            before = series_count(collect(reader))
            churn_started = time.perf_counter()
            for _ in range(10):
                async with trio.open_nursery() as nursery:
                    for _ in range(20):
                        nursery.start_soon(visit)
            await until(lambda: collector.network.totals()["active_connections"] == 1
                        and collector.peer_counts()["total"] == 1)
            after = collect(reader)
            handle.close()
            return {"phase1": phase1, "before": before, "after": after, "connect_time": connect_time,
                    "churn_time": time.perf_counter() - churn_started, "b": str(b.get_id())}

    got = trio.run(main)
    print(f"two connects: {got['connect_time']:.2f}s; 200 visitors: {got['churn_time']:.2f}s")
    exported = got["phase1"]
    assert exported.value("p2p.connection.attempts", tcp("outbound")) == 2
    assert exported["p2p.connection.setup.duration"].point(tcp("outbound")).count == 2
    assert exported.value("p2p.connection.active", tcp("outbound")) == 1
    assert exported["p2p.connection.duration"].point(tcp("outbound")).count == 1
    assert sum(p.value for p in exported["p2p.connection.failures"].points) == 0
    # The peer table: b stays (healthy after its pings), c left with its connection.
    assert exported.value("p2p.peers", {"p2p.peer.health": "healthy"}) == 1
    assert exported.value("p2p.peers", {"p2p.peer.health": "degraded"}) == 0
    assert exported.value("p2p.peers", {"p2p.peer.health": "unhealthy"}) == 0
    assert sum(p.count for p in exported["p2p.peer.latency"].points) == rounds * 2  # one sample per ping
    events = {(p.attributes["p2p.protocol"], p.attributes["p2p.protocol.event"]): p.value
              for p in exported["p2p.protocol.events"].points}
    assert events[(ECHO, "stream_opened")] == 6 and events[(ECHO, "stream_closed")] == 6
    assert events[(PING_PROTOCOL, "stream_opened")] == rounds * 2
    io = {(p.attributes["network.io.direction"], p.attributes["p2p.protocol"]): p.value
          for p in exported["p2p.network.io"].points}
    assert io[("transmit", ECHO)] == 6 * len(PAYLOAD) and io[("receive", ECHO)] == 6 * len(PAYLOAD)
    assert io[("transmit", PING_PROTOCOL)] == rounds * 2 * 32  # ping payloads are 32 bytes
    assert not any(got["b"] in str(p.attributes) for m in exported.metrics.values() for p in m.points)

    after = got["after"]
    assert series_count(after) == got["before"]
    assert after.value("p2p.connection.attempts", tcp("inbound")) == 201
    assert after["p2p.connection.duration"].point(tcp("inbound")).count == 201
    assert after.value("p2p.connection.active", tcp("inbound")) == 0


def test_enable_metrics_events_are_consumed(provider, reader):
    """A host made with enable_metrics=True: its metric channel is drained, ping events become protocol events."""
    from libp2p.host.ping import PingService

    collector = MetricsCollector(provider, sample_resources=False)

    async def main() -> None:
        a, b = new_host(enable_metrics=True), new_host()
        handle = instrument_host(a, collector)
        async with a.run(listen()), b.run(listen()):
            await a.connect(info_from_p2p_addr(b.get_addrs()[0]))
            service = PingService(a)
            for _ in range(150):  # more events than the channel holds (100): the swarm must not block
                await service.ping(b.get_id(), 2)
            await until(lambda: collector.protocols.snapshot().get(PING_PROTOCOL, {}).get("pong") == 300)
        handle.close()

    trio.run(main)
    events = collect(reader)["p2p.protocol.events"]
    assert events.value({"p2p.protocol": PING_PROTOCOL, "p2p.protocol.event": "pong"}) == 300
    assert events.value({"p2p.protocol": PING_PROTOCOL, "p2p.protocol.event": "stream_opened"}) == 150
