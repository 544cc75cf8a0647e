"""Zero-code: a py-libp2p node without telemetry code, run under ``opentelemetry-instrument``, scraped."""

from __future__ import annotations

import re
import shutil
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
    """``{frozenset(labels): value}`` for every sample of ``name`` in a Prometheus text scrape (scope labels left out)."""
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
            wait_for(lambda: ready.exists() or not process.alive(), 40, f"{process.log.name} traffic done")
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
