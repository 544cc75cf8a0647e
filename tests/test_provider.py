"""configure(): exporters from arguments and OTEL_* variables (one settings table), the node's identity,
its Views, never clobbering a node's provider."""

from __future__ import annotations

import inspect
import logging
import math
import socket
import urllib.request
from datetime import timedelta

import pytest
from opentelemetry import metrics
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, ExplicitBucketHistogramAggregation, View
from prometheus_client import REGISTRY

from conftest import collect
from p2p_telemetry import MetricsCollector, configure, setup_info
from p2p_telemetry._settings import SETTINGS
from p2p_telemetry.bounds import SettingTypeError
from p2p_telemetry.provider import MAX_OTLP_TIMEOUT

OTEL_VARS = ("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
             "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT",
             "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED",
             "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, clean_global):
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def shutdown():
    providers = []
    yield providers.append
    for provider in providers:
        provider.shutdown()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_default_is_prometheus_on_loopback(shutdown):
    provider = configure(prometheus_port=0)
    shutdown(provider)
    info = setup_info(provider)
    assert info.exporters == ("prometheus",) and info.prometheus_url.startswith("http://127.0.0.1:")
    assert metrics.get_meter_provider() is provider
    MetricsCollector().network.bytes_sent(5, protocol="task")
    text = scrape(info.prometheus_url)
    assert 'p2p_network_io_bytes_total{' in text and 'service_name="p2p-node"' in text
    assert not any(m.name.startswith("p2p_") for m in REGISTRY.collect())  # private registry


def test_prometheus_port_in_use_fails_at_configure(shutdown):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"prometheus_port {port}"):
            configure(prometheus_port=port, set_global=False)
    assert isinstance(metrics.get_meter_provider(), type(metrics.get_meter_provider()))


def test_environment_variables_are_the_fallback(monkeypatch, shutdown):
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp,prometheus")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "2500")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "node-7")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    provider = configure(otlp_endpoint="http://127.0.0.1:1", set_global=False)
    shutdown(provider)
    info = setup_info(provider)
    assert info.exporters == ("otlp", "prometheus")
    assert (info.otlp_protocol, info.export_interval) == ("http/protobuf", 2.5)
    assert info.otlp_timeout == min(MAX_OTLP_TIMEOUT, 2.5)
    assert provider._sdk_config.resource.attributes["service.name"] == "node-7"
    assert provider._sdk_config.resource.attributes["deployment.environment"] == "test"
    assert metrics.get_meter_provider() is not provider


def test_arguments_win_over_environment(monkeypatch, shutdown):
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    provider = configure(exporters=["none"], extra_readers=[InMemoryMetricReader()], set_global=False)
    shutdown(provider)
    assert setup_info(provider).exporters == ()


@pytest.mark.parametrize("kwargs, setting", [
    ({"exporters": ["zipkin"]}, "exporters"),
    ({"exporters": 5}, "exporters"),
    ({"otlp_protocol": "http/json", "exporters": ["otlp"]}, "otlp_protocol"),
    ({"prometheus_port": 70000}, "prometheus_port"),
    ({"prometheus_port": "9464"}, "prometheus_port"),
    ({"prometheus_host": ""}, "prometheus_host"),
    ({"export_interval": 0}, "export_interval"),
    ({"export_interval": float("nan")}, "export_interval"),
    ({"otlp_endpoint": "127.0.0.1:4317"}, "otlp_endpoint"),
    ({"service_name": 3}, "service_name"),
    ({"extra_readers": [object()]}, "extra_readers"),
    ({"set_global": "yes"}, "set_global"),
])
def test_bad_arguments_name_the_setting(kwargs, setting):
    with pytest.raises(ValueError, match=setting):
        configure(**kwargs)


