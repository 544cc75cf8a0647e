"""Resource group: live psutil readings, read once per collection, each call guarded."""

from __future__ import annotations

import time

import psutil
import pytest

from conftest import collect
from p2p_telemetry import MetricsCollector, ResourceMetrics

TX = {"network.io.direction": "transmit"}
RX = {"network.io.direction": "receive"}


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_first_cpu_reading_is_real(provider, reader):
    burn(0.2)
    MetricsCollector(provider)
    cpu = collect(reader).value("p2p.node.cpu.utilization")
    assert 0 < cpu <= 1


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_cpu_follows_the_process(provider, reader):
    clock = FakeClock()
    MetricsCollector(provider, clock=clock)
    process = psutil.Process()
    collect(reader)
    clock.advance(10.0)  # ten seconds of (fake) wall time with next to no CPU used
    idle = collect(reader).value("p2p.node.cpu.utilization")
    before = sum(process.cpu_times()[:2])
    burn(0.3)
    used = sum(process.cpu_times()[:2]) - before
    clock.advance(0.5)
    busy = collect(reader).value("p2p.node.cpu.utilization")
    assert idle < 0.05 / psutil.cpu_count()
    assert busy == pytest.approx(used / 0.5 / psutil.cpu_count(), rel=0.2)


def test_memory_is_the_process_rss(provider, reader):
    MetricsCollector(provider)
    rss = psutil.Process().memory_info().rss
    assert collect(reader).value("p2p.node.memory.usage") == pytest.approx(rss, rel=0.1)


def test_bandwidth_is_the_nodes_own_traffic(provider, reader):
    clock = FakeClock()
    collector = MetricsCollector(provider, clock=clock)
    collector.network.bytes_sent(1_000_000, protocol="task")
    collector.network.bytes_received(250_000, protocol="task")
    clock.advance(0.5)
    exported = collect(reader)
    assert exported.value("p2p.node.bandwidth", TX) == 2_000_000
    assert exported.value("p2p.node.bandwidth", RX) == 500_000


def test_storage_of_the_data_directory(provider, reader, tmp_path):
    (tmp_path / "a").write_bytes(b"1" * 4096)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"2" * 100)
    (tmp_path / "link").symlink_to("/etc/hostname")
    MetricsCollector(provider, data_dir=str(tmp_path))
    assert collect(reader).value("p2p.node.storage.usage") == 4196


def test_storage_not_reported_without_a_data_directory(provider, reader):
    MetricsCollector(provider)
    assert "p2p.node.storage.usage" not in collect(reader)


def test_psutil_read_once_per_collection(provider, reader, monkeypatch):
    clock = FakeClock()
    collector = MetricsCollector(provider, clock=clock)
    calls = {"cpu": 0, "memory": 0}
    process = collector.resources._process
    real_cpu, real_memory = process.cpu_times, process.memory_info

    def cpu_times():
        calls["cpu"] += 1
        return real_cpu()

    def memory_info():
        calls["memory"] += 1
        return real_memory()

    monkeypatch.setattr(process, "cpu_times", cpu_times)
    monkeypatch.setattr(process, "memory_info", memory_info)
    clock.advance(1.0)  # the reading made at start is stale: one new reading
    collect(reader)
    assert calls == {"cpu": 1, "memory": 1}


def test_a_failing_psutil_call_leaves_only_its_metric_out(provider, reader, monkeypatch, caplog):
    clock = FakeClock()
    collector = MetricsCollector(provider, clock=clock)
    process = collector.resources._process

    def denied():
        raise psutil.AccessDenied(process.pid)

    monkeypatch.setattr(process, "memory_info", denied)
    clock.advance(1.0)
    exported = collect(reader)
    assert "p2p.node.memory.usage" not in exported
    assert 0 <= exported.value("p2p.node.cpu.utilization") <= 1
    assert "reading memory failed" in caplog.text


def test_recorded_values_without_sampling(provider, reader):
    collector = MetricsCollector(provider, sample_resources=False)
    assert "p2p.node.cpu.utilization" not in collect(reader)
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0, memory_usage=3 << 30))
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=10.0))
    exported = collect(reader)
    assert exported.value("p2p.node.cpu.utilization") == 0.1
    assert exported.value("p2p.node.memory.usage") == 3 << 30
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=250.0, memory_usage=-5))
    assert collector.resource_snapshot().cpu_usage == pytest.approx(10.0)
    assert collect(reader).value("p2p.telemetry.rejected", {"reason": "range"}) == 2


def test_recorded_values_are_replaced_by_the_next_reading(provider, reader):
    clock = FakeClock()
    collector = MetricsCollector(provider, clock=clock)
    collector.record_resource_metrics(ResourceMetrics(memory_usage=123))
    assert collect(reader).value("p2p.node.memory.usage") == 123
    clock.advance(0.3)
    assert collect(reader).value("p2p.node.memory.usage") > 1 << 20


@pytest.mark.parametrize("names, expected", [
    ("p2p", {"p2p.node.cpu.utilization", "p2p.node.memory.usage"}),
    ("semconv", {"process.cpu.utilization", "process.memory.usage"}),
    ("both", {"p2p.node.cpu.utilization", "p2p.node.memory.usage", "process.cpu.utilization",
              "process.memory.usage"}),
])
def test_cpu_and_memory_under_the_names_the_node_picks(provider, reader, names, expected):
    collector = MetricsCollector(provider, sample_resources=False, resource_names=names)
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=42.0, memory_usage=123_456, bandwidth_usage=10.0))
    exported = collect(reader)
    names_seen = {name for name in exported.metrics if "cpu" in name or "memory" in name}
    assert names_seen == expected
    for name in expected:
        assert exported.value(name) == (0.42 if "cpu" in name else 123_456)
        assert exported[name].unit == ("1" if "cpu" in name else "By")
    assert "p2p.node.bandwidth" in exported  # the seed's other figures stay
    assert collector.resource_snapshot().cpu_usage == 42.0


def test_resource_names_must_be_known(provider):
    with pytest.raises(ValueError, match="resource_names"):
        MetricsCollector(provider, resource_names="prometheus")
    with pytest.raises(TypeError, match="resource_names"):
        MetricsCollector(provider, resource_names=None)  # type: ignore[arg-type]
