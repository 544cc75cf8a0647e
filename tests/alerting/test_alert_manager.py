"""AlertManager on real metrics: the seed's test, each default rule, for/keep_firing_for on fake clocks, wall-clock
steps, the node's identity on every alert, the reader, and the evaluator's public surface."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from alert_nodes import T0, Clock, identity, node_provider, node_resource
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import collect
from p2p_telemetry import (
    AlertConfig,
    AlertManager,
    AlertRule,
    AlertType,
    CallbackSink,
    HealthStatus,
    LogSink,
    MetricsCollector,
    MonitoringConfig,
    MonitoringSystem,
    NetworkMetrics,
    PeerStats,
    ResourceMetrics,
    configure,
    default_rules,
)
from p2p_telemetry.alerting.evaluator import Evaluator, extrapolated_increase
from p2p_telemetry.testing import TelemetryCapture

NODE = identity("node-1")


@pytest.fixture
def capture():
    """The shared fixture's capture, on a provider whose Resource names the node ``node-1``."""
    with TelemetryCapture(resource=node_resource("node-1")) as telemetry:
        yield telemetry


@pytest.fixture
def node(provider):
    """A collector on an SDK provider, a manager with a fake clock and a callback sink recording every change."""
    collector = MetricsCollector(provider, sample_resources=False)
    changes = []
    clock = Clock()  # wall and monotonic time move together here; the clock-step tests part them
    manager = AlertManager(AlertConfig(sinks=[CallbackSink(changes.append)]), provider, clock=clock,
                           monotonic=clock)
    yield collector, manager, clock, changes
    manager.stop()


def tick(manager, clock, seconds: float = 1.0):
    clock.now += seconds
    return manager.evaluate()


def firing(manager) -> set[str]:
    return {a.name for a in manager.active_alerts() if a.state == "firing"}


# -- the seed's test, ported -------------------------------------------------------------------------

def test_alert_monitoring(clean_global):
    configure(exporters="none")  # the node's SDK provider, installed globally
    config = MonitoringConfig(alert_check_interval=1.0, sample_resources=False)
    with MonitoringSystem(config) as monitoring:
        monitoring.metrics.record_resource_metrics(ResourceMetrics(
            cpu_usage=95.0, memory_usage=1 << 20, bandwidth_usage=1000.0, storage_usage=1 << 20))
        deadline = time.monotonic() + 2.0
        while not monitoring.alert_manager.has_alert(AlertType.HIGH_CPU_USAGE) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert monitoring.alert_manager.has_alert(AlertType.HIGH_CPU_USAGE)
        assert not monitoring.alert_manager.has_alert(AlertType.HIGH_MEMORY_USAGE)

        monitoring.metrics.record_resource_metrics(ResourceMetrics(cpu_usage=10.0))
        deadline = time.monotonic() + 2.0
        while monitoring.alert_manager.has_alert(AlertType.HIGH_CPU_USAGE) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not monitoring.alert_manager.has_alert("HighCpuUsage")
    assert [t.name for t in threading.enumerate() if t.name.startswith("p2p-telemetry")] == []


# -- each default rule on real metrics ---------------------------------------------------------------

def test_high_cpu_fires_and_resolves(node):
    collector, manager, clock, changes = node
    tick(manager, clock)
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=91.0))
    tick(manager, clock)
    assert firing(manager) == {"HighCpuUsage"}
    alert = manager.active_alerts()[0]
    assert (alert.value, alert.summary, alert.labels) == (
        0.91, "CPU utilization 0.91 is above 0.9", {"alertname": "HighCpuUsage", "severity": "warning", **NODE})
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=90.0))  # not above 0.9
    tick(manager, clock)
    assert firing(manager) == set()
    assert [(a.name, a.state) for a in changes] == [("HighCpuUsage", "firing"), ("HighCpuUsage", "resolved")]
    assert changes[1].resolved_at == clock.now and changes[1].active_since == clock.now - 1


