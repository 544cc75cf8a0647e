"""Circuit relay v2 on four real py-libp2p hosts: reservations accepted and denied, a relayed connection, a failed
circuit; relayed connections carry p2p.transport=circuit."""

from __future__ import annotations

import multiaddr
import pytest
import trio

from realstack import missing

try:
    from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
    from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID, CircuitV2Protocol
    from libp2p.relay.circuit_v2.resources import RelayLimits
    from libp2p.relay.circuit_v2.transport import CircuitV2Transport
    from libp2p.tools.anyio_service import background_trio_service
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import connect, instrumented, new_hosts, running, until

ECHO = "/p2p-telemetry-test/echo/1.0.0"


def relay_events(exported) -> dict[str, int]:
    return {p.attributes["p2p.relay.event"]: p.value for p in exported["p2p.relay.events"].points}


def test_reservations_a_relayed_connection_and_a_failed_circuit():
    relay, destination, source, latecomer = hosts = new_hosts(4)
    telemetry, handles = instrumented(hosts)
    limits = RelayLimits(duration=3600, data=1 << 24, max_circuit_conns=4, max_reservations=2)

    async def echo(stream) -> None:
        await stream.write(await stream.read(100))
        await stream.close()

    async def main() -> dict:
        protocols = [CircuitV2Protocol(relay, limits=limits, allow_hop=True),
                     *(CircuitV2Protocol(host, limits=limits) for host in hosts[1:])]
        config = RelayConfig(roles=RelayRole.STOP | RelayRole.CLIENT, limits=limits)
        destination.set_stream_handler(ECHO, echo)
        async with running(hosts), trio.open_nursery() as nursery:
            for protocol in protocols:
                nursery.start_soon(_run_service, protocol)
            for protocol in protocols:
                await protocol.event_started.wait()
            clients = [CircuitV2Transport(host, protocol, config) for host, protocol in zip(hosts, protocols)]
            for host in hosts[1:]:
                await connect(host, relay)

            async def reserve(client: int) -> bool:
                stream = await hosts[client].new_stream(relay.get_id(), [PROTOCOL_ID])
                return await clients[client].reserve(stream, relay.get_id(), nursery)

            assert await reserve(1)  # the destination's reservation
            circuit = multiaddr.Multiaddr(f"{relay.get_addrs()[0]}/p2p-circuit/p2p/{destination.get_id()}")
            conn = await clients[2].dial(circuit)  # the source reserves too (client role), then connects
            stream = await source.new_stream(destination.get_id(), [ECHO])
            await stream.write(b"through the relay")
            assert await stream.read(100) == b"through the relay"
            assert not await reserve(3)  # the relay holds two reservations: the latecomer is denied
            with pytest.raises(Exception):  # noqa: B017 - py-libp2p's error classes vary
                await clients[2].dial(multiaddr.Multiaddr(
                    f"{relay.get_addrs()[0]}/p2p-circuit/p2p/{latecomer.get_id()}"))  # it has no reservation
            during = [t.collect() for t in telemetry]
            await conn.close()
            await until(lambda: relay_events(telemetry[0].collect()).get("circuit_closed") == 1)
            await until(lambda: telemetry[1].collector.network.totals()["active_connections"] == 1)
            after = [t.collect() for t in telemetry]
            nursery.cancel_scope.cancel()
        return {"during": during, "after": after}

    got = trio.run(main)
    for handle in handles:
        handle.close()
    relay_during, destination_during, source_during, latecomer_during = got["during"]
    # Accepted: the destination's, the source's, and its refresh before its second dial (a client reserves first).
    assert relay_events(relay_during) == {"reservation_accepted": 3, "reservation_denied": 1, "circuit_opened": 1,
                                          "circuit_closed": 0, "circuit_failed": 1}
    assert relay_events(destination_during) == {"reservation_accepted": 1, "reservation_denied": 0,
                                                "circuit_opened": 1, "circuit_closed": 0, "circuit_failed": 0}
    assert relay_events(source_during) == {"reservation_accepted": 2, "reservation_denied": 0, "circuit_opened": 1,
                                           "circuit_closed": 0, "circuit_failed": 1}
    assert relay_events(latecomer_during)["reservation_denied"] == 1
    circuit = {"network.transport": "tcp", "p2p.transport": "circuit"}
    assert source_during.value("p2p.connection.active", {"p2p.connection.direction": "outbound", **circuit}) == 1
    assert source_during.value("p2p.connection.attempts", {"p2p.connection.direction": "outbound", **circuit}) == 1
    assert destination_during.value("p2p.connection.active", {"p2p.connection.direction": "inbound", **circuit}) == 1
    relay_after, destination_after, source_after, _ = got["after"]
    assert relay_events(relay_after)["circuit_closed"] == 1
    assert relay_events(source_after)["circuit_closed"] == relay_events(destination_after)["circuit_closed"] == 1
    lifetime = destination_after["p2p.connection.duration"].point({"p2p.connection.direction": "inbound", **circuit})
    assert lifetime.count == 1
    for t in telemetry:
        t.shutdown()


async def _run_service(protocol) -> None:
    async with background_trio_service(protocol):
        await trio.sleep_forever()
