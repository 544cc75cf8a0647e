"""Each example runs to completion by itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str, *args: str, timeout: float = 60) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_quickstart_serves_what_it_counted():
    out = run_example("quickstart.py", "--duration", "1.5", "--port", "0")
    assert "serving Prometheus metrics at http://127.0.0.1:" in out
    assert "'total': 3, 'healthy': 3" in out
    assert 'p2p_peers{' in out and 'p2p_network_io_bytes_total{' in out and 'p2p_protocol_events_total{' in out


def test_libp2p_node_serves_what_it_counted():
    out = run_example("libp2p_node.py", "--duration", "1.5", "--port", "0")
    assert "serving Prometheus metrics at http://127.0.0.1:" in out
    # Its one peer answers every ping; a slow answer (a loaded machine: over 0.5 s) makes it degraded.
    peers = ast.literal_eval(out.split("peers:", 1)[1].splitlines()[0].strip())
    assert peers["total"] == peers["healthy"] + peers["degraded"] == 1 and peers["unhealthy"] == 0, peers
    assert 'p2p_connection_active{' in out and 'p2p_protocol="/example/chat/1.0.0"' in out
    assert 'p2p_peer_latency_seconds_count{' in out