def test_high_memory_fires_and_resolves(node):
    collector, manager, clock, _ = node
    collector.record_resource_metrics(ResourceMetrics(memory_usage=(1 << 30) + 1))
    tick(manager, clock)
    assert firing(manager) == {"HighMemoryUsage"}
    collector.record_resource_metrics(ResourceMetrics(memory_usage=1 << 30))
    tick(manager, clock)
    assert firing(manager) == set()


def test_unhealthy_peers_fire_and_resolve(node):
    collector, manager, clock, _ = node
    collector.record_peer_metrics("peer-1", PeerStats(health_status=HealthStatus.DEGRADED))
    tick(manager, clock)
    assert firing(manager) == set()
    collector.record_peer_metrics("peer-1", PeerStats(health_status=HealthStatus.UNHEALTHY))
    collector.peers.update("peer-2", health="unhealthy")
    tick(manager, clock)
    (alert,) = manager.active_alerts()
    assert alert.labels == {"alertname": "UnhealthyPeers", "severity": "warning", "p2p_peer_health": "unhealthy",
                            **NODE}
    assert alert.summary == "2 unhealthy peers"
    collector.peers.remove("peer-1")
    collector.peers.update("peer-2", health="healthy")
    tick(manager, clock)
    assert firing(manager) == set()


def test_connection_failures_fire_on_the_increase_and_resolve_when_it_leaves_the_window(node):
    collector, manager, clock, _ = node
    tick(manager, clock)  # the evaluator's first look: nothing recorded yet
    collector.record_network_metrics(NetworkMetrics(connection_attempts=20, connection_failures=6))
    for _ in range(5):
        collector.network.connection_failed("timeout", "inbound", "quic")
    tick(manager, clock, 10)
    assert firing(manager) == {"HighConnectionFailures"}  # 11 failures on brand-new series, summed
    assert manager.active_alerts()[0].summary == "11 connection failures in 5m"
    tick(manager, clock, 200)
    assert firing(manager) == {"HighConnectionFailures"}
    tick(manager, clock, 200)  # the burst has left the 5 minute window: no increase any more
    assert firing(manager) == set()


def test_ten_failures_do_not_fire(node):
    collector, manager, clock, _ = node
    tick(manager, clock)
    collector.record_network_metrics(NetworkMetrics(connection_failures=10))
    tick(manager, clock)
    assert firing(manager) == set()


# -- for and keep_firing_for, on the fake clock ----------------------------------------------------

def cpu_rule(**kwargs) -> AlertRule:
    return AlertRule("Cpu", "p2p.node.cpu.utilization", op=">", threshold=0.5, **kwargs)


@pytest.fixture
def cpu_node(provider):
    collector = MetricsCollector(provider, sample_resources=False)
    clock, changes = Clock(), []

    def make(**kwargs):
        manager = AlertManager(AlertConfig([cpu_rule(**kwargs)], [CallbackSink(changes.append)]), provider,
                               clock=clock, monotonic=clock)
        return manager

    managers = []
    yield collector, lambda **kw: managers.append(make(**kw)) or managers[-1], clock, changes
    for manager in managers:
        manager.stop()


def cpu(collector, percent):
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=percent))


def test_for_holds_the_alert_pending(cpu_node):
    collector, make, clock, changes = cpu_node
    manager = make(for_=30)
    cpu(collector, 80)
    tick(manager, clock, 0)
    assert [(a.state, a.active_since) for a in manager.active_alerts()] == [("pending", T0)]
    tick(manager, clock, 29.9)
    assert not manager.has_alert("Cpu")
    tick(manager, clock, 0.1)  # 30 s after it became active
    assert manager.has_alert("Cpu")
    assert [(a.state, a.fired_at) for a in changes] == [("pending", None), ("firing", T0 + 30)]


def test_a_pending_alert_that_clears_goes_inactive_and_starts_over(cpu_node):
    collector, make, clock, changes = cpu_node
    manager = make(for_=30)
    cpu(collector, 80)
    tick(manager, clock, 0)
    cpu(collector, 10)
    tick(manager, clock, 20)
    assert manager.active_alerts() == []
    cpu(collector, 80)
    tick(manager, clock, 20)
    tick(manager, clock, 20)
    assert not manager.has_alert("Cpu")  # its 30 s started again 20 s ago
    assert [a.state for a in changes] == ["pending", "inactive", "pending"]


