"""The main job end to end: ``p2p-telemetry demo --duration 20`` with a real Prometheus (using the shipped
rule file) and a real Alertmanager: Prometheus sees the swarm, the flaky peer raises UnhealthyPeers,
and Alertmanager shows it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from realstack import Alertmanager, Prometheus, free_port, missing, wait_for

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
        # The flaky peer's silence shows as health pings that timed out (the counter used to stay at 0).
        timeouts = 'sum(p2p_protocol_events_total{p2p_protocol="health",p2p_protocol_event="timeout"})'
        assert prometheus.value(timeouts) >= 3

        out, _ = demo.communicate(timeout=40)
        assert demo.returncode == 0, out
        assert time.monotonic() - started < 45
        assert "FIRING   UnhealthyPeers" in out and "p2p-telemetry demo: stopped" in out
        health = re.findall(r"health: +ping=\d+ pong=\d+ timeout=(\d+)", out)
        assert health and int(health[-1]) >= 3, out[-2000:]
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
        assert demo.stdout is not None
        header = demo.stdout.readline()  # printed once the demo handles signals (bounded by the timeout below)
        assert header.startswith("p2p-telemetry demo:"), header
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


# The live view (issue 14): one header on a pipe, fitted to the terminal's width on a terminal.

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\x1b[=>78]")
WITHOUT_RICH = "import sys; sys.modules['rich'] = None; from p2p_telemetry.cli import main; sys.exit(main())"


def test_demo_on_a_pipe_prints_its_header_once_and_no_control_sequence():
    result = subprocess.run([COMMAND, "demo", "--duration", "3", "--prometheus-port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("p2p-telemetry demo: 1 node + 5 peers on 127.0.0.1") == 1
    assert result.stdout.count("peers          5 total") >= 2  # a frame a second, appended
    assert "\x1b" not in result.stdout


def run_in_terminal(command: list[str], columns: int, rows: int, timeout: float = 60) -> str:
    """Run ``command`` on a pseudo-terminal of ``columns`` x ``rows``; everything it wrote to it."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm-256color"},
                            start_new_session=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's last writer closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    finally:
        proc.kill()
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("drawer", ["rich", "plain"])
def test_demo_view_fits_a_narrow_terminal(drawer):
    if drawer == "rich":
        try:
            import rich  # noqa: F401
        except ImportError:
            missing("rich (the cli extra: pip install 'p2p-telemetry[cli]')")
        command = [COMMAND]
    else:
        command = [sys.executable, "-c", WITHOUT_RICH]
    output = run_in_terminal([*command, "demo", "--duration", "4", "--prometheus-port", "0", "--seed", "2"],
                             columns=60, rows=30)
    visible = [line for line in re.split(r"\r\n|\n|\r", ESCAPES.sub("", output))]
    assert max(map(len, visible)) <= 60, [line for line in visible if len(line) > 60]
    text = "\n".join(visible)
    assert "p2p-telemetry demo: 1 node + 5 peers" in text and "events       " in text
    assert "…" in text  # the header, longer than 60 columns, was cut rather than wrapped
    assert "p2p-telemetry demo: stopped" in text
    assert "\x1b[2J" not in output  # redrawn in place, not by clearing the screen each second
    # rich's Live hides the cursor while it draws; the plain fallback homes the cursor at each frame.
    assert ("\x1b[?25l" in output) == (drawer == "rich") and ("\x1b[H" in output) == (drawer == "plain")


def test_demo_view_follows_the_terminal_height():
    output = run_in_terminal([sys.executable, "-c", WITHOUT_RICH, "demo", "--duration", "3", "--prometheus-port", "0"],
                             columns=100, rows=6)
    assert "more lines (a taller terminal shows them)" in ESCAPES.sub("", output)
