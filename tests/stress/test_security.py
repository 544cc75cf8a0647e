"""Security of the endpoints: the Prometheus endpoint stays on loopback unless told otherwise, a
taken port fails at ``configure()``, idle connections cost it no thread; OTLP headers and TLS come
from the standard variables (checked at real receivers); no secret (OTLP headers, Alertmanager
credentials) reaches logs or exceptions."""

from __future__ import annotations

import base64
import errno
import http.server
import logging
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import certifi
import grpc
import psutil
import pytest
from faults import forget_logged_duplicates, thread_exceptions
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from p2p_telemetry import Alert, AlertmanagerSink, MetricsCollector, configure, setup_info
from realstack import LOOPBACK, Receiver, binary, free_port, wait_for

SECRET = "s3cret-Token-7f1d"
HEADERS = f"authorization=Bearer%20{SECRET},x-tenant=acme"
PROTOCOLS = ("grpc", "http/protobuf")


# --- the Prometheus endpoint ---------------------------------------------------------------------

def listening_addresses(port: int) -> set[str]:
    """The addresses this process listens on at ``port`` (TCP)."""
    return {c.laddr.ip for c in psutil.Process().net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def non_loopback_ipv4() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


def prometheus_port(provider: Any) -> int:
    return int(setup_info(provider).prometheus_url.rsplit(":", 1)[1].split("/")[0])


def test_prometheus_binds_loopback_by_default() -> None:
    provider = configure(prometheus_port=0, set_global=False)
    try:
        port = prometheus_port(provider)
        assert listening_addresses(port) == {"127.0.0.1"}
        other = non_loopback_ipv4()
        if other is not None:  # reachable on loopback only
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((other, port), timeout=2).close()
        socket.create_connection((LOOPBACK, port), timeout=2).close()
    finally:
        provider.shutdown()


def test_prometheus_binds_all_interfaces_only_when_told() -> None:
    provider = configure(prometheus_port=0, prometheus_host="0.0.0.0", set_global=False)
    try:
        assert listening_addresses(prometheus_port(provider)) == {"0.0.0.0"}
    finally:
        provider.shutdown()


def test_a_port_in_use_fails_at_configure_naming_the_port() -> None:
    threads = set(threading.enumerate())
    with socket.create_server((LOOPBACK, 0)) as taken, thread_exceptions() as escaped:
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as raised:
            configure(prometheus_port=port, set_global=False)
        time.sleep(0.1)  # a failing background thread would have reported by now
    assert raised.value.errno == errno.EADDRINUSE
    assert f"prometheus_port {port}" in str(raised.value) and "in use" in str(raised.value)
    assert not escaped
    assert not [t for t in threading.enumerate() if t not in threads], "configure() left a thread behind"


def test_idle_connections_cost_no_thread_and_end_with_the_provider() -> None:
    """A slowloris of 200 idle connections: the scrape is still answered, no thread per connection,
    and provider.shutdown() closes every connection and the endpoint's thread."""
    threads = set(threading.enumerate())
    provider = configure(prometheus_port=0, set_global=False)
    MetricsCollector(provider, sample_resources=False).network.bytes_sent(5, protocol="task")
    url, port = setup_info(provider).prometheus_url, prometheus_port(provider)
    idle: list[socket.socket] = []
    try:
        idle = [socket.create_connection((LOOPBACK, port), timeout=5) for _ in range(200)]
        with urllib.request.urlopen(url, timeout=5) as response:  # accepted after the 200
            assert b"p2p_network_io_bytes_total" in response.read()
        started = [t for t in threading.enumerate() if t not in threads]
        assert [t.name for t in started] == [f"p2p-telemetry-prometheus-{port}"]
    finally:
        provider.shutdown()
    for client in idle:
        client.settimeout(5)
        try:
            assert client.recv(1) == b"", "a connection outlived provider.shutdown()"
        except ConnectionResetError:
            pass
        client.close()
    assert not [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    socket.create_server((LOOPBACK, port)).close()  # the port is free again


# --- OTLP receivers that capture what arrives ------------------------------------------------------

class OtlpReceiver(Protocol):
    endpoint: str
    headers: list[dict[str, str]]

    def close(self) -> None: ...


class HttpOtlpReceiver:
    """OTLP/HTTP on 127.0.0.1 (TLS with ``cert``): records each request's headers, answers ``status``."""

    def __init__(self, status: int = 200, cert: tuple[Path, Path] | None = None) -> None:
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*cert)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if cert else "http"
        self.endpoint = f"{scheme}://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcOtlpReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """OTLP/gRPC on 127.0.0.1 (TLS with ``cert``): records each call's metadata; fails with ``code``."""

    def __init__(self, code: grpc.StatusCode | None = None, cert: tuple[Path, Path] | None = None) -> None:
        self.headers: list[dict[str, str]] = []
        self.code = code
        self.server = grpc.server(ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        if cert is None:
            port = self.server.add_insecure_port(f"{LOOPBACK}:0")
        else:
            credentials = grpc.ssl_server_credentials([(cert[1].read_bytes(), cert[0].read_bytes())])
            port = self.server.add_secure_port(f"{LOOPBACK}:0", credentials)
        self.server.start()
        self.endpoint = f"{'https' if cert else 'http'}://{LOOPBACK}:{port}"

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.headers.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
        if self.code is not None:
            context.abort(self.code, "denied")
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def close(self) -> None:
        self.server.stop(0)


def receiver_for(protocol: str, refuse: bool = False, cert: tuple[Path, Path] | None = None) -> OtlpReceiver:
    if protocol == "grpc":
        return GrpcOtlpReceiver(grpc.StatusCode.UNAUTHENTICATED if refuse else None, cert)
    return HttpOtlpReceiver(401 if refuse else 200, cert)


def export_once(endpoint: str, protocol: str, settle: float = 0.0) -> None:
    """A node exporting to ``endpoint``: one measurement, ``settle`` seconds of periodic exports, shutdown."""
    provider = configure(service_name="security", exporters=["otlp"], otlp_endpoint=endpoint,
                         otlp_protocol=protocol, export_interval=0.5, set_global=False)
    MetricsCollector(provider, sample_resources=False).network.sent("task", "tcp").add(1)
    time.sleep(settle)
    provider.shutdown()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    where = tmp_path_factory.mktemp("tls")
    cert_file, key_file = where / "cert.pem", where / "key.pem"
    subprocess.run([binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key_file), "-out", str(cert_file)], check=True, capture_output=True, timeout=30)
    return cert_file, key_file


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"])
def test_otlp_headers_come_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch, protocol: str,
                                                       variable: str) -> None:
    monkeypatch.setenv(variable, HEADERS)
    receiver = receiver_for(protocol)
    try:
        export_once(receiver.endpoint, protocol)
    finally:
        receiver.close()
    assert receiver.headers, "nothing arrived"
    assert {h.get("authorization") for h in receiver.headers} == {f"Bearer {SECRET}"}
    assert {h.get("x-tenant") for h in receiver.headers} == {"acme"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_otlp_tls_comes_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch, protocol: str,
                                                    cert: tuple[Path, Path]) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", HEADERS)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # as many systems set it: must not win
    receiver = receiver_for(protocol, cert=cert)
    try:
        export_once(receiver.endpoint, protocol)  # the self-signed certificate is not trusted
        assert receiver.headers == []
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(cert[0]))
        export_once(receiver.endpoint, protocol)
        assert receiver.headers and receiver.headers[-1]["authorization"] == f"Bearer {SECRET}"
        if protocol == "grpc":  # OTEL_EXPORTER_OTLP_INSECURE=false: TLS even for an http:// endpoint
            arrived = len(receiver.headers)
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "false")
            export_once(receiver.endpoint.replace("https://", "http://"), protocol)
            assert len(receiver.headers) > arrived
    finally:
        receiver.close()