def test_keep_firing_for(cpu_node):
    collector, make, clock, changes = cpu_node
    manager = make(keep_firing_for=60)
    cpu(collector, 80)
    tick(manager, clock, 0)
    assert manager.has_alert("Cpu")
    cpu(collector, 10)
    tick(manager, clock, 10)  # condition false since here
    tick(manager, clock, 59)
    assert manager.has_alert("Cpu")
    cpu(collector, 80)  # true again: the keep-firing clock resets
    tick(manager, clock, 1)
    cpu(collector, 10)
    tick(manager, clock, 1)
    tick(manager, clock, 59.9)
    assert manager.has_alert("Cpu")
    tick(manager, clock, 0.1)  # 60 s of false condition
    assert not manager.has_alert("Cpu")
    assert [(a.state, a.resolved_at) for a in changes] == [("firing", None), ("resolved", clock.now)]
    assert changes[-1].value == 0.8  # the last value that held the condition


# -- increase and rate ---------------------------------------------------------------------------------

def test_increase_is_prometheus_extrapolation_with_counter_resets():
    # Samples every 60 s in a 300 s window ending at 300; a reset between 120 and 180.
    samples = [(60.0, 10.0), (120.0, 20.0), (180.0, 5.0), (240.0, 15.0)]
    # raw increase 10 + (20 + 5 - 20... ) = 20 - 10 + 20 (reset) + 15 - 20 ... computed as PromQL does:
    raw = 15 - 10 + 20
    # first sample 60 s after the start (< 1.1 * 60): extrapolate to it; 60 s before the end: same.
    assert extrapolated_increase(samples, 0.0, 300.0) == pytest.approx(raw * 300 / 180)
    # The start is extrapolated no further than where the counter would have been 0.
    assert extrapolated_increase([(60.0, 1.0), (120.0, 31.0)], 0.0, 120.0) == pytest.approx(30 * 62 / 60)
    assert extrapolated_increase([(60.0, 1.0)], 0.0, 120.0) is None


def test_a_counter_reset_through_the_public_api_counts_the_new_total(provider):
    rule = AlertRule("Fails", "p2p.connection.failures", aggregation="increase", window=300, op=">",
                     threshold=5, group_by=())
    clock = Clock()
    manager = AlertManager(AlertConfig([rule], []), provider, clock=clock, monotonic=clock)
    first = MetricsCollector(provider, sample_resources=False)
    first.record_network_metrics(NetworkMetrics(connection_failures=100))
    tick(manager, clock, 0)
    first.close()  # the node's collector restarts: the counter starts again from 0
    second = MetricsCollector(provider, sample_resources=False)
    second.record_network_metrics(NetworkMetrics(connection_failures=7))
    tick(manager, clock, 60)
    (alert,) = manager.active_alerts()
    # Not -93: a reset, read as PromQL does (7 counted since it), extrapolated by half a sample
    # interval towards the window's start, which lies further back than 1.1 intervals: 7 * 90 / 60.
    assert alert.value == pytest.approx(7 * 90 / 60)
    manager.stop()


def test_rate_is_per_second(provider):
    rule = AlertRule("FailRate", "p2p.connection.failures", aggregation="rate", window=60, op=">", threshold=0.5,
                     group_by=("error.type",), summary="{value}/s of {error.type}")
    collector = MetricsCollector(provider, sample_resources=False)
    clock = Clock()
    manager = AlertManager(AlertConfig([rule], []), provider, clock=clock, monotonic=clock)
    collector.network.connection_failed("refused")
    tick(manager, clock, 0)
    for _ in range(60):
        collector.network.connection_failed("refused")
    tick(manager, clock, 60)
    (alert,) = manager.active_alerts()
    assert alert.labels["error_type"] == "refused" and alert.value == pytest.approx(1.0)
    assert alert.summary == "1/s of refused"
    manager.stop()


# -- the reader, the gauge and robustness ---------------------------------------------------------------

