"""collector-config/ is checked by its own tools: promtool, amtool; the Collector's pipelines and the
dashboard's PromQL are checked against what otelcol-contrib ships and what the catalogue exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

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


def test_promtool_accepts_prometheus_yml(tmp_path):
    # prometheus.yml names its rule file relatively; check the folder as it ships.
    result = run(binary("promtool"), "check", "config", str(CONFIG / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    config = yaml.safe_load((CONFIG / "prometheus.yml").read_text())
    assert config["rule_files"] == ["p2p-alerts.rules.yml"]
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert "127.0.0.1:9464" in targets and "127.0.0.1:8889" in targets
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["127.0.0.1:9093"]


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
                "count", "increase", "m", "s", "h"}


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


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads((CONFIG / "grafana-dashboard.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_has_the_panels_an_operator_needs():
    titles = " | ".join(title.lower() for title, _ in _dashboard_exprs())
    for wanted in ("peers by health", "bytes/s by protocol and direction", "active connections",
                   "failures/s by error.type", "set-up latency", "cpu", "memory", "active alerts"):
        assert wanted in titles, wanted
    exprs = " ".join(expr for _, expr in _dashboard_exprs())
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


def test_dashboard_promql_refers_only_to_catalogue_series(tmp_path):
    series, labels = _catalogue_series(), _catalogue_labels()
    for title, expr in _dashboard_exprs():
        selectors_only = re.sub(r"\b(by|without) \([^)]*\)|\{[^}]*\}", " ", expr)
        names = set(re.findall(r"\b[a-zA-Z_:][\w:]*\b(?!\s*\()", selectors_only)) - PROMQL_WORDS
        assert names and names <= series, (title, names - series)
        for grouping in re.findall(r"\bby \(([^)]*)\)", expr):
            used = {label.strip() for label in grouping.split(",")}
            assert used <= labels | {"alertname", "alertstate", "severity"}, (title, used - labels)
    # The syntax is Prometheus's to judge: each expression as a recording rule, through promtool.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel{i}", "expr": expr.replace("$instance", ".*")}
        for i, (_, expr) in enumerate(_dashboard_exprs())]}]}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(binary("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr

