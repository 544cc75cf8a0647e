"""Zero-code: a py-libp2p node without telemetry code, run under ``opentelemetry-instrument``, scraped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from realstack import Process, free_port, http_get, missing, wait_for

NODE = Path(__file__).parent / "nodes" / "plain_libp2p_node.py"
ECHO = "/plain-node/echo/1.0.0"
PAYLOAD = 10_240


def instrument_command() -> str:
    path = Path(sys.executable).parent / "opentelemetry-instrument"
    if not path.exists():
        found = shutil.which("opentelemetry-instrument")
        if found is None:
            missing("opentelemetry-instrument (opentelemetry-instrumentation)")
        return found
    return str(path)


def samples(text: str, name: str) -> dict[frozenset, float]:
    """``{frozenset(labels): value}`` of every sample of ``name`` in a Prometheus scrape (scope labels left out)."""
    found = {}
    for match in re.finditer(rf"^{re.escape(name)}\{{(.*?)\}} (\S+)$", text, re.M):
        labels = frozenset((k, v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1))
                           if not k.startswith("otel_scope_"))
        found[labels] = float(match.group(2))
    return found


def start_node(tmp_path: Path, name: str, **env: str) -> tuple[Process, int, Path]:
    port, ready = free_port(), tmp_path / f"{name}.ready"
    base = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
            "OTEL_SERVICE_NAME": "plain-node", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ""}
    process = Process([instrument_command(), sys.executable, str(NODE), str(ready), "30"], tmp_path / f"{name}.log",
                      env={**base, **env})
    return process, port, ready


def test_zero_code_node_exports_connections_and_bytes(tmp_path):
    on, on_port, on_ready = start_node(tmp_path, "instrumented")
    off, off_port, off_ready = start_node(tmp_path, "disabled",
                                          OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="p2p_telemetry_libp2p")
    try:
        for process, ready in ((on, on_ready), (off, off_ready)):
            wait_for(lambda p=process, r=ready: r.exists() or not p.alive(), 40, f"{process.log.name} traffic done")
            assert process.alive(), process.output()
        text = http_get(f"http://127.0.0.1:{on_port}/metrics").decode()
        # Both hosts of the node were made by libp2p.new_host(): one dialled, one accepted.
        active = samples(text, "p2p_connection_active")
        tcp = {("network_transport", "tcp"), ("p2p_transport", "tcp")}
        assert active[frozenset({("p2p_connection_direction", "outbound"), *tcp})] == 1
        assert active[frozenset({("p2p_connection_direction", "inbound"), *tcp})] == 1
        io = samples(text, "p2p_network_io_bytes_total")
        for direction in ("transmit", "receive"):
            key = frozenset({("network_io_direction", direction), ("p2p_protocol", ECHO), ("network_transport", "tcp")})
            assert io[key] == 2 * PAYLOAD  # each host sent (and received) the payload once
        assert 'service_name="plain-node"' in text or "plain-node" in text
        off_text = http_get(f"http://127.0.0.1:{off_port}/metrics").decode()
        assert "p2p_connection_active" not in off_text and "p2p_network_io" not in off_text
    finally:
        on.stop()
        off.stop()


def test_uninstrument_restores_new_host(provider):
    import libp2p

    from p2p_telemetry.integrations.instrumentor import Libp2pInstrumentor

    original = libp2p.new_host
    instrumentor = Libp2pInstrumentor()
    instrumentor.instrument(meter_provider=provider)
    try:
        assert libp2p.new_host is not original
        host = libp2p.new_host()
        assert len(instrumentor.handles) == 1 and instrumentor.handles[0].host is host
        assert "/ipfs/ping/1.0.0" in set(instrumentor.collector.protocols.protocols())
    finally:
        instrumentor.uninstrument()
    assert libp2p.new_host is original
    assert instrumentor.handles == []


def start_example(tmp_path: Path, name: str, module: str, *args: str, port: int | None = None,
                  stdin: int | None = None) -> Process:
    """One of py-libp2p's own shipped examples, unchanged, under ``opentelemetry-instrument`` when ``port`` is given."""
    env = {"PYTHONUNBUFFERED": "1", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "", "OTEL_TRACES_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": name}
    command = [sys.executable, "-m", module, *args]
    if port is not None:
        env.update(OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
                   OTEL_EXPORTER_PROMETHEUS_PORT=str(port))
        command = [instrument_command(), *command]
    else:
        env.update(OTEL_METRICS_EXPORTER="none")
    return Process(command, tmp_path / f"{name}.log", env=env, stdin=stdin)


def scrape(port: int) -> str:
    return http_get(f"http://127.0.0.1:{port}/metrics").decode()


def test_libp2p_own_ping_example_exposes_identify_rcmgr_and_the_websocket_transport(tmp_path):
    """``examples.ping`` over WebSocket, as py-libp2p ships it: the listener runs under opentelemetry-instrument."""
    port, listen_port = free_port(), free_port()
    listener = start_example(tmp_path, "ping-listener", "examples.ping.ping", "-p", str(listen_port), "-t", "ws",
                             port=port)
    dialer = None
    try:
        address = wait_for(lambda: re.search(rf"(/ip4/127\.0\.0\.1/tcp/{listen_port}/ws/p2p/\w+)", listener.output()),
                           60, "the ping listener's address").group(1)
        dialer = start_example(tmp_path, "ping-dialer", "examples.ping.ping", "-d", address, "-t", "ws")
        wait_for(lambda: "received pong" in dialer.output() or not dialer.alive(), 60, "a pong")
        assert "received pong" in dialer.output(), dialer.output()[-2000:]

        def exposed() -> str | None:
            text = scrape(port)
            return text if 'p2p_identify_events_total{' in text and "p2p_peer_protocols{" in text else None
        text = wait_for(exposed, 30, "the listener to identify its peer")
        inbound = {("p2p_connection_direction", "inbound"), ("network_transport", "tcp"), ("p2p_transport", "ws")}
        assert samples(text, "p2p_connection_attempts_total")[frozenset(inbound)] >= 1
        io = samples(text, "p2p_network_io_bytes_total")
        key = frozenset({("network_io_direction", "receive"), ("p2p_protocol", "/ipfs/ping/1.0.0"),
                         ("network_transport", "tcp")})
        assert io[key] == 32  # one ping payload
        identify = {dict(labels)["p2p_identify_event"]: value
                    for labels, value in samples(text, "p2p_identify_events_total").items()}
        assert identify["sent"] >= 1 and identify["error"] == 0
        usage = {dict(labels)["p2p_rcmgr_resource"]: value
                 for labels, value in samples(text, "p2p_rcmgr_usage").items()}
        assert set(usage) == {"connections", "streams"}
        assert "p2p_rcmgr_blocked_total{" in text
    finally:
        listener.stop()
        if dialer is not None:
            dialer.stop()


def test_libp2p_own_pubsub_example_exposes_messages_mesh_and_rpc(tmp_path):
    """``examples.pubsub`` as py-libp2p ships it: two chat nodes under opentelemetry-instrument; lines typed on the
    client's standard input are published, and the server's endpoint shows them delivered."""
    server_port, client_port, listen_port = free_port(), free_port(), free_port()
    lines = [f"hello {i}" for i in range(3)]
    server = start_example(tmp_path, "pubsub-server", "examples.pubsub.pubsub", "-p", str(listen_port),
                           port=server_port, stdin=subprocess.PIPE)
    client = None
    try:
        address = wait_for(lambda: re.search(rf"(/ip4/127\.0\.0\.1/tcp/{listen_port}/p2p/\w+)", server.output()),
                           60, "the pubsub server's address").group(1)
        client = start_example(tmp_path, "pubsub-client", "examples.pubsub.pubsub", "-d", address,
                               port=client_port, stdin=subprocess.PIPE)
        topic = {("p2p_pubsub_topic", "pubsub-chat")}

        def meshed() -> bool:
            mesh = samples(scrape(client_port), "p2p_pubsub_mesh_peers")
            return mesh.get(frozenset(topic), 0) >= 1
        wait_for(meshed, 60, "the client's mesh to hold the server")
        assert client.proc.stdin is not None
        client.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        client.proc.stdin.flush()

        def delivered() -> dict:
            messages = samples(scrape(server_port), "p2p_pubsub_messages_total")
            found = {dict(labels)["p2p_pubsub_event"]: value for labels, value in messages.items()
                     if dict(labels)["p2p_pubsub_topic"] == "pubsub-chat"}
            return found if found.get("delivered") == len(lines) else {}
        server_messages = wait_for(delivered, 30, "the server to deliver the published lines")
        assert server_messages["received"] >= len(lines) and server_messages["rejected"] == 0
        client_text = scrape(client_port)
        published = samples(client_text, "p2p_pubsub_messages_total")
        assert published[frozenset({*topic, ("p2p_pubsub_event", "published")})] == len(lines)
        sizes = samples(client_text, "p2p_pubsub_message_size_bytes_sum")
        assert sizes[frozenset(topic)] == sum(len(line) for line in lines)
        rpc = samples(scrape(server_port), "p2p_pubsub_rpc_total")
        assert rpc[frozenset({("network_io_direction", "receive"), ("p2p_pubsub_rpc_part", "publish")})] >= len(lines)
    finally:
        for process in (client, server):
            if process is not None:
                process.stop()
