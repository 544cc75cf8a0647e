"""An instrumented py-libp2p node against a second node: gossipsub, a Kademlia DHT, health checks, Prometheus.

    python examples/libp2p_node.py [--duration SECONDS] [--port PORT]

Needs the libp2p extra (``pip install p2p-telemetry[libp2p]``). The node dials its peer, runs a
``MonitoringSystem`` whose health checker pings the peer (``/ipfs/ping/1.0.0``) every half second,
exchanges messages on a protocol of its own, receives the gossipsub messages its peer publishes
and answers its peer's Kademlia requests. Metrics are served at http://127.0.0.1:PORT/metrics
while it runs; at the end it prints what it served.
"""

from __future__ import annotations

import argparse
import urllib.request
from contextlib import AsyncExitStack

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.records.validator import Validator
from libp2p.tools.anyio_service import background_trio_service

from p2p_telemetry import (
    AlertConfig,
    HealthChecker,
    Libp2pPingProbe,
    MetricsCollector,
    MonitoringConfig,
    MonitoringSystem,
    configure,
    setup_info,
)
from p2p_telemetry.integrations.libp2p import instrument_host

CHAT = TProtocol("/example/chat/1.0.0")
TOPIC = "example-news"
LISTEN = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
SERIES = ("p2p_connection_active", "p2p_network_io_bytes_total", "p2p_peers", "p2p_peer_latency_seconds_count",
          "p2p_protocol_events_total", "p2p_pubsub_messages_total", "p2p_pubsub_mesh_peers",
          "p2p_kad_inbound_requests_total", "p2p_kad_query_duration_seconds_count", "p2p_identify_events_total",
          "p2p_peer_protocols")


class Notes(Validator):
    """Values under ``/notes/``: any non-empty value."""

    def validate(self, key: str, value: bytes) -> None:
        if not value:
            raise ValueError("empty note")

    def select(self, key: str, values: list[bytes]) -> int:
        return 0


async def answer(stream: INetStream) -> None:
    """The peer's side of the chat protocol: read one message, reply, close."""
    message = await stream.read(1024)
    await stream.write(b"ack " + message)
    await stream.close()


def services(host: IHost) -> tuple[Pubsub, GossipSub, KadDHT]:
    router = GossipSub(protocols=[TProtocol("/meshsub/1.1.0")], degree=2, degree_low=1, degree_high=3,
                       heartbeat_interval=1)
    dht = KadDHT(host, DHTMode.SERVER)
    dht.register_validator("notes", Notes())
    return Pubsub(host, router), router, dht


async def run(duration: float, collector: MetricsCollector) -> None:
    node, peer = new_host(), new_host()
    handle = instrument_host(node, collector)  # first: the node's pubsub and DHT are found as they are made
    peer.set_stream_handler(CHAT, answer)
    (pubsub, router, dht), (peer_pubsub, peer_router, peer_dht) = services(node), services(peer)
    async with AsyncExitStack() as stack:
        for service in (pubsub, router, dht, peer_pubsub, peer_router, peer_dht):
            await stack.enter_async_context(background_trio_service(service))
        await stack.enter_async_context(node.run(LISTEN))
        await stack.enter_async_context(peer.run(LISTEN))
        subscription = await pubsub.subscribe(TOPIC)
        await peer_pubsub.subscribe(TOPIC)
        checker = HealthChecker(Libp2pPingProbe(node), timeout=2.0)  # made in trio: rounds run in this loop
        config = MonitoringConfig(health_checker=checker, health_check_interval=0.5,
                                  alert_config=AlertConfig(sinks=[]))
        # The node's own collector: it stays reported after the monitoring system stops.
        with MonitoringSystem(config, metrics=collector) as monitoring:
            await node.connect(info_from_p2p_addr(peer.get_addrs()[0]))
            await peer_dht.routing_table.add_peer(node.get_id())
            await peer_pubsub.wait_for_mesh(node.get_id(), TOPIC, timeout=10)
            with trio.move_on_after(duration):
                for i in range(1_000_000):
                    stream = await node.new_stream(peer.get_id(), [CHAT])
                    await stream.write(f"hello {i}".encode())
                    await stream.read(1024)
                    await stream.close()
                    await peer_pubsub.publish(TOPIC, f"news {i}".encode())
                    await subscription.get()
                    await peer_dht.put_value(f"/notes/{i}", b"a note")  # the node answers PUT_VALUE
                    await dht.get_value(f"/notes/{i}")  # a query of the node's own
                    await trio.sleep(0.1)
            await trio.to_thread.run_sync(checker.check_now, monitoring.metrics)  # one last round, for the record
    # The host has stopped; its counts stay reported. (handle.close() would also stop reading its mesh and tables.)
    assert not handle.closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    parser.add_argument("--port", type=int, default=9464, help="Prometheus port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()
    provider = configure(service_name="libp2p-example-node", exporters=["prometheus"], prometheus_port=args.port)
    info = setup_info(provider)
    assert info is not None and info.prometheus_url is not None
    url = info.prometheus_url
    print(f"serving Prometheus metrics at {url} for {args.duration:g} s")
    collector = MetricsCollector(provider)
    trio.run(run, args.duration, collector)
    print(f"network: {collector.network_snapshot()}")
    print(f"peers:   {collector.peer_counts()}")
    print(f"pubsub:  {collector.pubsub.snapshot()}")
    with urllib.request.urlopen(url, timeout=5) as response:
        served = [line for line in response.read().decode().splitlines() if line.startswith(SERIES)]
    print("\n".join(served))
    provider.shutdown()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
