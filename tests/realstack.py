"""Real components for the integration tests: Prometheus, Alertmanager, rotel, on 127.0.0.1, stopped by PID.

With ``CI=true`` a missing component fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOOPBACK = "127.0.0.1"


def missing(what: str) -> None:
    """Fail (in CI) or skip (elsewhere) a test whose real component is not installed."""
    message = f"{what} is not installed (the README's test command installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def binary(name: str) -> str:
    """The path of an installed program, or fail/skip."""
    path = shutil.which(name)
    if path is None:
        missing(name)
    return path  # type: ignore[return-value]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # not up yet
            last_error = error
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def http_json(url: str, data: Any = None, timeout: float = 5.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def scraped_total(url: str, name: str) -> float:
    """The sum of every sample of ``name`` on a Prometheus text endpoint (0 when it has none)."""
    total = 0.0
    for line in http_get(url).decode().splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


class Receiver:
    """An HTTP endpoint on 127.0.0.1 recording every POST (a webhook for Alertmanager, or a stand-in for it).

    ``status`` is the answer to every POST, or a function of the decoded body returning it.
    """

    def __init__(self, port: int | None = None, status: int | Callable[[Any], int] = 200) -> None:
        self.requests: list[tuple[str, dict, Any]] = []
        self.status = status
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                decoded = json.loads(body or b"null")
                outer.requests.append((self.path, dict(self.headers), decoded))
                self.send_response(outer.status(decoded) if callable(outer.status) else outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, port or 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def bodies(self) -> list[Any]:
        return [body for _, _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Process:
    """A child process with its output in a file; stopped by PID."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, stdin: int | None = None) -> None:
        self.args = args
        self.log = log
        self._file = open(log, "wb")  # noqa: SIM115 - closed by stop(), after the process it was given to
        self.proc = subprocess.Popen(args, stdout=self._file, stderr=subprocess.STDOUT, stdin=stdin,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self._file.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()


class Prometheus(Process):
    """A real Prometheus (Debian's package) with a temporary storage path.

    ``agent=True`` runs it in agent mode (``--enable-feature=agent``: scrape and remote-write only);
    ``args`` are extra flags, e.g. ``--web.enable-remote-write-receiver``. Each instance needs its own
    ``workdir`` (its config, storage and log live there).
    """

    def __init__(self, workdir: Path, config: str, port: int | None = None, *, agent: bool = False,
                 args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config_file = workdir / "prometheus.yml"
        config_file.write_text(config)
        storage = ([f"--storage.agent.path={workdir / 'agent-data'}", "--enable-feature=agent"] if agent
                   else [f"--storage.tsdb.path={workdir / 'prom-data'}"])
        super().__init__([binary("prometheus"), f"--config.file={config_file}", *storage,
                          f"--web.listen-address={LOOPBACK}:{self.port}", "--web.enable-lifecycle", *args],
                         workdir / "prometheus.log")
        wait_for(lambda: http_get(f"{self.url}/-/ready"), 30, "prometheus ready")

    def targets(self) -> list[dict]:
        """The active scrape targets (``/api/v1/targets``; an agent answers it too)."""
        return http_json(f"{self.url}/api/v1/targets?state=active")["data"]["activeTargets"]

    def query(self, promql: str) -> list[dict]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        reply = http_json(url)
        assert reply["status"] == "success", reply
        return reply["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value of an instant query (None when it returns nothing)."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def alerts(self) -> list[dict]:
        """The alerts Prometheus's rules hold now (pending and firing), as /api/v1/alerts lists them."""
        reply = http_json(f"{self.url}/api/v1/alerts")
        assert reply["status"] == "success", reply
        return reply["data"]["alerts"]


class Alertmanager(Process):
    """A real Alertmanager (Debian's prometheus-alertmanager) without its gossip port."""

    def __init__(self, workdir: Path, config: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.workdir = workdir
        config_file = workdir / "alertmanager.yml"
        if config is not None or not config_file.exists():
            config_file.write_text(config or "route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n")
        super().__init__([binary("prometheus-alertmanager"), f"--config.file={config_file}",
                          f"--storage.path={workdir / 'am-data'}", f"--web.listen-address={LOOPBACK}:{self.port}",
                          f"--web.external-url={self.url}", "--cluster.listen-address="],
                         workdir / f"alertmanager-{time.monotonic_ns()}.log")
        wait_for(lambda: http_get(f"{self.url}/-/ready"), 30, "alertmanager ready")

    def alerts(self, **filters: str) -> list[dict]:
        query = "&".join(f"filter={urllib.parse.quote(f'{k}={v!s}')}" for k, v in filters.items())
        return http_json(f"{self.url}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
                         + (f"&{query}" if query else ""))

    def received(self) -> float:
        """Alerts received through the API so far (Alertmanager's alertmanager_alerts_received_total)."""
        return scraped_total(f"{self.url}/metrics", "alertmanager_alerts_received_total")

    def amtool(self, *args: str) -> str:
        return subprocess.run([binary("amtool"), f"--alertmanager.url={self.url}", *args],
                              check=True, capture_output=True, text=True, timeout=30).stdout


def rotel_binary() -> str:
    try:
        import rotel
    except ImportError:
        missing("rotel (PyPI package)")
    path = Path(rotel.__file__).parent / "rotel-agent"
    if not path.exists():
        missing("rotel-agent binary")
    return str(path)


class Rotel(Process):
    """rotel, a real OTLP collector, logging every metric it receives in detail."""

    def __init__(self, workdir: Path, grpc_port: int | None = None, http_port: int | None = None) -> None:
        self.grpc_port = grpc_port or free_port()
        self.http_port = http_port or free_port()
        self.grpc_endpoint = f"http://{LOOPBACK}:{self.grpc_port}"
        self.http_endpoint = f"http://{LOOPBACK}:{self.http_port}"
        super().__init__([rotel_binary(), "start", "--exporter", "blackhole",
                          "--otlp-grpc-endpoint", f"{LOOPBACK}:{self.grpc_port}",
                          "--otlp-http-endpoint", f"{LOOPBACK}:{self.http_port}",
                          "--debug-log", "metrics", "--debug-log-verbosity", "detailed"],
                         workdir / f"rotel-{time.monotonic_ns()}.log", env={"NO_COLOR": "1"})
        wait_for(lambda: port_open(self.grpc_port) and port_open(self.http_port), 15, "rotel listening")


def python() -> str:
    return sys.executable


_ROTEL_VALUE = re.compile(r"^(Str|Int|Double|Bool)\((.*)\)$")


def _rotel_value(text: str) -> Any:
    match = _ROTEL_VALUE.match(text)
    if not match:
        return text
    kind, raw = match.groups()
    return {"Str": str, "Int": int, "Double": float, "Bool": lambda v: v == "true"}[kind](raw)


def parse_rotel_metrics(text: str) -> list[dict]:
    """Every data point rotel logged (``--debug-log metrics --debug-log-verbosity detailed``), in order.

    Each point: ``{"resource": {...}, "scope": name, "metric": name, "type": "Sum"|"Gauge"|"Histogram",
    "monotonic": bool, "unit": str, "attributes": {...}, "value"|"count"/"sum"/"buckets": ...}``.
    """
    points: list[dict] = []
    resource: dict = {}
    scope = metric = unit = kind = ""
    monotonic = False
    point: dict | None = None
    target: dict | None = None  # where "-> key: value" lines go
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ResourceMetrics #"):
            resource, target = {}, None
        elif line == "Resource attributes:":
            target = resource
        elif line.startswith("InstrumentationScope "):
            scope = line.split()[1]
        elif line.startswith("Metric #"):
            metric, monotonic, target = "", False, None
        elif line.startswith("-> Name: "):
            metric = line[len("-> Name: "):]
        elif line.startswith("-> Unit: "):
            unit = line[len("-> Unit: "):]
        elif line.startswith("-> DataType: "):
            kind = line[len("-> DataType: "):]
        elif line.startswith("-> IsMonotonic: "):
            monotonic = line.endswith("true")
        elif re.match(r"^\w*DataPoints #\d+$", line):
            point = {"resource": dict(resource), "scope": scope, "metric": metric, "type": kind,
                     "monotonic": monotonic, "unit": unit, "attributes": {}, "buckets": []}
            points.append(point)
            target = None
        elif line == "Data point attributes:" and point is not None:
            target = point["attributes"]
        elif line.startswith("-> ") and target is not None and ": " in line:
            key, value = line[3:].split(": ", 1)
            target[key] = _rotel_value(value)
        elif point is not None and line.startswith(("Value: ", "Count: ", "Sum: ", "Min: ", "Max: ")):
            key, value = line.split(": ", 1)
            number = float(value)
            point[key.lower()] = int(number) if number.is_integer() and key != "Sum" else number
        elif point is not None and line.startswith("Buckets #"):
            point["buckets"].append(int(line.rsplit(": ", 1)[1]))
    return points


def latest_point(points: list[dict], metric: str, attributes: dict | None = None) -> dict:
    """The last logged point of ``metric`` whose attributes are exactly ``attributes``."""
    found = [p for p in points if p["metric"] == metric and p["attributes"] == (attributes or {})]
    assert found, f"rotel logged no {metric} point with {attributes}"
    return found[-1]
