"""Kademlia on real py-libp2p DHT servers: queries timed once each, inbound requests by type (PING and unknown types
told apart), routing table."""

from __future__ import annotations

import trio

from realstack import missing

try:
    from libp2p.kad_dht.kad_dht import DHTMode
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import connect, instrumented, new_hosts, running, until


def query_counts(exported) -> dict[tuple[str, str], int]:
    if "p2p.kad.query.duration" not in exported:
        return {}
    return {(p.attributes["p2p.kad.request.type"], p.attributes["p2p.kad.query.outcome"]): p.count
            for p in exported["p2p.kad.query.duration"].points}


def delta(after: dict, before: dict) -> dict:
    return {key: n - before.get(key, 0) for key, n in after.items() if n - before.get(key, 0)}


def test_queries_inbound_requests_and_routing_tables():
    hosts = new_hosts(3)
    telemetry, handles = instrumented(hosts)

    async def main() -> dict:
        async with running(hosts, dht=DHTMode.SERVER) as nodes:
            a, b, c = nodes
            await connect(b.host, a.host)
            await connect(c.host, a.host)
            await connect(b.host, c.host)
            for x in nodes:
                for y in nodes:
                    if x is not y:
                        await x.dht.routing_table.add_peer(y.id)
            before = [query_counts(t.collect()) for t in telemetry]  # the service's first refresh included
            made: list[dict] = [{}, {}, {}]

            def note(node: int, request_type: str, outcome: str) -> None:
                made[node][request_type, outcome] = made[node].get((request_type, outcome), 0) + 1

            await a.dht.put_value("/test/key", b"value")
            note(0, "put_value", "ok")
            assert await b.dht.get_value("/test/key") == b"value"
            note(1, "get_value", "ok")
            assert await b.dht.get_value("/test/missing") is None
            note(1, "get_value", "not_found")
            assert await c.dht.provide("content-1") is True
            note(2, "add_provider", "ok")
            assert await b.dht.find_providers("content-1")
            note(1, "get_providers", "ok")
            assert await b.dht.find_providers("content-nobody-has") == []
            note(1, "get_providers", "not_found")
            assert await b.dht.find_peer(c.id) is not None
            note(1, "find_node", "ok")
            await c.dht.refresh_routing_table()
            note(2, "find_node", "ok")
            after = [t.collect() for t in telemetry]
            return {"before": before, "after": after, "made": made,
                    "tables": [n.dht.get_routing_table_size() for n in nodes]}

    got = trio.run(main)
    for handle in handles:
        handle.close()
    for node in range(3):
        exported = got["after"][node]
        # One histogram count per query this node made, by type and outcome: no more, no less.
        assert delta(query_counts(exported), got["before"][node]) == got["made"][node]
        assert exported.value("p2p.kad.routing_table.peers") == got["tables"][node] == 2
        inbound = {p.attributes["p2p.kad.request.type"]: p.value for p in exported["p2p.kad.inbound.requests"].points}
        assert set(inbound) == {"find_node", "get_value", "put_value", "get_providers", "add_provider", "ping", "other"}
    inbound = [{p.attributes["p2p.kad.request.type"]: p.value for p in exported["p2p.kad.inbound.requests"].points}
               for exported in got["after"]]
    total = {key: sum(node[key] for node in inbound) for key in inbound[0]}
    # Every request a node sent was handled by another one: PUT_VALUE to B and C, GET_VALUE from B, ...
    assert total["put_value"] >= 2 and total["get_value"] >= 1 and total["add_provider"] >= 1
    assert total["get_providers"] >= 2 and total["find_node"] >= 1
    durations = got["after"][1]["p2p.kad.query.duration"].point(
        {"p2p.kad.request.type": "get_value", "p2p.kad.query.outcome": "ok"})
    assert 0 < durations.sum < 10 and durations.explicit_bounds[0] == 0.005
    for t in telemetry:
        t.shutdown()


def _request(body: bytes) -> bytes:
    return bytes([len(body)]) + body  # a varint length prefix (bodies here are under 128 bytes)


# Kademlia requests py-libp2p answers without a type flag on its event: PING (as py-libp2p encodes it,
# and as go-libp2p does, with its cluster level field after the type) and a type it does not know.
PING, PING_WITH_CLUSTER_LEVEL, UNKNOWN_TYPE = b"\x08\x05", b"\x08\x05\x50\x01", b"\x08\x09"


def test_ping_and_unknown_requests_are_told_apart():
    from libp2p.io.utils import read_exactly
    from libp2p.kad_dht.common import PROTOCOL_ID

    hosts = new_hosts(2)
    telemetry, handles = instrumented(hosts[:1])  # only the server is instrumented
    sent = {"ping": 0, "other": 0}

    async def main() -> None:
        async with running(hosts, dht=DHTMode.SERVER) as (server, client):
            await connect(client.host, server.host)
            stream = await client.host.new_stream(server.id, [PROTOCOL_ID])
            for body, kind in [(PING, "ping"), (UNKNOWN_TYPE, "other"), (PING_WITH_CLUSTER_LEVEL, "ping"),
                               (UNKNOWN_TYPE, "other"), (UNKNOWN_TYPE, "other"), (PING, "ping")]:
                await stream.write(_request(body))
                sent[kind] += 1
                if kind == "ping":
                    assert await read_exactly(stream, 3) == _request(PING)  # py-libp2p's answer
            await until(lambda: inbound() == sent, what="the server to count every request")
            await stream.close()

    def inbound() -> dict[str, int]:
        exported = telemetry[0].collect()
        counts = {p.attributes["p2p.kad.request.type"]: p.value for p in exported["p2p.kad.inbound.requests"].points}
        return {kind: counts.get(kind, 0) for kind in sent}

    trio.run(main)
    assert inbound() == sent == {"ping": 3, "other": 3}
    for handle in handles:
        handle.close()
    telemetry[0].shutdown()