def test_attaches_its_reader_and_removes_it_on_stop(provider, reader):
    collector = MetricsCollector(provider, sample_resources=False)
    manager = AlertManager(AlertConfig(sinks=[]), provider).start(0.05)
    ours = manager._reader
    assert isinstance(ours, InMemoryMetricReader) and ours in provider._all_metric_readers
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=99.0))
    deadline = time.monotonic() + 2
    while not manager.has_alert("HighCpuUsage") and time.monotonic() < deadline:
        time.sleep(0.01)
    exported = collect(reader)  # the gauge, as any other reader sees it
    assert exported.value("p2p.alert.active", {"alertname": "HighCpuUsage", "alertstate": "firing",
                                               "severity": "warning", **NODE}) == 1
    started = time.monotonic()
    manager.stop()
    assert time.monotonic() - started < 0.5
    assert ours not in provider._all_metric_readers and ours._collect is None  # unregistered
    assert "p2p.alert.active" not in collect(reader) or collect(reader)["p2p.alert.active"].points == []


def test_reads_a_reader_that_configure_put_in(clean_global):
    reader = InMemoryMetricReader()
    provider = configure(exporters="none", extra_readers=[reader], set_global=False)
    collector = MetricsCollector(provider, sample_resources=False)
    manager = AlertManager(AlertConfig(sinks=[]), provider, reader=reader)
    collector.record_resource_metrics(ResourceMetrics(memory_usage=2 << 30))
    manager.evaluate()
    assert manager.has_alert(AlertType.HIGH_MEMORY_USAGE)
    manager.stop()
    assert reader in provider._all_metric_readers  # not ours to remove
    provider.shutdown()


def test_says_when_there_is_nothing_to_read_then_reads_once_an_sdk_is_installed(clean_global, caplog):
    collector = MetricsCollector(sample_resources=False)  # the global proxy: no SDK installed
    manager = AlertManager(AlertConfig(sinks=[]))
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        manager.evaluate()
        manager.evaluate()
    assert [r.getMessage() for r in caplog.records if "nothing to read" in r.getMessage()] != []
    assert len([r for r in caplog.records if "nothing to read" in r.getMessage()]) == 1
    manager.trigger_alert(AlertType.UNHEALTHY_PEERS)  # still works
    assert manager.has_alert("UNHEALTHY_PEERS")
    metrics.set_meter_provider(MeterProvider())
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=97.0))
    manager.evaluate()
    assert manager.has_alert(AlertType.HIGH_CPU_USAGE)
    manager.stop()


def test_trigger_and_resolve_by_hand(node):
    _, manager, _, changes = node
    alert = manager.trigger_alert(AlertType.UNHEALTHY_PEERS, value=3, labels={"p2p.peer.id": "peer-9"})
    assert alert.labels == {"alertname": "UnhealthyPeers", "severity": "warning", "p2p_peer_id": "peer-9", **NODE}
    assert manager.has_alert(AlertType.UNHEALTHY_PEERS)
    assert [a.name for a in manager.active_alerts()] == ["UnhealthyPeers"]
    manager.resolve_alert("UnhealthyPeers")
    assert not manager.has_alert(AlertType.UNHEALTHY_PEERS)
    assert [a.state for a in changes] == ["firing", "resolved"]


def test_a_failing_sink_or_rule_is_counted_and_the_rest_goes_on(provider, caplog, monkeypatch):
    collector = MetricsCollector(provider, sample_resources=False)
    got = []

    def broken(alert):
        raise RuntimeError("sink down")

    manager = AlertManager(AlertConfig(sinks=[CallbackSink(broken), CallbackSink(got.append)]), provider)
    real = Evaluator._series

    def failing(state, at, points):
        if state.rule.name == "HighMemoryUsage":
            raise RuntimeError("rule broken")
        return real(state, at, points)

    monkeypatch.setattr(Evaluator, "_series", staticmethod(failing))
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0, memory_usage=2 << 30))
    with caplog.at_level(logging.ERROR, logger="p2p_telemetry"):
        manager.evaluate()
        manager.evaluate()
    assert [a.name for a in got] == ["HighCpuUsage"]
    assert manager.rule_errors == 2 and manager.sink_errors == 1
    assert len([r for r in caplog.records if "HighMemoryUsage failed" in r.getMessage()]) == 1  # logged once
    manager.stop()