@pytest.mark.parametrize("variable, value", [
    ("OTEL_METRICS_EXPORTER", "jaeger"),
    ("OTEL_EXPORTER_PROMETHEUS_PORT", "http"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "-5"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
])
def test_bad_environment_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    if variable == "OTEL_EXPORTER_OTLP_PROTOCOL":
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    with pytest.raises(ValueError, match=variable):
        configure()


def test_existing_provider_is_never_replaced(caplog):
    node_reader = InMemoryMetricReader()
    node_provider = MeterProvider(metric_readers=[node_reader])
    metrics.set_meter_provider(node_provider)
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        assert configure(prometheus_port=0) is node_provider
    assert metrics.get_meter_provider() is node_provider
    assert "already installed" in caplog.text


def test_sdk_disabled(monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert isinstance(configure(prometheus_port=0), NoOpMeterProvider)


# --- the settings table --------------------------------------------------------------------------

def test_every_argument_of_configure_is_a_row_of_the_settings_table():
    assert set(inspect.signature(configure).parameters) == set(SETTINGS)
    for name, setting in SETTINGS.items():
        assert setting.argument == name and all(v.startswith("OTEL_") for v in setting.variables)


WRONG_TYPES = [
    ({"exporters": 5}, "exporters"),
    ({"exporters": ["prometheus", 5]}, "exporters"),
    ({"prometheus_port": "9464"}, "prometheus_port"),
    ({"prometheus_port": True}, "prometheus_port"),
    ({"prometheus_host": 127}, "prometheus_host"),
    ({"otlp_protocol": 2, "exporters": ["otlp"]}, "otlp_protocol"),
    ({"export_interval": [1]}, "export_interval"),
    ({"otlp_endpoint": b"http://127.0.0.1:4317"}, "otlp_endpoint"),
    ({"service_name": 3}, "service_name"),
    ({"extra_readers": [object()]}, "extra_readers"),
    ({"extra_readers": InMemoryMetricReader()}, "extra_readers"),
    ({"views": [object()]}, "views"),
    ({"views": View(instrument_name="x")}, "views"),
    ({"set_global": "yes"}, "set_global"),
    ({"service_instance_id": 7}, "service_instance_id"),
    ({"resource_attributes": [("region", "eu")]}, "resource_attributes"),
    ({"resource_attributes": {1: "eu"}}, "resource_attributes"),
    ({"resource_attributes": {"region": object()}}, "resource_attributes['region']"),
    ({"resource_attributes": {"ports": [1, "2"]}}, "resource_attributes['ports']"),
]


@pytest.mark.parametrize("kwargs, setting", WRONG_TYPES)
def test_a_wrong_type_is_a_type_error_naming_the_setting(kwargs, setting):
    with pytest.raises(SettingTypeError) as raised:
        configure(**kwargs)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(setting)


WRONG_VALUES = [
    ({"export_interval": 0}, "export_interval"),
    ({"export_interval": "soon"}, "export_interval"),
    ({"export_interval": timedelta(seconds=-1)}, "export_interval"),
    ({"prometheus_port": -1}, "prometheus_port"),
    ({"exporters": "prometheus,zipkin"}, "exporters"),
    ({"service_instance_id": ""}, "service_instance_id"),
    ({"service_instance_id": "node\n1"}, "service_instance_id"),
    ({"service_instance_id": "x" * 257}, "service_instance_id"),
    ({"resource_attributes": {" ": "eu"}}, "resource_attributes"),
    ({"resource_attributes": {"load": math.inf}}, "resource_attributes['load']"),
]


@pytest.mark.parametrize("kwargs, setting", WRONG_VALUES)
def test_a_wrong_value_is_a_value_error_naming_the_setting(kwargs, setting):
    with pytest.raises(ValueError) as raised:
        configure(**kwargs)
    assert not isinstance(raised.value, TypeError)
    assert str(raised.value).startswith(setting)


def test_a_bad_variable_is_named_with_the_argument_it_stands_for(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "http")
    with pytest.raises(ValueError, match=r"^OTEL_EXPORTER_PROMETHEUS_PORT \(the prometheus_port setting\)"):
        configure()
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "0")
    with pytest.raises(ValueError, match=r"^OTEL_METRIC_EXPORT_INTERVAL \(the export_interval setting\)"):
        configure(exporters=["none"])


def test_variables_of_an_exporter_not_chosen_are_not_read(monkeypatch, shutdown):
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "not a port")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")
    provider = configure(exporters=["console"], set_global=False)
    shutdown(provider)
    assert setup_info(provider).exporters == ("console",)


