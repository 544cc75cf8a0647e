"""An instrumented py-libp2p node against a second node, with health checks, serving Prometheus.

    python examples/libp2p_node.py [--duration SECONDS] [--port PORT]

Needs the libp2p extra (``pip install p2p-telemetry[libp2p]``). The node dials its peer, runs a
``MonitoringSystem`` whose health checker pings the peer (``/ipfs/ping/1.0.0``) every half second,
and exchanges messages on a protocol of its own. Metrics are served at
http://127.0.0.1:PORT/metrics while it runs; at the end it prints what it served.
"""

from __future__ import annotations

import argparse
import urllib.request

import multiaddr
import trio
from libp2p import new_host
from libp2p.peer.peerinfo import info_from_p2p_addr

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

CHAT = "/example/chat/1.0.0"
LISTEN = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]


async def answer(stream) -> None:
    """The peer's side of the chat protocol: read one message, reply, close."""
    message = await stream.read(1024)
    await stream.write(b"ack " + message)
    await stream.close()


async def run(duration: float, collector: MetricsCollector) -> None:
    node, peer = new_host(), new_host()
    peer.set_stream_handler(CHAT, answer)
    async with node.run(LISTEN), peer.run(LISTEN):
        checker = HealthChecker(Libp2pPingProbe(node), timeout=2.0)  # made in trio: rounds run in this loop
        config = MonitoringConfig(health_checker=checker, health_check_interval=0.5,
                                  alert_config=AlertConfig(sinks=[]))
        # The node's own collector: it stays reported after the monitoring system stops.
        with MonitoringSystem(config, metrics=collector) as monitoring:
            handle = instrument_host(node, monitoring.metrics)
            await node.connect(info_from_p2p_addr(peer.get_addrs()[0]))
            with trio.move_on_after(duration):
                for i in range(1_000_000):
                    stream = await node.new_stream(peer.get_id(), [CHAT])
                    await stream.write(f"hello {i}".encode())
                    await stream.read(1024)
                    await stream.close()
                    await trio.sleep(0.1)
            await trio.to_thread.run_sync(checker.check_now, monitoring.metrics)  # one last round, for the record
            handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    parser.add_argument("--port", type=int, default=9464, help="Prometheus port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()
    provider = configure(service_name="libp2p-example-node", exporters=["prometheus"], prometheus_port=args.port)
    url = setup_info(provider).prometheus_url
    print(f"serving Prometheus metrics at {url} for {args.duration:g} s")
    collector = MetricsCollector(provider)
    trio.run(run, args.duration, collector)
    print(f"network: {collector.network_snapshot()}")
    print(f"peers:   {collector.peer_counts()}")
    with urllib.request.urlopen(url, timeout=5) as response:
        served = [line for line in response.read().decode().splitlines()
                  if line.startswith(("p2p_connection_active", "p2p_network_io_bytes_total", "p2p_peers",
                                      "p2p_peer_latency_seconds_count", "p2p_protocol_events_total"))]
    print("\n".join(served))
    provider.shutdown()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
