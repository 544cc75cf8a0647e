"""Configuration fuzzed: any bad value for a setting raises ValueError naming that setting.

A value that happens to be valid must be accepted; anything else but ValueError (an AttributeError
from deep inside the SDK, a traceback on a background thread) is a bug. A wrong type raises
``SettingTypeError``, which is a ValueError too (and a TypeError, as it should be).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from p2p_telemetry import AlertConfig, MetricsCollector, MonitoringConfig, configure
from p2p_telemetry.bounds import parse_duration

junk = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=30), st.binary(max_size=8),
    st.just("\udcff"), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers()),
    st.just(object()), st.just(math.nan), st.timedeltas(), st.sampled_from(["1m30s", "0s", "90", "-1s", "2h"]),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.floats(), st.lists(st.booleans())),
                    max_size=2),
)
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def is_positive_number(value: Any) -> bool:
    return type(value) in (int, float) and 0 < value < math.inf


def is_positive_duration(value: Any) -> bool:
    """A positive number of seconds, timedelta or Prometheus duration string ("1m30s")."""
    if isinstance(value, timedelta):
        return value.total_seconds() > 0
    if isinstance(value, str):
        seconds = parse_duration(value)
        return seconds is not None and seconds > 0
    return is_positive_number(value)


def is_attribute_value(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return len({type(v) for v in value}) <= 1 and all(is_attribute_value(v) for v in value)
    return type(value) in (str, bool, int) or (type(value) is float and math.isfinite(value))


def is_resource_attributes(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and k.strip() and is_attribute_value(v)
                                           for k, v in value.items())


def is_port(value: Any) -> bool:
    return type(value) is int and 0 <= value <= 65535


def is_int_at_least(minimum: int) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and value >= minimum


def is_exporter_list(value: Any) -> bool:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (str, list, tuple)):
        return False
    cleaned = [str(n).strip().lower() for n in names if str(n).strip()]
    return bool(cleaned) and all(n in ("otlp", "prometheus", "console", "none") for n in cleaned)


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8


def expect_rejected(setting: str, valid: Callable[[Any], bool], value: Any, build: Callable[[], Any]) -> None:
    """``build()`` raises ValueError naming ``setting``, unless ``value`` is valid."""
    try:
        built = build()
    except ValueError as error:
        assert setting in str(error), f"{error!r} does not name {setting}"
        return
    assert valid(value), f"{setting}={value!r} was accepted"
    shutdown = getattr(built, "shutdown", None)
    if callable(shutdown):
        shutdown()


CONFIGURE_SETTINGS: dict[str, tuple[Callable[[Any], bool], dict[str, Any]]] = {
    "service_name": (lambda v: isinstance(v, str) and bool(v), {"exporters": ["none"]}),
    "exporters": (is_exporter_list, {"prometheus_port": 0}),
    "otlp_endpoint": (is_url, {"exporters": ["none"]}),
    "otlp_protocol": (lambda v: v in ("grpc", "http/protobuf"), {"exporters": ["otlp"]}),
    "prometheus_host": (lambda v: False, {"exporters": ["prometheus"], "prometheus_port": 0}),
    "prometheus_port": (lambda v: False, {"exporters": ["prometheus"], "prometheus_host": "127.0.0.1"}),
    "export_interval": (is_positive_duration, {"exporters": ["none"]}),
    "extra_readers": (lambda v: v in ([], ()), {"exporters": ["none"]}),
    "views": (lambda v: v in ([], ()), {"exporters": ["none"]}),
    "service_instance_id": (lambda v: isinstance(v, str) and 0 < len(v) <= 256 and v.isprintable(),
                            {"exporters": ["none"]}),
    "resource_attributes": (is_resource_attributes, {"exporters": ["none"]}),
    "set_global": (lambda v: isinstance(v, bool), {"exporters": ["none"]}),
}


@pytest.mark.parametrize("setting", sorted(CONFIGURE_SETTINGS))
@FUZZ
@given(value=junk)
def test_configure_rejects_bad_values_by_name(setting, value, clean_global):
    valid, others = CONFIGURE_SETTINGS[setting]
    if value is None:
        return  # None means "from OTEL_*, else the default"
    binds = (setting == "prometheus_port" and is_port(value)) or (
        setting == "prometheus_host" and isinstance(value, str) and value and not any(c.isspace() for c in value))
    if binds:
        return  # a valid host or port would bind a real socket; those are tested in test_provider
    if setting == "set_global" and value is True:
        return
    expect_rejected(setting, valid, value,
                    lambda: configure(**{**others, setting: value, "set_global": value if setting == "set_global"
                                         else False}))


ENVIRONMENT = {
    "OTEL_METRICS_EXPORTER": is_exporter_list,
    "OTEL_METRIC_EXPORT_INTERVAL": lambda v: _number(v) is not None and 0 < _number(v) < math.inf,
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": lambda v: v.strip() in ("grpc", "http/protobuf"),
    "OTEL_EXPORTER_PROMETHEUS_PORT": lambda v: False,
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": lambda v: _number(v) is not None and 0 < _number(v) < math.inf,
}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
@FUZZ
@given(text=st.one_of(st.text(max_size=12).filter(lambda t: "\x00" not in t), st.sampled_from(
    ["-1", "0", "nan", "inf", "1e400", "65536", "grpc ", "prometheus,bogus", ",,", "otlp"])))
def test_environment_variables_are_named_when_bad(variable, text, monkeypatch, clean_global):
    if variable == "OTEL_EXPORTER_PROMETHEUS_PORT" and (_number(text) is not None and text.strip().isdigit()
                                                          and int(text.strip()) <= 65535 or not text.strip()):
        return  # a valid port binds a real socket
    monkeypatch.setenv(variable, text)
    exporters = {"OTEL_METRICS_EXPORTER": None, "OTEL_EXPORTER_PROMETHEUS_PORT": ["prometheus"]}.get(
        variable, ["otlp"])
    valid = ENVIRONMENT[variable]
    expect_rejected(variable, lambda _: not text.strip() or valid(text), text,
                    lambda: configure(exporters=exporters, prometheus_port=None if exporters == ["prometheus"]
                                      else 0, set_global=False, otlp_endpoint="http://127.0.0.1:9"))


COLLECTOR_SETTINGS = {
    "meter_provider": lambda v: False,
    "sample_resources": lambda v: isinstance(v, bool),
    "protocols": lambda v: isinstance(v, (list, tuple, dict)) and all(isinstance(x, str) for x in v),
    "peer_series_limit": is_int_at_least(0),
    "data_dir": lambda v: isinstance(v, str),
    "max_event_names": is_int_at_least(1),
    "max_peers": is_int_at_least(1),
}


@pytest.mark.parametrize("setting", sorted(COLLECTOR_SETTINGS))
@FUZZ
@given(value=junk)
def test_collector_rejects_bad_values_by_name(setting, value, provider):
    if setting == "meter_provider" and value is None:
        return  # None means the global provider
    if setting == "data_dir" and value is None:
        return
    expect_rejected(setting, COLLECTOR_SETTINGS[setting], value,
                    lambda: MetricsCollector(**{"meter_provider": provider, setting: value}).close())


MONITORING_SETTINGS = {
    "metrics_interval": is_positive_duration,
    "alert_check_interval": is_positive_duration,
    "health_check_interval": is_positive_duration,
    "sample_resources": lambda v: isinstance(v, bool),
    "alert_config": lambda v: isinstance(v, AlertConfig),
}


@pytest.mark.parametrize("setting", sorted(MONITORING_SETTINGS))
@FUZZ
@given(value=junk)
def test_monitoring_config_rejects_bad_values_by_name(setting, value):
    expect_rejected(setting, MONITORING_SETTINGS[setting], value, lambda: MonitoringConfig(**{setting: value}))
