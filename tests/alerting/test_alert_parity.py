"""Same rules, same series of two nodes, same evaluation times: Prometheus (promtool) and the in-process evaluator
agree: only the troubled node's alerts fire, each with its service_instance_id, at the same minutes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from alert_nodes import Clock, node_provider
from alert_scenario import EXPECTED, FLEET_NAMES, MINUTES, NODES, TROUBLED, promtool_test, rules

from p2p_telemetry import (
    AlertConfig,
    AlertManager,
    HealthStatus,
    MetricsCollector,
    PeerStats,
    ResourceMetrics,
    default_rules,
    fleet_rules,
    rules_to_prometheus,
)
from realstack import binary

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


def test_in_process_evaluators_of_two_nodes_give_the_expected_alerts_at_each_minute():
    clock = Clock(T0)
    nodes = []
    for node in NODES:
        provider = node_provider(node.instance_id)
        collector = MetricsCollector(provider, sample_resources=False)
        manager = AlertManager(AlertConfig(rules(), []), provider, clock=clock, monotonic=clock)
        collector.network.attempts("outbound", "tcp")  # the pair's failure series exist, at 0, from the start
        nodes.append((node, provider, collector, manager, collector.network.failures("timeout", "outbound", "tcp")))
    recorded = {node.instance_id: 0 for node in NODES}
    for minute in range(MINUTES):
        clock.now = T0 + 60 * minute
        got: dict[tuple[int, str], list] = {}
        for node, _, collector, manager, timeouts in nodes:
            collector.record_resource_metrics(ResourceMetrics(cpu_usage=node.cpu[minute] * 100,
                                                              memory_usage=node.memory[minute]))
            for i in range(2):
                health = HealthStatus.UNHEALTHY if i < node.unhealthy[minute] else HealthStatus.HEALTHY
                collector.record_peer_metrics(f"peer-{i}", PeerStats(health_status=health))
            timeouts.add(node.failures[minute] - recorded[node.instance_id])
            recorded[node.instance_id] = node.failures[minute]
            manager.evaluate()
            for alert in manager.active_alerts():
                if alert.state == "firing":
                    assert alert.labels["service_instance_id"] == TROUBLED.instance_id
                    labels = {k: v for k, v in alert.labels.items() if k != "alertname"}
                    got.setdefault((minute, alert.name), []).append((labels, alert.summary))
        want = {key: value for key, value in EXPECTED.items() if key[0] == minute and key[1] not in FLEET_NAMES}
        assert got == want, f"minute {minute}"
    for _, provider, _, manager, _ in nodes:
        manager.stop()
        provider.shutdown()


@pytest.mark.integration
def test_prometheus_engine_gives_the_same_alerts(tmp_path):
    promtool = binary("promtool")
    (tmp_path / "rules.yml").write_text(rules_to_prometheus(rules(), fleet=fleet_rules()))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(promtool_test("rules.yml"), sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_checks_the_default_rules(tmp_path):
    path = tmp_path / "p2p-alerts.rules.yml"
    path.write_text(rules_to_prometheus(default_rules(), fleet=fleet_rules()))
    result = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_the_shipped_rule_file_has_not_drifted():
    shipped = (REPO / "collector-config" / "p2p-alerts.rules.yml").read_text()
    assert shipped == rules_to_prometheus(default_rules(), fleet=fleet_rules()), (
        "collector-config/p2p-alerts.rules.yml differs from rules_to_prometheus(default_rules(), fleet=fleet_rules()); "
        "regenerate it with `p2p-telemetry rules > collector-config/p2p-alerts.rules.yml`")
