"""p2p.transport on every connection metric, from what py-libp2p really dialed or listened on: WebSocket, QUIC, TCP."""

from __future__ import annotations

import pytest
import trio

from realstack import free_port, missing

try:
    import multiaddr
    from libp2p import new_host
    from libp2p.peer.peerinfo import PeerInfo
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import QUIC, TCP, WS, connect, instrumented, running, until

ECHO = "/p2p-telemetry-test/echo/1.0.0"
PAYLOAD = b"z" * 5000


async def echo(stream) -> None:
    data = b""
    while len(data) < len(PAYLOAD):
        data += await stream.read(len(PAYLOAD) - len(data))
    await stream.write(data)
    await stream.close()


def kinds(network: str, stack: str, direction: str) -> dict:
    return {"p2p.connection.direction": direction, "network.transport": network, "p2p.transport": stack}


# A failed QUIC dial waits for its handshake timeout (UDP has no refusal), 10 s a try: not here.
@pytest.mark.parametrize(("address", "network", "stack", "options", "fail"), [
    (WS, "tcp", "ws", {}, True),
    (QUIC, "quic", "quic", {"enable_quic": True}, False),
    (TCP, "tcp", "tcp", {}, True),
], ids=["ws", "quic", "tcp"])
def test_a_connection_and_a_failed_dial_carry_the_transport_dialed(address, network, stack, options, fail):
    hosts = [new_host(listen_addrs=[multiaddr.Multiaddr(address)], **options) for _ in range(3)]
    telemetry, handles = instrumented(hosts[:2])
    nowhere = address.replace("/0", f"/{free_port()}", 1)  # nothing listens there

    async def main() -> dict:
        async with running(hosts[:2], address) as (a, b):
            b.host.set_stream_handler(ECHO, echo)
            await connect(a.host, b.host)
            stream = await a.host.new_stream(b.id, [ECHO])
            await stream.write(PAYLOAD)
            received = b""
            while len(received) < len(PAYLOAD):
                received += await stream.read(len(PAYLOAD) - len(received))
            await stream.close()
            if fail:  # a dial that fails: a peer id nobody runs, at an address where nothing listens
                with pytest.raises(Exception):  # noqa: B017 - py-libp2p's error classes vary by transport
                    await a.host.connect(PeerInfo(hosts[2].get_id(), [multiaddr.Multiaddr(nowhere)]))
            await until(lambda: telemetry[1].collector.network.totals()["active_connections"] == 1)
            return {"a": telemetry[0].collect(), "b": telemetry[1].collect()}

    got = trio.run(main)
    for handle in handles:
        handle.close()
    a, b = got["a"], got["b"]
    outbound, inbound = kinds(network, stack, "outbound"), kinds(network, stack, "inbound")
    assert a.value("p2p.connection.attempts", outbound) == 1 + fail  # the connection, and the failed dial
    failures = {p.attributes["error.type"]: p.value for p in a["p2p.connection.failures"].points if p.value}
    assert failures == ({"refused": 1} if fail else {})  # the socket's refusal, under py-libp2p's wrappers
    assert a.value("p2p.connection.active", outbound) == 1
    assert a["p2p.connection.setup.duration"].point(outbound).count == 1
    assert b.value("p2p.connection.attempts", inbound) == 1
    assert b.value("p2p.connection.active", inbound) == 1
    assert b["p2p.connection.setup.duration"].point(inbound).count == 1
    # No connection metric anywhere carries another transport.
    for exported in (a, b):
        for name in ("p2p.connection.attempts", "p2p.connection.active", "p2p.connection.failures"):
            assert {p.attributes["p2p.transport"] for p in exported[name].points} == {stack}, name
    io = {(p.attributes["network.io.direction"], p.attributes["network.transport"]): p.value
          for p in a["p2p.network.io"].points if p.attributes["p2p.protocol"] == ECHO}
    assert io == {("transmit", network): len(PAYLOAD), ("receive", network): len(PAYLOAD)}
    for t in telemetry:
        t.shutdown()
