"""The Prometheus endpoint over HTTP: promtool accepts it, its series are the catalogue's, clients that
misbehave cost it nothing lasting, and a forked child neither holds nor serves it."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import psutil
import pytest
from prometheus_client import CollectorRegistry, Counter

from p2p_telemetry import MetricsCollector, configure, setup_info
from p2p_telemetry._prometheus_endpoint import MAX_REQUEST_HEAD, MetricsEndpoint
from p2p_telemetry.catalogue import CATALOGUE
from p2p_telemetry.groups import LIBP2P_GROUPS
from realstack import LOOPBACK, binary, http_get
from test_smoke import PING, record_every_group


@pytest.fixture
def endpoint(clean_global, tmp_path):
    provider = configure(prometheus_port=0, set_global=False)
    record_every_group(MetricsCollector(provider, protocols=[PING], data_dir=tmp_path, resource_names="both"))
    yield setup_info(provider).prometheus_url
    provider.shutdown()


def test_promtool_accepts_the_exposition(endpoint):
    with urllib.request.urlopen(endpoint, timeout=5) as response:
        text = response.read()
    result = subprocess.run([binary("promtool"), "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_series_names_are_the_catalogues_right_column(endpoint):
    with urllib.request.urlopen(endpoint, timeout=5) as response:
        text = response.read().decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)) - {"target_info"}
    libp2p_only = {spec.name for group in LIBP2P_GROUPS for spec in group.specs}  # reported by py-libp2p hosts
    expected = {spec.prometheus for spec in CATALOGUE
                if spec.name != "p2p.alert.active" and spec.name not in libp2p_only}
    assert families == expected
    assert 'p2p_network_io_bytes_total{network_io_direction="transmit",network_transport="tcp",' in text
    assert re.search(r'p2p_peers\{[^}]*p2p_peer_health="degraded"[^}]*\} 1\.0', text)
    assert re.search(r'p2p_protocol_events_total\{[^}]*p2p_protocol="discovery"[^}]*\} 4\.0', text)


# --- the endpoint under clients that misbehave -------------------------------------------------------

@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("probe", "A counter the endpoint serves.", registry=registry).inc(3)
    return registry


def closed_by_server(client: socket.socket, within: float = 10.0) -> bool:
    """True when the server closed ``client`` (EOF or reset) within ``within`` seconds."""
    client.settimeout(within)
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def still_open(client: socket.socket) -> bool:
    client.setblocking(False)
    try:
        return client.recv(1) != b""  # data would be a surprise too, but the connection is open
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False


def test_a_client_that_never_completes_its_request_is_closed_after_the_timeout(registry):
    endpoint = MetricsEndpoint(registry, LOOPBACK, 0, timeout=0.5)
    try:
        silent = socket.create_connection((LOOPBACK, endpoint.port), timeout=5)
        slow = socket.create_connection((LOOPBACK, endpoint.port), timeout=5)
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: node\r\n")  # the blank line never comes
        assert closed_by_server(silent) and closed_by_server(slow)
        assert b"probe_total 3.0" in http_get(endpoint.url)
    finally:
        endpoint.close()


def test_past_the_connection_limit_the_oldest_connection_is_dropped(registry):
    endpoint = MetricsEndpoint(registry, LOOPBACK, 0, max_connections=5)
    try:
        clients = [socket.create_connection((LOOPBACK, endpoint.port), timeout=5) for _ in range(10)]
        assert b"probe_total 3.0" in http_get(endpoint.url)  # accepted after the ten, so the ten are in
        assert [closed_by_server(c) for c in clients[:6]] == [True] * 6  # the scrape's own pushed out the 6th
        assert all(still_open(c) for c in clients[6:])
    finally:
        endpoint.close()
    assert all(closed_by_server(c) for c in clients[6:])


def test_malformed_or_oversized_requests_do_not_stop_the_endpoint(registry):
    endpoint = MetricsEndpoint(registry, LOOPBACK, 0)
    try:
        with socket.create_connection((LOOPBACK, endpoint.port), timeout=5) as client:
            client.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n")  # too many headers
            assert client.makefile("rb").readline().startswith(b"HTTP/1.0 431")
        with socket.create_connection((LOOPBACK, endpoint.port), timeout=5) as client:
            client.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")  # e.g. a TLS client
            assert b"Bad request" in client.makefile("rb").read()  # wsgiref's answer, then the end
        with socket.create_connection((LOOPBACK, endpoint.port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\n" + b"X-Padding: " + b"a" * MAX_REQUEST_HEAD)
            assert closed_by_server(client)
        assert b"probe_total 3.0" in http_get(endpoint.url)
    finally:
        endpoint.close()


def test_close_ends_the_thread_and_frees_the_port(registry):
    endpoint = MetricsEndpoint(registry, LOOPBACK, 0)
    serving = [t for t in threading.enumerate() if t.name == f"p2p-telemetry-prometheus-{endpoint.port}"]
    client = socket.create_connection((LOOPBACK, endpoint.port), timeout=5)
    endpoint.close()
    assert len(serving) == 1 and not serving[0].is_alive()
    assert closed_by_server(client)
    socket.create_server((LOOPBACK, endpoint.port)).close()


# --- fork -------------------------------------------------------------------------------------------

def listening_fds(port: int) -> int:
    """How many listening sockets on ``port`` this process holds."""
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.status == psutil.CONN_LISTEN and c.laddr.port == port)


def test_a_forked_child_neither_holds_nor_serves_the_parents_endpoint(clean_global):
    provider = configure(prometheus_port=0, set_global=False)
    MetricsCollector(provider, sample_resources=False).network.bytes_sent(5, protocol="task")
    url = setup_info(provider).prometheus_url
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: say whether it holds a listening socket on the port, wait to be told to exit
        code = 1
        try:
            os.write(ready_w, str(listening_fds(port)).encode())
            select.select([stop_r], [], [], 60)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(stop_r)
    try:
        assert select.select([ready_r], [], [], 30)[0], "the child did not report"
        assert os.read(ready_r, 16) == b"0", "the child holds the parent's listening socket"
        assert b"target_info" in http_get(url)  # the parent still serves
        provider.shutdown()
        with pytest.raises(ConnectionRefusedError):  # nobody listens: no connect-and-hang
            socket.create_connection((LOOPBACK, port), timeout=5).close()
        socket.create_server((LOOPBACK, port)).close()  # the port is free again
    finally:
        os.write(stop_w, b"x")
        os.close(stop_w)
        os.close(ready_r)
        deadline = time.monotonic() + 30
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.05)
