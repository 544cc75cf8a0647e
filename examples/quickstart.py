"""Quick start: a small node on loopback, instrumented with p2p-telemetry, serving Prometheus.

    python examples/quickstart.py [--duration SECONDS] [--port PORT]

The node runs an asyncio server and a few clients that exchange messages of the four
default protocols; every byte, connection and protocol event is counted. Metrics are
served at http://127.0.0.1:9464/metrics while it runs; at the end it prints what it served.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import urllib.request

from p2p_telemetry import HealthStatus, MetricsCollector, configure, setup_info

PROTOCOLS = ("task", "discovery", "resource", "health")


async def serve(collector: MetricsCollector) -> asyncio.AbstractServer:
    net = collector.network

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        net.connection_opened("inbound", "tcp")
        opened = time.monotonic()
        try:
            while line := await reader.readline():
                protocol = line.split(b" ", 1)[0].decode()
                net.bytes_received(len(line), protocol=protocol)
                reply = b"ok " + line
                writer.write(reply)
                await writer.drain()
                net.bytes_sent(len(reply), protocol=protocol)
        finally:
            net.connection_closed("inbound", "tcp", duration=time.monotonic() - opened)
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def client(collector: MetricsCollector, port: int, peer_id: str, until: float) -> None:
    net, rng = collector.network, random.Random(peer_id)
    with net.connecting("outbound", "tcp"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()
    while time.monotonic() < until:
        protocol = rng.choice(PROTOCOLS)
        message = f"{protocol} {'x' * rng.randint(10, 500)}\n".encode()
        sent = time.monotonic()
        writer.write(message)
        await writer.drain()
        net.bytes_sent(len(message), protocol=protocol)
        reply = await reader.readline()
        net.bytes_received(len(reply), protocol=protocol)
        collector.protocols.increment(protocol, "request")
        collector.peers.update(peer_id, health=HealthStatus.HEALTHY, latency=time.monotonic() - sent,
                               reputation=round(rng.uniform(0.5, 1.0), 2))
        await asyncio.sleep(0.05)
    writer.close()
    await writer.wait_closed()
    net.connection_closed("outbound", "tcp", duration=time.monotonic() - opened)


async def run(duration: float) -> MetricsCollector:
    collector = MetricsCollector()  # the global provider that configure() installed
    server = await serve(collector)
    port = server.sockets[0].getsockname()[1]
    until = time.monotonic() + duration
    await asyncio.gather(*(client(collector, port, f"peer-{i}", until) for i in range(3)))
    server.close()
    await server.wait_closed()
    return collector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    parser.add_argument("--port", type=int, default=9464, help="Prometheus port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()
    provider = configure(service_name="quickstart-node", exporters=["prometheus"], prometheus_port=args.port)
    url = setup_info(provider).prometheus_url
    print(f"serving Prometheus metrics at {url} for {args.duration:g} s")
    collector = asyncio.run(run(args.duration))
    print(f"network: {collector.network_snapshot()}")
    print(f"peers:   {collector.peer_counts()}")
    with urllib.request.urlopen(url, timeout=5) as response:
        served = [line for line in response.read().decode().splitlines()
                  if line.startswith(("p2p_network_io_bytes_total", "p2p_peers", "p2p_protocol_events_total"))]
    print("\n".join(served))
    provider.shutdown()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
