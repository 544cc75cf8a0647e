"""p2p_telemetry.testing and its pytest plugin: reads agree with what the test itself recorded."""

from __future__ import annotations

import bisect
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

from p2p_telemetry import HealthStatus, MetricsCollector, ResourceMetrics
from p2p_telemetry.catalogue import LATENCY_BUCKETS
from p2p_telemetry.testing import HistogramValue, NotExported, Snapshot, TelemetryCapture

TX = {"network.io.direction": "transmit"}
RX = {"network.io.direction": "receive"}


@pytest.fixture
def capture() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as telemetry:
        yield telemetry


def test_value_reads_one_series_exactly_or_the_matching_ones_added_up(capture: TelemetryCapture) -> None:
    recorded = {("task", "tcp"): 100, ("task", "quic"): 50, ("discovery", "tcp"): 7}
    for (protocol, transport), n in recorded.items():
        capture.collector.network.bytes_sent(n, protocol=protocol, transport=transport)
    capture.collector.network.bytes_received(3, protocol="task", transport="tcp")

    assert capture.value("p2p.network.io", {**TX, "p2p.protocol": "task", "network.transport": "tcp"}) == 100
    assert capture.value("p2p.network.io", {**TX, "p2p.protocol": "task"}, exact=False) == 150
    assert capture.value("p2p.network.io", TX, exact=False) == sum(recorded.values())
    assert capture.value("p2p.network.io", {"p2p.protocol": "task"}, exact=False) == 153
    assert capture.value("p2p.network.io", exact=False) == 160
    assert len(capture.points("p2p.network.io", TX)) == 3
    assert capture.points("p2p.network.io", {**RX, "p2p.protocol": "task", "network.transport": "tcp"},
                          exact=True)[0].value == 3


def test_a_missing_series_fails_the_test_and_says_what_was_there(capture: TelemetryCapture) -> None:
    capture.collector.network.bytes_sent(5, protocol="task", transport="tcp")
    with pytest.raises(NotExported) as missing_series:
        capture.value("p2p.network.io", {**TX, "p2p.protocol": "task"})  # a subset is not an exact match
    assert isinstance(missing_series.value, AssertionError) and isinstance(missing_series.value, LookupError)
    assert "'network.transport': 'tcp'" in str(missing_series.value)

    with pytest.raises(NotExported, match="p2p.network.oi was not exported; exported: .*p2p.network.io"):
        capture.value("p2p.network.oi", exact=False)  # a typo is never read as 0
    # a catalogue metric with no series yet: nothing counted, nothing to read exactly
    assert capture.value("p2p.connection.failures", exact=False) == 0
    assert capture.points("p2p.connection.failures") == []
    with pytest.raises(NotExported):
        capture.value("p2p.connection.failures", {"error.type": "timeout"})


def expected_buckets(samples: list[float], bounds: tuple[float, ...]) -> dict[float, int]:
    counts = dict.fromkeys((*bounds, math.inf), 0)
    for sample in samples:
        counts[(*bounds, math.inf)[bisect.bisect_left(bounds, sample)]] += 1  # buckets are (lower, upper]
    return counts


def test_histogram_count_sum_min_max_and_buckets(capture: TelemetryCapture) -> None:
    healthy = [0.0007, 0.003, 0.003, 0.2, 20.0]
    degraded = [0.6, 0.04]
    for latency in healthy:
        capture.collector.peers.update("a", latency=latency)
    capture.collector.peers.update("b", health=HealthStatus.DEGRADED)
    for latency in degraded:
        capture.collector.peers.update("b", latency=latency)

    snapshot = capture.collect()
    assert isinstance(snapshot, Snapshot)
    one = snapshot.histogram("p2p.peer.latency", {"p2p.peer.health": "healthy"})
    assert (one.count, one.min, one.max) == (5, 0.0007, 20.0)
    assert one.sum == pytest.approx(sum(healthy))
    assert dict(one.buckets) == expected_buckets(healthy, LATENCY_BUCKETS)
    assert (one.le(0.001), one.le(0.005), one.le(0.25), one.le(math.inf)) == (1, 3, 4, 5)
    with pytest.raises(ValueError, match="0.002 is not a bucket bound"):
        one.le(0.002)

    both = snapshot.histogram("p2p.peer.latency", exact=False)
    assert (both.count, both.min, both.max) == (7, 0.0007, 20.0)
    assert both.sum == pytest.approx(sum(healthy + degraded))
    assert dict(both.buckets) == expected_buckets(healthy + degraded, LATENCY_BUCKETS)
    assert snapshot.histogram("p2p.connection.duration", exact=False) == HistogramValue(0, 0.0, None, None)

    with pytest.raises(TypeError, match="histogram"):
        snapshot.value("p2p.peer.latency", {"p2p.peer.health": "healthy"})
    with pytest.raises(TypeError, match="not a histogram"):
        snapshot.histogram("p2p.peers", {"p2p.peer.health": "healthy"})


