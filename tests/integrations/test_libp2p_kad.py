"""Kademlia on three real py-libp2p DHT servers: queries timed once each, inbound requests by type, routing table."""

from __future__ import annotations

import trio

from realstack import missing

try:
    from libp2p.kad_dht.kad_dht import DHTMode
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import connect, instrumented, new_hosts, running


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
