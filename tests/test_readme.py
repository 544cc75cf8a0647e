"""Every ```python block of README.md runs as printed, and does what the README says it does.

A block's placeholders (a peer's ``host``/``port``, the node's ``collector``...) are names this test puts
in the block's namespace, backed by real servers on 127.0.0.1; the block's text is never changed.
Blocks may ``await`` at top level (they show code from inside a node's async functions).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families

from conftest import collect
from p2p_telemetry import HealthStatus, MetricsCollector, MonitoringConfig, setup_info
from realstack import Alertmanager, free_port, wait_for

README = Path(__file__).resolve().parent.parent / "README.md"
TASK_TCP = {"p2p.protocol": "task", "network.transport": "tcp"}


def python_blocks() -> dict[tuple[str, int], tuple[int, str]]:
    """Each ```python block, keyed by (the heading it is under, its index there): (first line, source)."""
    blocks: dict[tuple[str, int], tuple[int, str]] = {}
    heading, counts = "", dict[str, int]()
    lines = README.read_text().splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        if line.startswith("#"):
            heading = line
        elif line.strip() == "```python":
            end = lines.index("```", number + 1)
            index = counts.get(heading, 0)
            counts[heading] = index + 1
            blocks[(heading, index)] = (number + 2, "\n".join(lines[number + 1:end]) + "\n")
            number = end
        number += 1
    return blocks


QUICK_START = ("### A node that has no OpenTelemetry set up yet", 0)
EXISTING_PROVIDER = ("### A node that already configured OpenTelemetry", 0)
ALERTS = ("## Alerts", 0)
ASYNCIO_SERVER_AND_CLIENT = ("## Instrumenting a node without touching its code", 0)
ASYNCIO_EXISTING_STREAMS = ("## Instrumenting a node without touching its code", 1)
HEALTH_CHECKS = ("## Health checks", 0)
NODE_TEST = ("## Testing a node's telemetry", 0)
LIBP2P = ("## Instrumenting a node without touching its code", 2)
TESTED = {QUICK_START, EXISTING_PROVIDER, ALERTS, ASYNCIO_SERVER_AND_CLIENT, ASYNCIO_EXISTING_STREAMS,
          HEALTH_CHECKS, NODE_TEST, LIBP2P}


def test_every_python_block_has_a_test_here() -> None:
    untested = sorted(set(python_blocks()) - TESTED)
    assert not untested, f"README python blocks that no test in {Path(__file__).name} runs: {untested}"
    assert not TESTED - set(python_blocks()), f"blocks gone from README: {sorted(TESTED - set(python_blocks()))}"