# --- no secret in logs or exceptions --------------------------------------------------------------

def everything_said(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
                    escaped: list[threading.ExceptHookArgs], *more: Any) -> str:
    """All log messages and tracebacks, the process's own stdout/stderr, thread exceptions, and ``more``."""
    out, err = capfd.readouterr()
    return "\n".join([caplog.text, *(r.getMessage() for r in caplog.records),
                      *(repr(r.exc_info[1]) for r in caplog.records if r.exc_info), out, err,
                      *(repr(e.exc_value) for e in escaped), *map(str, more)])


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("server", ["nothing listening", "refuses (401 / UNAUTHENTICATED)"])
def test_otlp_headers_never_reach_logs_or_exceptions(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                     capfd: pytest.CaptureFixture[str], protocol: str,
                                                     server: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", HEADERS)
    forget_logged_duplicates()
    receiver = receiver_for(protocol, refuse=True) if server.startswith("refuses") else None
    endpoint = receiver.endpoint if receiver else f"http://{LOOPBACK}:{free_port()}"
    try:
        with caplog.at_level(logging.DEBUG), thread_exceptions() as escaped:
            export_once(endpoint, protocol, settle=1.2)
    finally:
        if receiver:
            receiver.close()
    said = everything_said(caplog, capfd, escaped)
    assert "export" in said.lower(), "the failed exports were not reported at all"
    if receiver:
        assert receiver.headers and receiver.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in said
    assert not escaped


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_malformed_headers_variable_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture,
                                                                    capfd: pytest.CaptureFixture[str],
                                                                    protocol: str) -> None:
    """The common mistake ``Authorization: Bearer ...`` (a colon, not ``=``): the SDK would log it verbatim."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", f"Authorization: Bearer {SECRET}")
    with caplog.at_level(logging.DEBUG), thread_exceptions() as escaped, \
            pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_METRICS_HEADERS") as raised:
        configure(exporters=["otlp"], otlp_endpoint=f"http://{LOOPBACK}:{free_port()}", otlp_protocol=protocol,
                  set_global=False)
    assert SECRET not in everything_said(caplog, capfd, escaped, raised.value, repr(raised.value))


def test_credentials_in_the_otlp_endpoint_are_refused_without_showing_them() -> None:
    with pytest.raises(ValueError, match="otlp_endpoint") as raised:
        configure(exporters=["otlp"], otlp_endpoint=f"http://user:{SECRET}@{LOOPBACK}:4317", set_global=False)
    assert SECRET not in str(raised.value)
    with pytest.raises(ValueError, match="otlp_endpoint") as raised:
        configure(exporters=["otlp"], otlp_endpoint=f"ftp://user:{SECRET}@{LOOPBACK}:4317", set_global=False)
    assert SECRET not in str(raised.value)


# --- the Alertmanager sink -------------------------------------------------------------------------

def firing() -> Alert:
    now = time.time()
    return Alert("HighCpuUsage", "firing", {"alertname": "HighCpuUsage"}, 0.95, now - 5, fired_at=now - 5,
                 summary="CPU utilization 0.95 is above 0.9")


CREDENTIALS: dict[str, tuple[dict[str, Any], str]] = {  # sink arguments (url added) and the Authorization sent
    "bearer_token": ({"bearer_token": SECRET}, f"Bearer {SECRET}"),
    "basic_auth": ({"basic_auth": ("am-user", SECRET)},
                   "Basic " + base64.b64encode(f"am-user:{SECRET}".encode()).decode()),
    "headers": ({"headers": {"X-Scope-OrgID": SECRET}}, ""),
    "url userinfo": ({"userinfo": f"am-user:{SECRET}@"},
                     "Basic " + base64.b64encode(f"am-user:{SECRET}".encode()).decode()),
}


@pytest.mark.parametrize("server", ["answers 500", "nothing listening"])
@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_alertmanager_credentials_never_reach_logs_repr_or_exceptions(
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], server: str, credential: str) -> None:
    kwargs, authorization = CREDENTIALS[credential]
    kwargs = dict(kwargs)
    receiver = Receiver(status=500) if server == "answers 500" else None
    port = receiver.port if receiver else free_port()
    url = f"http://{kwargs.pop('userinfo', '')}{LOOPBACK}:{port}"
    with caplog.at_level(logging.DEBUG), thread_exceptions() as escaped:
        sink = AlertmanagerSink(url, min_backoff=0.05, max_backoff=0.1, timeout=1, **kwargs)
        try:
            sink.notify(firing())
            wait_for(lambda: sink.failures >= 3, 5, "failed sends")
        finally:
            sink.close()
            if receiver:
                receiver.close()
    if receiver:  # the credentials do go to the server
        sent = {k.lower(): v for k, v in receiver.requests[0][1].items()}
        assert sent.get("authorization", sent.get("x-scope-orgid")) == (authorization or SECRET)
    said = everything_said(caplog, capfd, escaped, repr(sink), sink.url, str(sink))
    assert "cannot reach" in said
    for secret in {SECRET, authorization.split(" ")[-1]} - {""}:
        assert secret not in said
    assert not escaped


@pytest.mark.parametrize("url", [f"ftp://am-user:{SECRET}@{LOOPBACK}:9093", f"http://am-user:{SECRET}@{LOOPBACK}:99999"])
def test_a_bad_alertmanager_url_is_refused_without_showing_its_credentials(url: str) -> None:
    with pytest.raises(ValueError, match="url") as raised:
        AlertmanagerSink(url)
    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)
