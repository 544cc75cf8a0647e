"""The examples that talk to a real component run to completion against it, and it receives what they sent."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from realstack import Alertmanager, Rotel, latest_point, parse_rotel_metrics, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, timeout: float = 60) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_existing_provider_exports_through_the_nodes_own_otlp_exporter(tmp_path):
    rotel = Rotel(tmp_path)
    try:
        out = run_example("existing_provider.py", "--otlp-endpoint", rotel.grpc_endpoint)
        assert "recorded 4096 bytes sent through the node's own provider" in out
        assert "already installed" in out  # configure() said it kept the node's provider

        def ours():
            points = [p for p in parse_rotel_metrics(rotel.output())
                      if p["resource"].get("service.name") == "existing-node"]
            return points if any(p["metric"] == "p2p.network.io" for p in points) else None

        points = wait_for(ours, 15, "rotel to log the example's metrics")
        assert latest_point(points, "node.requests")["value"] == 16  # the node's own instrument, same provider
        assert latest_point(points, "p2p.network.io", {"network.io.direction": "transmit", "p2p.protocol": "task",
                                                       "network.transport": "tcp"})["value"] == 4096
        assert latest_point(points, "p2p.protocol.events", {"p2p.protocol": "task",
                                                            "p2p.protocol.event": "submitted"})["value"] == 16
        assert latest_point(points, "p2p.peers", {"p2p.peer.health": "healthy"})["value"] == 1
    finally:
        rotel.stop()


def test_existing_provider_finishes_with_no_collector():
    out = run_example("existing_provider.py", "--otlp-endpoint", "http://127.0.0.1:9", timeout=30)
    assert "recorded 4096 bytes sent" in out


def test_custom_alert_reaches_alertmanager_and_resolves(tmp_path):
    alertmanager = Alertmanager(tmp_path)
    example = subprocess.Popen([sys.executable, str(EXAMPLES / "custom_alert.py"), "--alertmanager", alertmanager.url,
                                "--hold", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def slow_peers() -> list[dict]:
            return [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "SlowPeers"]

        alert = wait_for(slow_peers, 15, "Alertmanager to show SlowPeers")[0]
        assert alert["labels"]["severity"] == "warning" and alert["labels"]["team"] == "p2p"
        assert alert["annotations"]["summary"] == "3 peers are degraded"
        assert alert["status"]["state"] == "active"
        assert "SlowPeers" in alertmanager.amtool("alert", "query", "alertname=SlowPeers")
        out, _ = example.communicate(timeout=30)
        assert example.returncode == 0, out
        assert "SlowPeers fired" in out and "SlowPeers resolved" in out
        # Resolved: the sink sent endsAt, so Alertmanager no longer lists it as active.
        wait_for(lambda: not slow_peers(), 10, "SlowPeers to be resolved in Alertmanager")
    finally:
        example.kill()
        alertmanager.stop()


def test_custom_alert_finishes_with_no_alertmanager():
    started = time.monotonic()
    out = run_example("custom_alert.py", "--alertmanager", "http://127.0.0.1:9", "--hold", "0", timeout=30)
    assert "SlowPeers fired" in out and "SlowPeers resolved" in out
    assert time.monotonic() - started < 20