def test_histogram_buckets_under_an_exponential_view() -> None:
    """Any histogram on the capture's provider reads the same way; here a node's own, exponential by its View."""
    samples = [0.0013, 0.021, 0.021, 0.33, 4.7]
    view = View(instrument_name="node.rtt", aggregation=ExponentialBucketHistogramAggregation(max_size=160))
    with TelemetryCapture(views=[view]) as capture:
        rtt = capture.provider.get_meter("node").create_histogram("node.rtt", unit="s")
        for sample in samples:
            rtt.record(sample, {"peer.kind": "relay"})
        snapshot = capture.collect()
    latency = snapshot.histogram("node.rtt", {"peer.kind": "relay"})
    assert snapshot["node.rtt"].kind == "exponential_histogram"
    assert (latency.count, latency.min, latency.max) == (5, 0.0013, 4.7)
    assert latency.sum == pytest.approx(sum(samples))
    base = 2.0 ** (2.0 ** -snapshot.points("node.rtt")[0].scale)
    expected: dict[float, int] = {}
    for sample in samples:  # bucket i holds (base**i, base**(i+1)]
        upper = base ** math.ceil(math.log(sample, base))
        expected[upper] = expected.get(upper, 0) + 1
    assert {upper: n for upper, n in latency.buckets.items() if n} == pytest.approx(expected)
    assert latency.le(max(latency.buckets)) == 5


def test_snapshot_gives_names_units_kinds_and_scopes(capture: TelemetryCapture) -> None:
    capture.collector.protocols.increment("task", "submitted", n=3)
    capture.collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))  # as recorded: no psutil
    snapshot = capture.collect()
    assert "p2p.protocol.events" in snapshot and "p2p.nothing" not in snapshot
    events = snapshot["p2p.protocol.events"]
    assert (events.unit, events.kind) == ("{event}", "monotonic_sum") and events.description
    assert events.value({"p2p.protocol": "task", "p2p.protocol.event": "submitted"}) == 3
    assert events.attribute_sets() == [{"p2p.protocol": "task", "p2p.protocol.event": "submitted"}]
    assert snapshot.value("p2p.node.cpu.utilization") == pytest.approx(0.95)
    assert snapshot["p2p.peers"].kind == "sum" and snapshot["p2p.node.cpu.utilization"].kind == "gauge"
    assert [scope.name for scope in snapshot.scopes] == ["p2p_telemetry"]
    assert {m.name for m in snapshot} == set(snapshot.metrics)


def test_capture_is_its_own_provider_never_the_global_one() -> None:
    before = metrics.get_meter_provider()
    with TelemetryCapture(protocols=["/ipfs/ping/1.0.0"]) as capture:
        assert capture.collector.meter_provider is capture.provider is not metrics.get_meter_provider()
        second = MetricsCollector(capture.provider, sample_resources=False, protocols=["/ipfs/ping/1.0.0"])
        capture.collector.network.bytes_sent(4, protocol="/ipfs/ping/1.0.0", transport="tcp")
        second.network.bytes_sent(6, protocol="/ipfs/ping/1.0.0", transport="tcp")
        assert capture.value("p2p.network.io", {**TX, "p2p.protocol": "/ipfs/ping/1.0.0",
                                                "network.transport": "tcp"}) == 10
        assert "collector=made" in repr(capture)
    assert metrics.get_meter_provider() is before
    capture.close()  # idempotent
    assert "closed=True" in repr(capture)


def run_pytest(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh interpreter on one test file, with only the installed plugins (no conftest)."""
    (tmp_path / "test_node.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_node.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


NODE_TESTS = """
    from p2p_telemetry.testing import TelemetryCapture

    def test_first(p2p_telemetry):
        assert isinstance(p2p_telemetry, TelemetryCapture)
        p2p_telemetry.collector.network.bytes_sent(10, protocol="task", transport="tcp")
        assert p2p_telemetry.value("p2p.network.io", {"p2p.protocol": "task"}, exact=False) == 10

    def test_second_gets_a_fresh_capture(p2p_telemetry):
        assert p2p_telemetry.value("p2p.network.io", exact=False) == 0

    def test_a_wrong_expectation_fails_readably(p2p_telemetry):
        p2p_telemetry.collector.protocols.increment("task", "done")
        p2p_telemetry.value("p2p.protocol.events", {"p2p.protocol": "task"})
"""


def test_the_installed_pytest_plugin_offers_the_fixture(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, NODE_TESTS)
    assert "1 failed, 2 passed" in result.stdout, result.stdout + result.stderr
    assert ("p2p.protocol.events: no point with attributes exactly {'p2p.protocol': 'task'}; its points have "
            "[{'p2p.protocol': 'task', 'p2p.protocol.event': 'done'}]") in result.stdout

    disabled = run_pytest(tmp_path, NODE_TESTS, "-p", "no:p2p_telemetry")
    assert "fixture 'p2p_telemetry' not found" in disabled.stdout, disabled.stdout
