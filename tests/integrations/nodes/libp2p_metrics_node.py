"""Two py-libp2p hosts with py-libp2p's own metrics on host A; prints what ``libp2p.metrics.Metrics`` counted.

Usage: libp2p_metrics_node.py OUT_JSON [instrument]

Host A is made with ``enable_metrics=True`` and a ``libp2p.metrics.Metrics`` reading its channel
(the loop of ``Metrics.start_prometheus_server``, without its HTTP server). B publishes K gossipsub
messages that A receives, A pings B N times, and B makes Kademlia requests that A answers. With
``instrument``, both hosts are instrumented with ``instrument_host`` (A on its own collector);
under ``opentelemetry-instrument`` the zero-code instrumentor does it. The JSON holds py-libp2p's
figures for A (summed over peer ids) and, when A was instrumented, p2p-telemetry's.
"""

import json
import sys
from pathlib import Path

import trio
from libp2p import new_host
from libp2p.host.ping import PingEvent, PingService
from libp2p.kad_dht.kad_dht import DHTMode, KadDhtEvent
from libp2p.metrics.metrics import Metrics
from libp2p.metrics.swarm import SwarmEvent
from libp2p.pubsub.pubsub import GossipsubEvent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from libp2p_swarm import connect, new_hosts, running, until

K, N, TOPIC = 12, 7, "side-by-side"
# Sample names as prometheus_client exposes them (it adds _total to a counter's name).
COUNTERS = ("gossipsub_received_total", "gossipsub_publish_total", "gossipsub_subopts_total", "gossipsub_control_total",
            "kad_inbound_total", "kad_inbound_find_node_total", "kad_inbound_get_value_total",
            "kad_inbound_put_value_total", "kad_inbound_get_providers_total", "kad_inbound_add_provider_total",
            "swarm_incoming_conn_total", "swarm_dial_attempt_total", "ping_count")


async def consume(metrics: Metrics, channel: trio.MemoryReceiveChannel) -> None:
    """``Metrics.start_prometheus_server``'s loop, without the HTTP server."""
    async for event in channel:
        if isinstance(event, PingEvent):
            metrics.ping.record(event)
        elif isinstance(event, GossipsubEvent):
            metrics.gossipsub.record(event)
        elif isinstance(event, KadDhtEvent):
            metrics.kad_dht.record(event)
        elif isinstance(event, SwarmEvent):
            metrics.swarm.record(event)


def totals() -> dict:
    from prometheus_client import REGISTRY

    found = dict.fromkeys(COUNTERS, 0.0)
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
    return found


async def main(instrument: bool) -> dict:
    a, b = new_host(enable_metrics=True), *new_hosts(1)
    metrics = Metrics()
    channel = a.get_metrics_recv_channel()
    ours = None
    if instrument:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from p2p_telemetry import MetricsCollector
        from p2p_telemetry.integrations.libp2p import instrument_host

        reader = InMemoryMetricReader()
        collector_a = MetricsCollector(MeterProvider(metric_readers=[reader]), sample_resources=False)
        instrument_host(a, collector_a)
        instrument_host(b, MetricsCollector(MeterProvider(), sample_resources=False))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume, metrics, channel)
        async with running([a, b], pubsub=True, dht=DHTMode.SERVER) as (node_a, node_b):
            subscription = await node_a.pubsub.subscribe(TOPIC)
            await node_b.pubsub.subscribe(TOPIC)
            await connect(b, a)
            await node_b.pubsub.wait_for_mesh(a.get_id(), TOPIC, timeout=10)
            await node_a.pubsub.wait_for_mesh(b.get_id(), TOPIC, timeout=10)
            for i in range(K):
                await node_b.pubsub.publish(TOPIC, b"message %d" % i)
            for _ in range(K):
                await subscription.get()
            service = PingService(a)
            for _ in range(N):
                await service.ping(b.get_id(), 1)
            await node_b.dht.routing_table.add_peer(a.get_id())
            await node_b.dht.put_value("/test/side-by-side", b"value")
            await node_b.dht.get_value("/test/side-by-side")
            await node_b.dht.provide("side-by-side-content")
            await node_b.dht.find_providers("side-by-side-content")
            await until(lambda: channel.statistics().current_buffer_used == 0, what="Metrics to read every event")
            await trio.lowlevel.checkpoint()  # let the consumer record the last event it received
            result = {"libp2p": totals()}
            if instrument:
                exported = reader.get_metrics_data()
                points = {m.name: [(dict(p.attributes), getattr(p, "value", None), getattr(p, "count", None))
                                   for p in m.data.data_points]
                          for rm in exported.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
                ours = {name: points.get(name, []) for name in (
                    "p2p.pubsub.rpc", "p2p.kad.inbound.requests", "p2p.protocol.events", "p2p.peer.latency")}
                result["p2p_telemetry"] = ours
            nursery.cancel_scope.cancel()
    return result


if __name__ == "__main__":
    figures = trio.run(main, len(sys.argv) > 2 and sys.argv[2] == "instrument")
    Path(sys.argv[1]).write_text(json.dumps(figures))
