"""``p2p-telemetry demo --libp2p``: a real gossipsub/Kademlia swarm of py-libp2p hosts, in the live view and on
the Prometheus endpoint."""

from __future__ import annotations

import sys
from pathlib import Path

from test_instrumentor import samples

from realstack import Process, free_port, http_get, wait_for


def test_demo_libp2p_shows_a_gossipsub_and_kademlia_swarm(tmp_path: Path):
    port = free_port()
    demo = Process([sys.executable, "-m", "p2p_telemetry.cli", "demo", "--libp2p", "--peers", "3", "--duration", "12",
                    "--prometheus-port", str(port)], tmp_path / "demo.log", env={"PYTHONUNBUFFERED": "1"})
    try:
        def busy() -> str | None:
            try:
                text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
            except OSError:
                return None
            messages = samples(text, "p2p_pubsub_messages_total")
            delivered = sum(v for labels, v in messages.items() if ("p2p_pubsub_event", "delivered") in labels)
            queries = samples(text, "p2p_kad_query_duration_seconds_count")
            latency = samples(text, "p2p_peer_latency_seconds_count")
            return text if delivered > 3 and sum(queries.values()) > 0 and sum(latency.values()) > 0 else None
        text = wait_for(busy, 40, "the libp2p demo's swarm to deliver messages, query the DHT and ping")
        mesh = samples(text, "p2p_pubsub_mesh_peers")
        assert mesh[frozenset({("p2p_pubsub_topic", "demo-blocks")})] >= 1
        assert samples(text, "p2p_kad_routing_table_peers")[frozenset()] == 3
        assert samples(text, "p2p_peers")[frozenset({("p2p_peer_health", "healthy")})] == 3
        protocols = {dict(labels)["p2p_protocol"]: v for labels, v in samples(text, "p2p_peer_protocols").items()}
        assert protocols["/meshsub/1.1.0"] == protocols["/ipfs/kad/1.0.0"] == 3
        wait_for(lambda: not demo.alive(), 40, "the demo to stop after its duration")
        assert demo.proc.returncode == 0, demo.output()[-3000:]
        output = demo.output()
        assert "pubsub       demo-blocks:" in output and "kademlia     answered" in output
        assert "p2p-telemetry demo: stopped" in output
    finally:
        demo.stop()
