"""AlertRule and FleetRule validation, the default rules, YAML loading and its error messages, the duration grammar
both ways, per-node PromQL, value formatting."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from p2p_telemetry import AlertRule, AlertType, FleetRule, default_rules, fleet_rules, load_rules, rules_to_prometheus
from p2p_telemetry.alerting.promql import NODE_JOIN, fleet_expr, prometheus_duration, rule_expr
from p2p_telemetry.alerting.rules import format_value, render
from p2p_telemetry.bounds import parse_duration


def test_default_rules_are_the_seeds_four():
    rules = {r.name: r for r in default_rules()}
    assert set(rules) == {t.value for t in AlertType}
    assert (rules["HighCpuUsage"].metric, rules["HighCpuUsage"].threshold) == ("p2p.node.cpu.utilization", 0.9)
    assert (rules["HighMemoryUsage"].metric, rules["HighMemoryUsage"].threshold) == ("p2p.node.memory.usage", 1 << 30)
    assert rules["UnhealthyPeers"].attributes == {"p2p.peer.health": "unhealthy"}
    failures = rules["HighConnectionFailures"]
    assert (failures.aggregation, failures.window, failures.op, failures.threshold) == ("increase", 300.0, ">", 10)
    assert failures.group_by == ()  # the sum of the node's series, as the seed's total was (per node in PromQL too)


def test_durations_accept_seconds_timedelta_and_prometheus_strings():
    rule = AlertRule("R", "p2p.connection.failures", aggregation="rate", window="5m", for_=timedelta(minutes=2),
                     keep_firing_for="90s")
    assert (rule.window, rule.for_, rule.keep_firing_for) == (300.0, 120.0, 90.0)
    assert prometheus_duration(90) == "1m30s" and prometheus_duration(0.25) == "250ms"
    assert rule_expr(rule) == (
        "sum by (service_name, service_instance_id, p2p_connection_direction, network_transport, p2p_transport, "
        "error_type) "
        "(rate(p2p_connection_failures_total[5m]) * on (job, instance) group_left (service_name, service_instance_id) "
        "target_info) > 0")


@given(st.integers(min_value=0, max_value=10 * 365 * 86_400_000))
def test_durations_read_back_what_rules_to_prometheus_writes(ms):
    seconds = ms / 1000
    written = prometheus_duration(seconds)
    assert parse_duration(written) == pytest.approx(seconds, abs=1e-9)
    rule = AlertRule("R", "p2p.connection.failures", aggregation="increase", window=max(written, "1ms", key=len)
                     if ms == 0 else written, for_=written, keep_firing_for=written)
    assert rule.for_ == rule.keep_firing_for == pytest.approx(seconds, abs=1e-9)


def test_load_rules_reads_the_durations_a_rule_file_holds(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("- {name: A, metric: p2p.connection.failures, aggregation: increase, window: 1h30m, for: 1m30s,"
                    " keep_firing_for: 2d}\n")
    (rule,) = load_rules(path)
    assert (rule.window, rule.for_, rule.keep_firing_for) == (5400.0, 90.0, 172_800.0)
    assert prometheus_duration(rule.for_) == "1m30s"


def test_every_node_rule_is_evaluated_per_node_and_none_sums_the_fleet():
    by = "sum by (service_name, service_instance_id"
    for rule in default_rules():
        expr = rule_expr(rule)
        assert expr.startswith(by) and f"* {NODE_JOIN})" in expr, expr
    exprs = {r.name: rule_expr(r) for r in default_rules()}
    assert exprs["HighConnectionFailures"].startswith("sum by (service_name, service_instance_id) (increase(")
    assert exprs["UnhealthyPeers"].startswith("sum by (service_name, service_instance_id, p2p_peer_health) (")
    grouped = AlertRule("G", "p2p.connection.failures", aggregation="increase", group_by=("error.type",))
    assert rule_expr(grouped).startswith("sum by (service_name, service_instance_id, error_type) (increase(")


def test_fleet_rules_count_nodes_and_carry_no_node_labels():
    text = rules_to_prometheus(default_rules(), fleet=fleet_rules())
    groups = yaml.safe_load(text)["groups"]
    assert [g["name"] for g in groups] == ["p2p-telemetry", "p2p-telemetry-fleet"]
    fleet = {r["alert"]: r for r in groups[1]["rules"]}
    assert set(fleet) == {"FleetUnhealthyPeers", "FleetConnectionFailures"}
    unhealthy = fleet["FleetUnhealthyPeers"]
    assert unhealthy["labels"] == {"severity": "warning"} and unhealthy["for"] == "2m"
    assert unhealthy["expr"] == (
        "count(count by (service_name, service_instance_id) (" + rule_expr(default_rules()[2]) + ")) / "
        f"count(count by (service_name, service_instance_id) (p2p_peers * {NODE_JOIN})) > 0.25")
    assert fleet_expr(fleet_rules()[0]) == unhealthy["expr"]
    assert len(yaml.safe_load(rules_to_prometheus(default_rules()))["groups"]) == 1  # only when asked for


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "bad name"}, "name"),
    ({"node_rule": "UnhealthyPeers"}, "node_rule"),
    ({"share": 1.0}, "share"),
    ({"share": "half"}, "share"),
    ({"for_": "soon"}, "for_"),
    ({"severity": ""}, "severity"),
    ({"summary": "{p2p.peer.health}"}, "summary"),
])
def test_a_bad_fleet_rule_names_the_field(kwargs, field):
    args = {"name": "Fleet", "node_rule": default_rules()[2], "share": 0.5, **kwargs}
    with pytest.raises(ValueError, match="fleet rule") as error:
        FleetRule(**args)
    assert f"'{field}'" in str(error.value)


@pytest.mark.parametrize("label", ["service_name", "service_instance_id", "severity"])
def test_rule_labels_never_override_the_nodes_identity(label):
    with pytest.raises(ValueError, match=f"field 'labels' must not set {label}"):
        AlertRule("R", "p2p.peers", labels={label: "x"})


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
