"""The main job end to end: ``p2p-telemetry demo --duration 20`` with a real Prometheus (using the shipped
rule file) and a real Alertmanager: Prometheus sees the swarm, the flaky peer raises UnhealthyPeers,
and Alertmanager shows it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from realstack import Alertmanager, Prometheus, free_port, wait_for

CONFIG = Path(__file__).resolve().parents[2] / "collector-config"
COMMAND = str(Path(sys.executable).parent / "p2p-telemetry")


def test_demo_swarm_is_seen_by_prometheus_and_alertmanager(tmp_path):
    alertmanager = Alertmanager(tmp_path)
    port = free_port()
    shutil.copy(CONFIG / "p2p-alerts.rules.yml", tmp_path / "p2p-alerts.rules.yml")
    prometheus = Prometheus(tmp_path, f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [p2p-alerts.rules.yml]
alerting: {{alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{alertmanager.port}"]}}]}}]}}
scrape_configs:
  - job_name: demo
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
""")
    started = time.monotonic()
    demo = subprocess.Popen([COMMAND, "demo", "--duration", "20", "--prometheus-port", str(port),
                             "--alertmanager", alertmanager.url, "--seed", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The swarm's series: five peers, traffic of the four protocols, a failed dial.
        wait_for(lambda: prometheus.value("sum(p2p_peers)") == 5, 20, "Prometheus to see 5 peers", every=0.5)
        wait_for(lambda: all(prometheus.value(f'sum(p2p_protocol_events_total{{p2p_protocol="{p}"}})') or 0
                             for p in ("task", "discovery", "resource", "health")), 10, "events of the 4 protocols")
        assert prometheus.value('sum(p2p_network_io_bytes_total{network_io_direction="transmit"})') > 0
        assert prometheus.value('sum(p2p_connection_active{p2p_connection_direction="outbound"})') >= 15

        # The flaky peer turns unhealthy: the node's own evaluator sends UnhealthyPeers to Alertmanager,
        # and Prometheus, evaluating the shipped rule file, fires it too.
        def unhealthy_in_alertmanager() -> list[dict]:
            return [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "UnhealthyPeers"]

        alert = wait_for(unhealthy_in_alertmanager, 25, "Alertmanager to show UnhealthyPeers", every=0.5)[0]
        assert alert["labels"]["severity"] == "warning"
        assert "UnhealthyPeers" in alertmanager.amtool("alert", "query", "alertname=UnhealthyPeers")
        wait_for(lambda: prometheus.query('ALERTS{alertname="UnhealthyPeers",alertstate="firing"}'), 10,
                 "Prometheus's own rule to fire", every=0.5)
        assert prometheus.value('max_over_time(p2p_peers{p2p_peer_health="unhealthy"}[1m])') == 1

        out, _ = demo.communicate(timeout=40)
        assert demo.returncode == 0, out
        assert time.monotonic() - started < 45
        assert "FIRING   UnhealthyPeers" in out and "p2p-telemetry demo: stopped" in out
    finally:
        demo.kill()
        prometheus.stop()
        alertmanager.stop()


def test_demo_help_explains_every_option():
    result = subprocess.run([COMMAND, "demo", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--peers", "--duration", "--prometheus-port", "--otlp-endpoint", "--otlp-protocol",
                   "--alertmanager", "--no-view", "--rules"):
        assert option in result.stdout


def test_demo_stops_cleanly_on_sigint(tmp_path):
    demo = subprocess.Popen([COMMAND, "demo", "--prometheus-port", "0", "--no-view"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(3)
        demo.send_signal(2)
        out, _ = demo.communicate(timeout=15)
        assert demo.returncode == 0, out
        assert "p2p-telemetry demo: stopped" in out and "Traceback" not in out
    finally:
        demo.kill()


def test_demo_port_in_use_is_a_clear_error():
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([COMMAND, "demo", "--duration", "1", "--prometheus-port", str(port)],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"prometheus_port {port}" in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_readme_main_job_command_runs_the_demo_with_its_live_view():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(["bash", str(root / "scripts" / "demo.sh"), "--duration", "3", "--prometheus-port", "0"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "p2p-telemetry demo: 1 node + 5 peers on 127.0.0.1" in result.stdout
    assert "peers          5 total" in result.stdout and "bandwidth    out" in result.stdout
    assert "p2p-telemetry demo: stopped" in result.stdout
