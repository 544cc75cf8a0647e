"""configure(): exporters from arguments and OTEL_* variables, never clobbering a node's provider."""

from __future__ import annotations

import logging
import socket
import urllib.request

import pytest
from opentelemetry import metrics
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import REGISTRY

from p2p_telemetry import MetricsCollector, configure, setup_info
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
