"""AlertRule validation, the default rules, YAML loading and its error messages, value formatting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from p2p_telemetry import AlertRule, AlertType, default_rules, load_rules
from p2p_telemetry.alerting.promql import prometheus_duration, rule_expr
from p2p_telemetry.alerting.rules import format_value, render


def test_default_rules_are_the_seeds_four():
    rules = {r.name: r for r in default_rules()}
    assert set(rules) == {t.value for t in AlertType}
    assert (rules["HighCpuUsage"].metric, rules["HighCpuUsage"].threshold) == ("p2p.node.cpu.utilization", 0.9)
    assert (rules["HighMemoryUsage"].metric, rules["HighMemoryUsage"].threshold) == ("p2p.node.memory.usage", 1 << 30)
    assert rules["UnhealthyPeers"].attributes == {"p2p.peer.health": "unhealthy"}
    failures = rules["HighConnectionFailures"]
    assert (failures.aggregation, failures.window, failures.op, failures.threshold) == ("increase", 300.0, ">", 10)
    assert failures.group_by == ()  # summed over every series, as the seed's total was


def test_durations_accept_seconds_timedelta_and_prometheus_strings():
    rule = AlertRule("R", "p2p.connection.failures", aggregation="rate", window="5m", for_=timedelta(minutes=2),
                     keep_firing_for="90s")
    assert (rule.window, rule.for_, rule.keep_firing_for) == (300.0, 120.0, 90.0)
    assert prometheus_duration(90) == "1m30s" and prometheus_duration(0.25) == "250ms"
    assert rule_expr(rule) == "rate(p2p_connection_failures_total[5m]) > 0"


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "bad name"}, "name"),
    ({"metric": "p2p.nope"}, "metric"),
    ({"metric": "p2p.peer.latency"}, "metric"),  # a histogram
    ({"attributes": {"p2p.peer.id": "x"}}, "attributes"),
    ({"aggregation": "avg"}, "aggregation"),
    ({"aggregation": "increase"}, "aggregation"),  # cpu is a gauge, not a counter
    ({"op": "=>"}, "op"),
    ({"threshold": float("nan")}, "threshold"),
    ({"threshold": "1"}, "threshold"),
    ({"for_": -1}, "for_"),
    ({"keep_firing_for": "soon"}, "keep_firing_for"),
    ({"severity": ""}, "severity"),
    ({"labels": {"alertname": "x"}}, "labels"),
    ({"summary": "{cpu}"}, "summary"),
    ({"group_by": ["p2p.peer.health"]}, "group_by"),
])
def test_a_bad_rule_names_itself_and_the_field(kwargs, field):
    args = {"name": "Cpu", "metric": "p2p.node.cpu.utilization", **kwargs}
    with pytest.raises(ValueError, match=rf"rule '{args['name']}'|rule 'bad name'") as error:
        AlertRule(**args)
    assert f"'{field}'" in str(error.value)


def test_summary_template():
    assert render("{value} {p2p.peer.health} peers", 2.0, {"p2p.peer.health": "unhealthy"}) == "2 unhealthy peers"


@pytest.mark.parametrize("value, text", [
    (0.95, "0.95"), (2.0, "2"), (15.0, "15"), (123456.0, "123456"), (1e6, "1e+06"),
    (2147483648.0, "2.147483648e+09"), (0.0001, "0.0001"), (1e-05, "1e-05"), (0.0, "0"), (-3.5, "-3.5"),
    (float("nan"), "NaN"), (float("inf"), "+Inf"),
])
def test_values_print_as_prometheus_templates_print_them(value, text):
    assert format_value(value) == text  # Go's %v of a float64


def test_load_rules_from_yaml(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("""
rules:
  - name: ManyFailures
    metric: p2p.connection.failures
    attributes: {error.type: timeout}
    aggregation: increase
    window: 10m
    op: ">="
    threshold: 5
    for: 1m
    keep_firing_for: 30s
    severity: critical
    summary: "{value} timeouts ({error.type})"
    labels: {team: p2p}
  - name: NoPeers
    metric: p2p.peers
    group_by: []
    op: "=="
    threshold: 0
""")
    failures, peers = load_rules(path)
    assert failures == AlertRule("ManyFailures", "p2p.connection.failures", {"error.type": "timeout"}, "increase",
                                 600.0, ">=", 5, 60.0, 30.0, "critical", "{value} timeouts ({error.type})",
                                 {"team": "p2p"})
    assert peers.group_by == () and peers.op == "=="


@pytest.mark.parametrize("text, message", [
    ("rules: [{name: A, metric: p2p.node.cpu.utilization, threshold: high}]", r"rule 'A': field 'threshold'"),
    ("- {name: A, metric: p2p.node.cpu.utilization, treshold: 1}", r"rule 'A': unknown field 'treshold'"),
    ("- {metric: p2p.node.cpu.utilization}", r"rule '#1': field 'name' is missing"),
    ("- {name: A}", r"rule 'A': field 'metric' is missing"),
    ("- {name: A, metric: p2p.node.cpu.utilization}\n- {name: A, metric: p2p.peers}", r"rule 'A': field 'name'"),
    ("- {name: B, metric: p2p.peers, for: 5 minutes}", r"rule 'B': field 'for_'"),
    ("rules: {name: A}", r"expected a list of rules"),
    ("- [1, 2]", r"rule #1: expected a mapping"),
    ("rules: [unclosed", r"cannot read rules"),
])
def test_a_bad_rule_file_says_where(tmp_path, text, message):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        load_rules(path)
    assert str(path) in str(error.value)


def test_a_missing_rule_file(tmp_path):
    with pytest.raises(ValueError, match="nope.yml: cannot read rules"):
        load_rules(tmp_path / "nope.yml")