def run_block(key: tuple[str, int], namespace: dict[str, Any]) -> Awaitable[None] | None:
    """Compile the block as printed (line numbers as in README.md) and run it; a coroutine if it awaits."""
    first_line, source = python_blocks()[key]
    code = compile("\n" * (first_line - 1) + source, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    return result if inspect.iscoroutine(result) else None


async def run_async_block(key: tuple[str, int], namespace: dict[str, Any]) -> None:
    result = run_block(key, namespace)
    if result is not None:
        await result


async def line_server(answer: Callable[[bytes], bytes]) -> tuple[asyncio.Server, int, list[bytes]]:
    """A plain asyncio peer on 127.0.0.1 answering each line; returns the server, its port and what it got."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            received.append(line)
            writer.write(answer(line))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], received


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``check()`` holds (connection_lost callbacks run a few iterations later)."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> int:
    """No OTEL_* setting from outside; the Prometheus endpoint on a free port. Returns that port."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    port = free_port()
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(port))
    return port


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a real scrape, by name and labels (less the exporter's own otel_scope_* labels)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, frozenset((k, v) for k, v in sample.labels.items() if not k.startswith("otel_scope_"))):
            sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def test_quick_start_counts_one_closed_connection_and_its_bytes(clean_global: None, otel_env: int) -> None:
    namespace: dict[str, Any] = {}

    async def main() -> list[bytes]:
        server, port, received = await line_server(lambda line: b"accepted " + line)
        namespace.update(host="127.0.0.1", port=port)
        async with server:
            await run_async_block(QUICK_START, namespace)
        return received

    received = asyncio.run(main())
    assert received == [b"submit job-1\n"]
    assert namespace["reply"] == b"accepted submit job-1\n"

    info = setup_info(metrics.get_meter_provider())
    assert info is not None and info.prometheus_url == f"http://127.0.0.1:{otel_env}/metrics"
    series = scrape(info.prometheus_url)

    def value(name: str, **labels: str) -> float:
        """The one series of ``name`` whose labels include ``labels``."""
        found = [v for (n, have), v in series.items() if n == name and set(labels.items()) <= have]
        assert len(found) == 1, (name, labels, [have for n, have in series if n == name])
        return found[0]

    out_tcp = {"p2p_connection_direction": "outbound", "network_transport": "tcp"}
    task_tcp = {"p2p_protocol": "task", "network_transport": "tcp"}
    assert value("p2p_network_io_bytes_total", network_io_direction="transmit", **task_tcp) == len(received[0])
    assert value("p2p_network_io_bytes_total", network_io_direction="receive", **task_tcp) == len(namespace["reply"])
    assert value("p2p_connection_attempts_total", **out_tcp) == 1
    assert value("p2p_connection_setup_duration_seconds_count", **out_tcp) == 1
    assert value("p2p_connection_active", **out_tcp) == 0  # opened by connecting(), closed by connection_closed()
    assert value("p2p_protocol_events_total", p2p_protocol="task", p2p_protocol_event="submitted") == 1
    assert value("p2p_peers", p2p_peer_health="healthy") == 1
    assert value("p2p_peer_reputation", p2p_peer_id="12D3KooW...") == 0.9
    rejected = {labels: v for (name, labels), v in series.items() if name == "p2p_telemetry_rejected_total"}
    assert not any(rejected.values()), rejected  # the close matched the open: nothing unbalanced


def test_existing_provider_is_kept_and_reported_through(clean_global: None) -> None:
    reader = InMemoryMetricReader()
    node_provider = MeterProvider(metric_readers=[reader])
    namespace: dict[str, Any] = {"node_provider": node_provider}
    run_block(EXISTING_PROVIDER, namespace)
    assert metrics.get_meter_provider() is node_provider
    namespace["collector"].network.bytes_sent(7, protocol="task", transport="tcp")
    assert collect(reader).value("p2p.network.io", {"network.io.direction": "transmit", **TASK_TCP}) == 7


@pytest.mark.integration
def test_alerts_block_fires_unhealthy_peers_to_every_sink(clean_global: None, otel_env: int, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    alertmanager = Alertmanager(tmp_path)
    try:
        namespace: dict[str, Any] = {"alertmanager_url": alertmanager.url}
        run_block(ALERTS, namespace)  # its own assert: has_alert(UNHEALTHY_PEERS) after one evaluation
        assert not namespace["monitoring"].running
        printed = capsys.readouterr().out
        assert "UnhealthyPeers" in printed and "firing" in printed  # CallbackSink(print)
        alerts = wait_for(lambda: alertmanager.alerts(alertname="UnhealthyPeers"), 15,
                          "Alertmanager to show UnhealthyPeers")
        assert [(a["labels"]["severity"], a["labels"]["service_name"], a["labels"]["service_instance_id"])
                for a in alerts] == [("warning", "my-node", "node-7")]  # the node the README names
        assert not alertmanager.alerts(alertname="SlowPeers")  # one degraded peer is not two, and for_=30 s
    finally:
        alertmanager.stop()


def test_asyncio_server_and_client_count_each_byte_once_under_the_protocol(collector: MetricsCollector,
                                                                           reader: InMemoryMetricReader) -> None:
    namespace: dict[str, Any] = {"collector": collector}

    def active(direction: str) -> float:
        exported = collect(reader)
        return exported.value("p2p.connection.active", {"p2p.connection.direction": direction}, exact=False)

    async def main() -> None:
        await run_async_block(ASYNCIO_SERVER_AND_CLIENT, namespace)
        await eventually(lambda: active("outbound") == 0 and active("inbound") == 0, "both ends closed")
        namespace["server"].close()
        await namespace["server"].wait_closed()

    asyncio.run(main())
    request, reply = b"submit job-1\n", namespace["reply"]
    assert reply == b"ok " + request
    exported = collect(reader)
    both_ends = len(request) + len(reply)  # the client sends the request and the server the reply; each receives
    assert exported.value("p2p.network.io", {"network.io.direction": "transmit", **TASK_TCP}) == both_ends
    assert exported.value("p2p.network.io", {"network.io.direction": "receive", **TASK_TCP}) == both_ends
    assert exported.value("p2p.network.io", {"network.io.direction": "transmit"}, exact=False) == both_ends
    for direction in ("outbound", "inbound"):
        attributes = {"p2p.connection.direction": direction, "network.transport": "tcp"}
        assert exported.value("p2p.connection.attempts", attributes, exact=False) == 1
        assert exported.histogram("p2p.connection.duration", attributes, exact=False).count == 1


def test_asyncio_existing_streams_count_once_under_the_protocol_given(collector: MetricsCollector,
                                                                      reader: InMemoryMetricReader) -> None:
    namespace: dict[str, Any] = {"collector": collector}
    discovery = {"p2p.protocol": "discovery", "network.transport": "tcp"}
    outbound = {"p2p.connection.direction": "outbound", "network.transport": "tcp"}

    async def main() -> None:
        server, port, received = await line_server(lambda line: b"found " + line)
        namespace.update(host="127.0.0.1", port=port)
        async with server:
            await run_async_block(ASYNCIO_EXISTING_STREAMS, namespace)
            stream_reader, writer = namespace["reader"], namespace["writer"]
            writer.write(b"find peer-9\n")
            assert await stream_reader.readline() == b"found find peer-9\n"
            assert collect(reader).value("p2p.connection.active", outbound, exact=False) == 1
            writer.close()
            await writer.wait_closed()
            await eventually(lambda: collect(reader).value("p2p.connection.active", outbound, exact=False) == 0,
                             "closed")

    asyncio.run(main())
    exported = collect(reader)
    assert exported.value("p2p.network.io", {"network.io.direction": "transmit", **discovery}) == 12
    assert exported.value("p2p.network.io", {"network.io.direction": "receive", **discovery}) == 18
    assert exported.value("p2p.network.io", exact=False) == 30  # nothing twice, nothing under other


def test_health_check_block_probes_the_addresses_it_is_given(collector: MetricsCollector,
                                                             reader: InMemoryMetricReader) -> None:
    namespace: dict[str, Any] = {"collector": collector, "PEER_2_PORT": free_port()}  # nothing listens there

    async def main() -> None:
        listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        namespace["PEER_1_PORT"] = listener.sockets[0].getsockname()[1]
        async with listener:
            await run_async_block(HEALTH_CHECKS, namespace)

    asyncio.run(main())
    assert namespace["health"] == {"peer-1": HealthStatus.HEALTHY, "peer-2": HealthStatus.DEGRADED}
    exported = collect(reader)
    assert exported.value("p2p.peers", {"p2p.peer.health": "healthy"}) == 1
    assert exported.value("p2p.peers", {"p2p.peer.health": "degraded"}) == 1
    assert exported["p2p.peer.latency"].point({"p2p.peer.health": "healthy"}).count == 1  # peer-1's connect time
    config = namespace["config"]
    assert isinstance(config, MonitoringConfig) and config.health_checker is namespace["checker"]


def test_node_test_block_passes_under_pytest_with_the_installed_fixture(tmp_path: Path) -> None:
    _, source = python_blocks()[NODE_TEST]
    (tmp_path / "test_echo_node.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_echo_node.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert re.search(r"^1 passed", result.stdout, re.MULTILINE), result.stdout + result.stderr


def test_libp2p_block_publishes_and_delivers_through_an_instrumented_host(collector: MetricsCollector,
                                                                          reader: InMemoryMetricReader) -> None:
    namespace: dict[str, Any] = {"collector": collector}

    async def node() -> None:
        with trio.fail_after(30):
            await run_async_block(LIBP2P, namespace)

    trio.run(node)
    assert namespace["handle"].closed
    messages = {(p.attributes["p2p.pubsub.topic"], p.attributes["p2p.pubsub.event"]): p.value
                for p in collect(reader)["p2p.pubsub.messages"].points}
    assert messages[("blocks", "published")] == 1 and messages[("blocks", "delivered")] == 1