@pytest.mark.parametrize("interval, seconds", [("1m30s", 90.0), (timedelta(milliseconds=2500), 2.5), (7, 7.0)])
def test_export_interval_takes_any_duration(interval, seconds, shutdown):
    provider = configure(exporters=["console"], export_interval=interval, set_global=False)
    shutdown(provider)
    assert setup_info(provider).export_interval == seconds


# --- node identity -------------------------------------------------------------------------------

def test_the_node_identity_reaches_prometheus_target_info_and_every_reader(monkeypatch, shutdown):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,region=eu,service.instance.id=env-id")
    reader = InMemoryMetricReader()
    provider = configure(service_name="relay", service_instance_id="12D3KooWExampleNode",
                         resource_attributes={"region": "us", "node.roles": ("relay", "dht")},
                         prometheus_port=0, extra_readers=[reader], set_global=False)
    shutdown(provider)
    MetricsCollector(provider, sample_resources=False).network.bytes_sent(5, protocol="task")

    text = scrape(setup_info(provider).prometheus_url)
    target_info = next(line for line in text.splitlines() if line.startswith("target_info{"))
    for label in ('service_name="relay"', 'service_instance_id="12D3KooWExampleNode"', 'region="us"',
                  'deployment_environment="test"'):
        assert label in target_info
    expected = {"service.name": "relay", "service.instance.id": "12D3KooWExampleNode", "region": "us",
                "deployment.environment": "test", "node.roles": ("relay", "dht")}
    resource = dict(collect(reader).resources[0].attributes)  # also the SDK's own telemetry.sdk.*
    assert {key: resource.get(key) for key in expected} == expected
    info = setup_info(provider)
    assert (info.service_name, info.service_instance_id) == ("relay", "12D3KooWExampleNode")


def test_without_arguments_the_identity_comes_from_the_environment_then_a_random_id(monkeypatch, shutdown):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    first, second = (configure(exporters=["none"], extra_readers=[InMemoryMetricReader()], set_global=False)
                     for _ in range(2))
    shutdown(first)
    shutdown(second)
    assert setup_info(first).service_name == "from-env"
    assert setup_info(first).service_instance_id  # random, one per process: a restart is a new node
    assert setup_info(first).service_instance_id == setup_info(second).service_instance_id

    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=env-id")
    provider = configure(exporters=["none"], resource_attributes={"service.name": "from-argument"},
                         set_global=False)
    shutdown(provider)
    assert (setup_info(provider).service_name, setup_info(provider).service_instance_id) == (
        "from-argument", "env-id")


def test_service_instance_id_wins_over_resource_attributes(shutdown):
    provider = configure(exporters=["none"], service_instance_id="peer-id",
                         resource_attributes={"service.instance.id": "other"}, set_global=False)
    shutdown(provider)
    assert setup_info(provider).service_instance_id == "peer-id"


# --- views ---------------------------------------------------------------------------------------

def test_views_apply_to_the_provider_configure_builds(shutdown):
    reader = InMemoryMetricReader()
    provider = configure(exporters=["none"], extra_readers=[reader], set_global=False, views=[
        View(instrument_name="p2p.network.io", aggregation=DropAggregation()),
        View(instrument_name="node.work", aggregation=ExplicitBucketHistogramAggregation((1.0, 2.0))),
    ])
    shutdown(provider)
    collector = MetricsCollector(provider, sample_resources=False)
    collector.network.bytes_sent(5, protocol="task")
    collector.network.connection_failed(TimeoutError(), "outbound", "tcp")
    provider.get_meter("node").create_histogram("node.work").record(1.5)

    exported = collect(reader)
    assert "p2p.network.io" not in exported  # dropped by the node's View
    assert exported.value("p2p.connection.failures", {"error.type": "timeout"}, exact=False) == 1
    assert exported.histogram("node.work").buckets == {1.0: 0, 2.0: 1, math.inf: 0}


def test_views_cannot_reach_an_existing_global_provider_and_the_warning_says_so(caplog):
    node_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    metrics.set_meter_provider(node_provider)
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        assert configure(views=[View(instrument_name="p2p.network.io")]) is node_provider
    assert "already installed" in caplog.text and "views given cannot be added" in caplog.text
