"""Real py-libp2p hosts on 127.0.0.1: connections, streams, bytes, peers and pings, read back as exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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

from libp2p_swarm import until

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
    assert events[(PING_PROTOCOL, "pong")] == rounds * 2
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


NODE = Path(__file__).parent / "nodes" / "libp2p_metrics_node.py"


def run_node(tmp_path: Path, name: str, *args: str, zero_code: bool = False) -> dict:
    out = tmp_path / f"{name}.json"
    command = [sys.executable, str(NODE), str(out), *args]
    env = {**os.environ, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ""}
    if zero_code:
        from test_instrumentor import instrument_command

        command = [instrument_command(), *command]
        env.update(OTEL_METRICS_EXPORTER="none", OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    result = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0 and out.exists(), result.stderr.decode()[-3000:]
    return json.loads(out.read_text())


def test_libp2p_own_metrics_are_the_same_with_p2p_telemetry_attached_and_agree_with_it(tmp_path):
    """py-libp2p's own ``Metrics`` on host A: the same figures alone, with instrument_host, and zero-code; where
    both report a quantity (RPC parts received, Kademlia requests by type, pings), p2p-telemetry agrees."""
    alone = run_node(tmp_path, "alone")["libp2p"]
    instrumented = run_node(tmp_path, "instrumented", "instrument")
    zero_code = run_node(tmp_path, "zero-code", zero_code=True)["libp2p"]
    assert alone["ping_count"] == 7 and alone["gossipsub_publish_total"] == 12 and alone["kad_inbound_total"] > 0
    assert instrumented["libp2p"] == alone
    assert zero_code == alone

    ours, theirs = instrumented["p2p_telemetry"], instrumented["libp2p"]
    rpc = {(a["network.io.direction"], a["p2p.pubsub.rpc.part"]): v for a, v, _ in ours["p2p.pubsub.rpc"]}
    assert rpc[("receive", "publish")] == theirs["gossipsub_publish_total"]
    assert rpc[("receive", "subscription")] == theirs["gossipsub_subopts_total"]
    assert rpc[("receive", "control")] == theirs["gossipsub_control_total"]
    kad = {a["p2p.kad.request.type"]: v for a, v, _ in ours["p2p.kad.inbound.requests"]}
    for request_type in ("find_node", "get_value", "put_value", "get_providers", "add_provider"):
        assert kad[request_type] == theirs[f"kad_inbound_{request_type}_total"], request_type
    assert sum(kad.values()) == theirs["kad_inbound_total"]
    events = {(a["p2p.protocol"], a["p2p.protocol.event"]): v for a, v, _ in ours["p2p.protocol.events"]}
    assert events[(PING_PROTOCOL, "pong")] == theirs["ping_count"]
    assert sum(count for _, _, count in ours["p2p.peer.latency"]) == theirs["ping_count"]
