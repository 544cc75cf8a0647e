"""Every ```python block of docs/configuration.md runs as printed, and does what the page says.

Placeholders (the node's ``key_pair``) are names put in the block's namespace; the Prometheus port
comes from ``OTEL_EXPORTER_PROMETHEUS_PORT=0`` (a free one), so the blocks' text stays unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2p_telemetry import MetricsCollector, ResourceMetrics, configure, setup_info
from realstack import http_get

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def python_blocks() -> list[tuple[int, str]]:
    """(first line, source) of each ```python block."""
    lines = PAGE.read_text().splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() == "```python":
            end = lines.index("```", number + 1)
            blocks.append((number + 2, "\n".join(lines[number + 1:end]) + "\n"))
    return blocks


def run_block(index: int, namespace: dict[str, Any]) -> dict[str, Any]:
    first_line, source = python_blocks()[index]
    exec(compile("\n" * (first_line - 1) + source, str(PAGE), "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def any_free_port(monkeypatch: pytest.MonkeyPatch, clean_global: None) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    for variable in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_METRICS_EXPORTER"):
        monkeypatch.delenv(variable, raising=False)


def test_the_page_has_the_blocks_these_tests_run() -> None:
    assert len(python_blocks()) == 3


def test_the_first_example_serves_prometheus_and_shuts_down(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_block(0, {})
    url = capsys.readouterr().out.strip()
    assert url == setup_info(namespace["provider"]).prometheus_url and url.startswith("http://127.0.0.1:")
    assert (setup_info(namespace["provider"]).service_name,
            setup_info(namespace["provider"]).service_instance_id) == ("relay", "node-7")


def test_a_libp2p_node_reports_its_peer_id_as_its_instance_id() -> None:
    from libp2p.crypto.ed25519 import create_new_key_pair

    namespace = run_block(1, {"key_pair": create_new_key_pair(b"\x01" * 32)})
    provider, host = namespace["provider"], namespace["host"]
    try:
        peer_id = host.get_id().to_string()
        assert peer_id.startswith("12D3KooW")
        namespace["collector"].network.bytes_sent(5, protocol="task")
        target_info = next(line for line in http_get(setup_info(provider).prometheus_url).decode().splitlines()
                           if line.startswith("target_info{"))
        assert f'service_instance_id="{peer_id}"' in target_info
        assert 'service_name="my-libp2p-node"' in target_info
    finally:
        namespace["handle"].close()
        provider.shutdown()


def test_the_views_example_changes_buckets_and_drops_a_metric() -> None:
    provider = run_block(2, {"configure": configure})["provider"]  # imported by the first block
    try:
        collector = MetricsCollector(provider, sample_resources=False)
        collector.peers.update("12D3KooWpeer", health="healthy", latency=0.05)
        collector.record_resource_metrics(ResourceMetrics(storage_usage=10))
        text = http_get(setup_info(provider).prometheus_url).decode()
        buckets = {line.split('le="')[1].split('"')[0] for line in text.splitlines()
                   if line.startswith("p2p_peer_latency_seconds_bucket{")}
        assert buckets == {"0.01", "0.1", "1.0", "+Inf"}
        assert "p2p_node_storage_usage_bytes" not in text
        assert "p2p_peers{" in text
    finally:
        provider.shutdown()
