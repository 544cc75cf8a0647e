"""Same rules, same series, same evaluation times: Prometheus (promtool) and the in-process evaluator agree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from alert_scenario import CPU, EXPECTED, FAILURES, MEMORY, MINUTES, UNHEALTHY, promtool_test, rules

from p2p_telemetry import (
    AlertConfig,
    AlertManager,
    HealthStatus,
    MetricsCollector,
    PeerStats,
    ResourceMetrics,
    default_rules,
    rules_to_prometheus,
)
from realstack import binary

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


def test_in_process_evaluator_gives_the_expected_alerts_at_each_minute(provider):
    collector = MetricsCollector(provider, sample_resources=False)
    now = [T0]
    manager = AlertManager(AlertConfig(rules(), []), provider, clock=lambda: now[0])
    collector.network.attempts("outbound", "tcp")  # the pair's failure series exist, at 0, from the start
    timeouts = collector.network.failures("timeout", "outbound", "tcp")
    recorded = 0
    for minute in range(MINUTES):
        collector.record_resource_metrics(ResourceMetrics(cpu_usage=CPU[minute] * 100, memory_usage=MEMORY[minute]))
        for i in range(2):
            health = HealthStatus.UNHEALTHY if i < UNHEALTHY[minute] else HealthStatus.HEALTHY
            collector.record_peer_metrics(f"peer-{i}", PeerStats(health_status=health))
        timeouts.add(FAILURES[minute] - recorded)
        recorded = FAILURES[minute]
        now[0] = T0 + 60 * minute
        manager.evaluate()
        got = {}
        for alert in manager.active_alerts():
            if alert.state == "firing":
                labels = {k: v for k, v in alert.labels.items() if k != "alertname"}
                got.setdefault((minute, alert.name), []).append((labels, alert.summary))
        want = {key: value for key, value in EXPECTED.items() if key[0] == minute}
        assert got == want, f"minute {minute}"
    manager.stop()


@pytest.mark.integration
def test_prometheus_engine_gives_the_same_alerts(tmp_path):
    promtool = binary("promtool")
    (tmp_path / "rules.yml").write_text(rules_to_prometheus(rules()))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(promtool_test("rules.yml"), sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_checks_the_default_rules(tmp_path):
    path = tmp_path / "p2p-alerts.rules.yml"
    path.write_text(rules_to_prometheus(default_rules()))
    result = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_the_shipped_rule_file_has_not_drifted():
    shipped = (REPO / "collector-config" / "p2p-alerts.rules.yml").read_text()
    assert shipped == rules_to_prometheus(default_rules()), (
        "collector-config/p2p-alerts.rules.yml differs from rules_to_prometheus(default_rules()); regenerate it")
