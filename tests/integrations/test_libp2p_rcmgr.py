"""The resource manager of a real py-libp2p host: what it holds now, and the requests it refused."""

from __future__ import annotations

import trio

from realstack import missing

try:
    from libp2p import new_host
    from libp2p.rcmgr import new_resource_manager
    from libp2p.rcmgr.manager import ResourceLimits
    from libp2p.rcmgr.metrics import MetricType
except ImportError:  # pragma: no cover - the libp2p extra is part of the test install
    missing("py-libp2p (the libp2p extra)")

from libp2p_swarm import connect, instrumented, new_hosts, running


def test_usage_and_blocked_requests_as_the_manager_counts_them():
    manager = new_resource_manager(limits=ResourceLimits(max_connections=2))  # py-libp2p takes 2 per connection
    hosts = [new_host(resource_manager=manager), *new_hosts(2)]
    telemetry, handles = instrumented(hosts)

    async def main() -> dict:
        async with running(hosts) as (a, b, c):
            await connect(b.host, a.host)
            with trio.fail_after(10):
                await connect(c.host, a.host)  # one connection more than A's manager allows
            exported = telemetry[0].collect()
            truth = {"connections": manager._current_connections, "streams": manager._current_streams,
                     "memory": manager._current_memory, "open": len(a.host.get_network().get_connections()),
                     "blocked_streams": manager.metrics.get_counter(MetricType.STREAM_BLOCKS),
                     "blocked_connections": manager.metrics.get_counter(MetricType.CONNECTION_BLOCKS),
                     "blocked_memory": manager.metrics.get_counter(MetricType.MEMORY_BLOCKS)}
            return {"exported": exported, "truth": truth, "b": telemetry[1].collect()}

    got = trio.run(main)
    for handle in handles:
        handle.close()
    exported, truth = got["exported"], got["truth"]
    usage = {p.attributes["p2p.rcmgr.resource"]: p.value for p in exported["p2p.rcmgr.usage"].points}
    assert {p.attributes["p2p.rcmgr.scope"] for p in exported["p2p.rcmgr.usage"].points} == {"system"}
    assert usage == {"connections": truth["connections"], "streams": truth["streams"]}
    assert truth["open"] == 1  # (py-libp2p's connect returns quietly when the manager refuses)
    assert exported.value("p2p.rcmgr.memory", {"p2p.rcmgr.scope": "system"}) == truth["memory"]
    blocked = {p.attributes["p2p.rcmgr.resource"]: p.value for p in exported["p2p.rcmgr.blocked"].points}
    # py-libp2p's own counts of the refusals
    assert blocked == {"connections": truth["blocked_connections"], "streams": truth["blocked_streams"],
                       "memory": truth["blocked_memory"]}
    assert blocked["connections"] > 0
    # A host whose manager never refused anything reports zeros, and its own usage.
    assert {p.value for p in got["b"]["p2p.rcmgr.blocked"].points} == {0}
    for t in telemetry:
        t.shutdown()