def test_default_config_is_default_rules_and_a_log_sink(node, caplog):
    config = AlertConfig()
    assert config.rules == default_rules() and [type(s).__name__ for s in config.sinks] == ["LogSink"]
    with pytest.raises(ValueError, match="more than one rule"):
        AlertConfig(rules=default_rules() + default_rules()[:1])
    with pytest.raises(ValueError, match="alert_check_interval"):
        AlertManager(config).start(0)


# -- wall-clock steps: durations and windows run on the monotonic clock -------------------------------

def test_a_wall_clock_stepped_back_an_hour_does_not_blind_connection_failures(provider):
    # Only the wall clock is faked: durations and windows run on the real monotonic clock.
    collector = MetricsCollector(provider, sample_resources=False)
    wall = Clock()
    manager = AlertManager(AlertConfig(sinks=[]), provider, clock=wall)
    manager.evaluate()  # the evaluator's first look: no failures yet
    wall.now -= 3600  # NTP steps the clock back an hour
    for _ in range(11):
        collector.network.connection_failed("timeout", "outbound", "tcp")
    manager.evaluate()
    assert firing(manager) == {"HighConnectionFailures"}
    (alert,) = manager.active_alerts()
    assert alert.active_since == wall.now  # the stamps are the wall clock's, stepped or not


def test_a_wall_clock_stepped_forward_does_not_fire_a_pending_alert_early(provider):
    collector = MetricsCollector(provider, sample_resources=False)
    wall = Clock()
    manager = AlertManager(AlertConfig([cpu_rule(for_=60)], []), provider, clock=wall)
    cpu(collector, 80)
    manager.evaluate()
    wall.now += 3600  # stepped forward an hour; far less than 60 s really passed
    manager.evaluate()
    assert [a.state for a in manager.active_alerts()] == ["pending"]


def test_for_and_keep_firing_for_count_monotonic_seconds_whatever_the_wall_clock_says(provider):
    collector = MetricsCollector(provider, sample_resources=False)
    wall, mono = Clock(), Clock(100.0)
    changes = []
    manager = AlertManager(AlertConfig([cpu_rule(for_=60, keep_firing_for=30)], [CallbackSink(changes.append)]),
                           provider, clock=wall, monotonic=mono)
    cpu(collector, 80)
    manager.evaluate()
    wall.now -= 3600
    mono.now += 59.9
    manager.evaluate()
    assert not manager.has_alert("Cpu")
    mono.now += 0.1  # 60 monotonic seconds
    wall.now += 7200
    manager.evaluate()
    assert manager.has_alert("Cpu")
    cpu(collector, 10)
    manager.evaluate()
    wall.now -= 3600
    mono.now += 29.9
    manager.evaluate()
    assert manager.has_alert("Cpu")
    mono.now += 0.1
    manager.evaluate()
    assert not manager.has_alert("Cpu")
    assert [(a.state, a.active_since, a.fired_at, a.resolved_at) for a in changes] == [
        ("pending", T0, None, None), ("firing", T0, T0 + 3600, None), ("resolved", T0, T0 + 3600, T0)]


# -- the node's identity on every alert -----------------------------------------------------------------

def test_every_alert_carries_the_node_identity_in_every_sink_and_on_the_gauge(provider, reader, caplog):
    collector = MetricsCollector(provider, sample_resources=False)
    got = []
    manager = AlertManager(AlertConfig(sinks=[CallbackSink(got.append), LogSink()]), provider)
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))
    with caplog.at_level(logging.INFO, logger="p2p_telemetry"):
        manager.evaluate()
        manager.trigger_alert("ManualCheck", labels={"service.instance.id": "someone-else"})  # the node's wins
    assert [(a.name, a.labels) for a in got] == [
        ("HighCpuUsage", {"alertname": "HighCpuUsage", "severity": "warning", **NODE}),
        ("ManualCheck", {"alertname": "ManualCheck", "severity": "warning", **NODE})]
    assert all("'service_instance_id': 'node-1'" in r.getMessage() for r in caplog.records
               if "p2p-telemetry alert" in r.getMessage()) and len(caplog.records) >= 2
    exported = collect(reader)["p2p.alert.active"]
    assert sorted((p["alertname"], p["service_name"], p["service_instance_id"]) for p in exported.attribute_sets()) \
        == [("HighCpuUsage", "p2p-node", "node-1"), ("ManualCheck", "p2p-node", "node-1")]
    manager.stop()


