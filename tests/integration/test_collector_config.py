"""collector-config/ is checked by its own tools: promtool, amtool; the Collector's pipelines and the
dashboard's PromQL are checked against what otelcol-contrib ships and what the catalogue exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from p2p_telemetry import default_rules, fleet_rules
from p2p_telemetry.catalogue import CATALOGUE, Kind
from realstack import binary

CONFIG = Path(__file__).resolve().parents[2] / "collector-config"

# Components of the otelcol-contrib distribution (its builder manifest), by kind; a subset that
# covers what an operator of p2p nodes would reasonably put in this file.
CONTRIB = {
    "receivers": {"otlp", "prometheus", "hostmetrics", "filelog", "kafka", "jaeger", "zipkin", "journald",
                  "k8s_cluster", "kubeletstats", "statsd", "carbon", "influxdb", "fluentforward", "syslog"},
    "processors": {"batch", "memory_limiter", "attributes", "resource", "resourcedetection", "filter",
                   "transform", "k8sattributes", "cumulativetodelta", "deltatocumulative", "groupbyattrs",
                   "metricstransform", "probabilistic_sampler", "tail_sampling", "span", "redaction"},
    "exporters": {"debug", "otlp", "otlphttp", "prometheus", "prometheusremotewrite", "file", "kafka",
                  "loadbalancing", "elasticsearch", "clickhouse", "influxdb", "nop"},
    "extensions": {"health_check", "pprof", "zpages", "basicauth", "bearertokenauth", "file_storage"},
}


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


FLEET_TARGETS = "/tmp/p2p-telemetry-fleet/targets.json"  # where `p2p-telemetry fleet` writes by default (Linux)


def test_promtool_accepts_prometheus_yml(tmp_path):
    # prometheus.yml names its rule file relatively; check the folder as it ships.
    result = run(binary("promtool"), "check", "config", str(CONFIG / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    config = yaml.safe_load((CONFIG / "prometheus.yml").read_text())
    assert config["rule_files"] == ["p2p-alerts.rules.yml"]
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert "127.0.0.1:9464" in targets and "127.0.0.1:8889" in targets
    files = [f for job in config["scrape_configs"] for sd in job.get("file_sd_configs", []) for f in sd["files"]]
    assert files == [FLEET_TARGETS]
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["127.0.0.1:9093"]


def test_promtool_accepts_the_agent_and_central_configs():
    agent = run(binary("promtool"), "check", "config", "--agent", str(CONFIG / "prometheus-agent.yml"))
    assert agent.returncode == 0 and "SUCCESS" in agent.stdout + agent.stderr, agent.stdout + agent.stderr
    central = run(binary("promtool"), "check", "config", str(CONFIG / "prometheus-central.yml"))
    assert central.returncode == 0, central.stdout + central.stderr
    assert "1 rule files found" in central.stdout + central.stderr  # the rule file next to it, found and valid

    config = yaml.safe_load((CONFIG / "prometheus-agent.yml").read_text())
    assert "rule_files" not in config and "alerting" not in config  # an agent evaluates and alerts nothing
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "p2p-node" and job["file_sd_configs"][0]["files"] == [FLEET_TARGETS]
    shard, keep = job["relabel_configs"]
    assert shard["action"] == "hashmod" and shard["source_labels"] == ["__address__"]
    assert keep == {"source_labels": [shard["target_label"]], "regex": "0", "action": "keep"}
    assert [w["url"] for w in config["remote_write"]] == ["http://127.0.0.1:9090/api/v1/write"]

    central_config = yaml.safe_load((CONFIG / "prometheus-central.yml").read_text())
    assert central_config["rule_files"] == ["p2p-alerts.rules.yml"]
    assert central_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    assert "--web.enable-remote-write-receiver" in (CONFIG / "prometheus-central.yml").read_text()
    assert "--enable-feature=agent" in (CONFIG / "prometheus-agent.yml").read_text()


def test_promtool_accepts_the_rule_file():
    result = run(binary("promtool"), "check", "rules", str(CONFIG / "p2p-alerts.rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(default_rules()) + len(fleet_rules())} rules found" in result.stdout


def test_amtool_accepts_alertmanager_yml():
    result = run(binary("amtool"), "check-config", str(CONFIG / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((CONFIG / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    assert any("webhook_configs" in r for r in receivers.values())


def test_collector_pipelines_use_defined_contrib_components():
    config = yaml.safe_load((CONFIG / "otelcol.yaml").read_text())
    pipelines = config["service"]["pipelines"]
    assert "metrics" in pipelines
    for kind in ("receivers", "processors", "exporters"):
        defined = set(config.get(kind, {}))
        for name, pipeline in pipelines.items():
            for component in pipeline.get(kind, []):
                assert component in defined, f"{name}: {kind[:-1]} {component} is not defined"
        for component in defined:
            assert component.split("/")[0] in CONTRIB[kind], f"{component} is not an otelcol-contrib {kind[:-1]}"
    for component in config["service"].get("extensions", []):
        assert component in config.get("extensions", {}) and component.split("/")[0] in CONTRIB["extensions"]
    metrics = pipelines["metrics"]
    assert metrics["receivers"] == ["otlp"] and metrics["processors"][0] == "memory_limiter"
    assert "batch" in metrics["processors"] and {"prometheus", "debug"} <= set(metrics["exporters"])
    otlp = config["receivers"]["otlp"]["protocols"]
    assert set(otlp) == {"grpc", "http"}
    for endpoint in (otlp["grpc"]["endpoint"], otlp["http"]["endpoint"], config["exporters"]["prometheus"]["endpoint"]):
        assert re.fullmatch(r"\$\{env:\w+:-127\.0\.0\.1:\d+\}", endpoint), endpoint


PROMQL_WORDS = {"sum", "by", "without", "rate", "histogram_quantile", "bottomk", "topk", "max", "min", "avg",
                "count", "increase", "m", "s", "h", "or", "and", "unless", "vector"}
DASHBOARDS = ("grafana-dashboard.json", "grafana-fleet-dashboard.json")
#: The OTel Prometheus exporter's resource series: every node's identity (service_name, service_instance_id).
IDENTITY_SERIES = {"target_info"}
IDENTITY_LABELS = {"service_name", "service_instance_id"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right) \(([^)]*)\)")


def _catalogue_series() -> set[str]:
    series = set()
    for spec in CATALOGUE:
        if spec.kind is Kind.HISTOGRAM:
            series |= {spec.prometheus + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            series.add(spec.prometheus)
    return series


def _catalogue_labels() -> set[str]:
    return {key.replace(".", "_") for spec in CATALOGUE for key in spec.attributes} | {"le", "instance", "job"}


def dashboard_panels(name: str) -> list[dict]:
    return json.loads((CONFIG / name).read_text())["panels"]


def _dashboard_exprs(name: str = "grafana-dashboard.json") -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard_panels(name) for target in panel.get("targets", [])]


def as_query(expr: str) -> str:
    """A panel's expression with Grafana's variables set to "all"."""
    return expr.replace("$instance", ".*").replace("$node", ".*")


def test_dashboard_has_the_panels_an_operator_needs():
    titles = " | ".join(title.lower() for title, _ in _dashboard_exprs())
    for wanted in ("peers by health", "bytes/s by protocol and direction", "active connections",
                   "failures/s by error.type", "set-up latency", "cpu", "memory", "active alerts by node",
                   "worst peer reputations, with their node"):
        assert wanted in titles, wanted
    exprs = " ".join(expr for _, expr in _dashboard_exprs())
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


def test_fleet_dashboard_has_a_node_variable_per_node_tables_totals_and_alerts_by_node():
    dashboard = json.loads((CONFIG / "grafana-fleet-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["node"]["query"]["query"] == "label_values(target_info, service_instance_id)"
    assert variables["node"]["multi"] and variables["node"]["includeAll"]
    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    for title in ("Worst nodes by unhealthy peers", "Worst nodes by connection failure rate", "Alerts by node"):
        assert panels[title]["type"] == "table", title
        (target,) = panels[title]["targets"]
        assert "service_instance_id" in GROUPING.search(target["expr"]).group(2)  # one row per node
        assert target["instant"] and target["format"] == "table"
    for title in ("Fleet peers by health", "Fleet bytes/s by direction", "Fleet connection failures/s by error.type"):
        assert panels[title]["type"] == "timeseries"
    for panel in dashboard["panels"]:  # every panel follows the node variable
        for target in panel["targets"]:
            assert 'target_info{service_instance_id=~"$node"}' in target["expr"], panel["title"]
    assert len({(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]}) == len(dashboard["panels"])


@pytest.mark.parametrize("dashboard", DASHBOARDS)
def test_dashboard_promql_refers_only_to_catalogue_series(dashboard, tmp_path):
    series, labels = _catalogue_series() | IDENTITY_SERIES, _catalogue_labels() | IDENTITY_LABELS
    exprs = _dashboard_exprs(dashboard)
    assert exprs
    for title, expr in exprs:
        selectors_only = re.sub(r"\{[^}]*\}", " ", GROUPING.sub(" ", expr))
        names = set(re.findall(r"\b[a-zA-Z_:][\w:]*\b(?!\s*\()", selectors_only)) - PROMQL_WORDS
        assert names and names <= series, (title, names - series)
        for _, grouping in GROUPING.findall(expr):
            used = {label.strip() for label in grouping.split(",") if label.strip()}
            assert used <= labels | {"alertname", "alertstate", "severity"}, (title, used - labels)
        for selector in re.findall(r"\{([^}]*)\}", expr):
            used = {m.split("=")[0].strip(" !~") for m in selector.split(",")}
            assert used <= labels | {"alertname", "alertstate", "severity"}, (title, used - labels)
    # The syntax is Prometheus's to judge: each expression as a recording rule, through promtool.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel{i}", "expr": as_query(expr)} for i, (_, expr) in enumerate(exprs)]}]}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(binary("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(exprs)} rules found" in result.stdout