def test_a_manual_alert_before_any_evaluation_carries_the_node_identity(provider):
    MetricsCollector(provider, sample_resources=False)
    manager = AlertManager(AlertConfig(sinks=[]), provider)
    assert manager.trigger_alert(AlertType.UNHEALTHY_PEERS).labels == {
        "alertname": "UnhealthyPeers", "severity": "warning", **NODE}
    manager.stop()


def test_two_nodes_with_the_same_condition_have_two_alerts_with_their_own_identity():
    nodes = []
    for name in ("node-a", "node-b"):
        reader = InMemoryMetricReader()
        provider = node_provider(name, reader)
        collector = MetricsCollector(provider, sample_resources=False)
        collector.record_resource_metrics(ResourceMetrics(cpu_usage=99.0))
        nodes.append((provider, AlertManager(AlertConfig(sinks=[]), provider)))
    try:
        labels = []
        for _, manager in nodes:
            manager.evaluate()
            labels += [a.labels for a in manager.active_alerts()]
        assert labels == [{"alertname": "HighCpuUsage", "severity": "warning", **identity("node-a")},
                          {"alertname": "HighCpuUsage", "severity": "warning", **identity("node-b")}]
    finally:
        for provider, manager in nodes:
            manager.stop()
            provider.shutdown()


# -- AlertManager on the evaluator's public surface; one name, one meaning --------------------------------

def test_the_manager_uses_only_the_evaluators_public_surface():
    import ast
    import inspect

    from p2p_telemetry.alerting import evaluator, manager

    tree = ast.parse(inspect.getsource(manager))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "evaluator"}
    assert used and all(not name.startswith("_") for name in used), used
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "evaluator" for alias in node.names}
    assert imported <= set(evaluator.__all__), imported
    assert all(not name.startswith("_") for name in evaluator.__all__)
    public = {name for name in vars(Evaluator) if not name.startswith("_")}
    assert {"states", "evaluate_rule"}.isdisjoint(public)  # no door to the evaluator's private state


def test_one_name_one_meaning_for_points():
    import importlib
    import pkgutil

    import p2p_telemetry
    from p2p_telemetry import instruments

    for info in pkgutil.walk_packages(p2p_telemetry.__path__, "p2p_telemetry."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "Points"):
            assert module.Points is instruments.Points, f"{info.name}.Points is another type"


def test_start_takes_any_duration_and_names_a_bad_one(provider):
    manager = AlertManager(AlertConfig(sinks=[]), provider)
    with pytest.raises(TypeError, match="alert_check_interval"):
        manager.start([1])
    with pytest.raises(ValueError, match="alert_check_interval"):
        manager.start("soon")
    assert manager.start("50ms").running and manager.start(timedelta(seconds=1)).running  # the second: idempotent
    manager.stop()
    assert not manager.running
    with pytest.raises(TypeError, match="monotonic"):
        AlertManager(AlertConfig(sinks=[]), provider, monotonic=3.0)  # type: ignore[arg-type]


def test_default_rules_hold_when_cpu_and_memory_carry_the_semantic_convention_names(provider):
    from p2p_telemetry import MonitoringConfig, MonitoringSystem

    config = MonitoringConfig(sample_resources=False, resource_names="semconv", alert_check_interval=60.0,
                              alert_config=AlertConfig(sinks=[]))
    with MonitoringSystem(config, meter_provider=provider) as monitoring:
        monitoring.metrics.record_resource_metrics(ResourceMetrics(cpu_usage=95.0, memory_usage=2 << 30))
        monitoring.alert_manager.evaluate()
        assert monitoring.alert_manager.has_alert(AlertType.HIGH_CPU_USAGE)
        assert monitoring.alert_manager.has_alert(AlertType.HIGH_MEMORY_USAGE)
