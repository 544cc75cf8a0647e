"""configure()'s settings as one table: argument, ``OTEL_*`` variable(s), default, check.

An argument given (not None) wins; else the first variable set (not blank); else the default.
Every check raises ``SettingTypeError`` for a wrong type and ``ValueError`` for a wrong value,
naming the setting: the argument, or the variable and the argument it stands for.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import View

from .bounds import MAX_PEER_ID_LENGTH, SettingTypeError, clean_name, duration

__all__ = ["Setting", "SETTINGS", "EXPORTERS", "OTLP_PROTOCOLS", "resolve_all", "variable_name", "no_credentials",
           "wrong_type", "seconds_text"]

EXPORTERS = ("otlp", "prometheus", "console", "none")
OTLP_PROTOCOLS = ("grpc", "http/protobuf")
Check = Callable[[str, Any], Any]


def variable_name(variable: str, argument: str) -> str:
    """How an error names a setting read from ``variable``."""
    return f"{variable} (the {argument} setting)"


def wrong_type(name: str, value: object, what: str) -> SettingTypeError:
    """The error for a setting of the wrong type (its type and value shown)."""
    return SettingTypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class Setting:
    """One configure() setting: where its value comes from and how it is checked.

    ``check(name, value)`` checks an argument; ``from_text(name, text)`` turns a variable's
    text into a checked value (by default ``check`` on the text itself). A setting of one
    exporter reads its variables only when that exporter is chosen (its argument is always checked).
    """

    argument: str
    variables: tuple[str, ...]
    default: Any
    check: Check
    from_text: Check | None = None
    exporter: str | None = None

    def resolve(self, value: Any, read_variables: bool = True) -> Any:
        """The checked argument, else the first variable set, else the default."""
        if value is not None:
            return self.check(self.argument, value)
        for variable in self.variables if read_variables else ():
            text = os.environ.get(variable, "").strip()
            if text:
                return (self.from_text or self.check)(variable_name(variable, self.argument), text)
        return self.default


def exporters(name: str, value: Any) -> tuple[str, ...]:
    """Exporter names (a list, or a comma-separated str), deduplicated, ``none`` left out."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple, set, frozenset)) or not all(isinstance(n, str) for n in names):
        raise wrong_type(name, value, f"a list of names from {EXPORTERS} or a comma-separated str")
    chosen = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    unknown = [n for n in chosen if n not in EXPORTERS]
    if unknown or not chosen:
        raise ValueError(f"{name}: unknown exporter {unknown or value!r}; choose from {EXPORTERS}")
    return tuple(n for n in chosen if n != "none")


def one_of(choices: tuple[str, ...]) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise wrong_type(name, value, f"one of {choices}")
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        return value
    return check


def host(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type(name, value, "a host name or address (a str)")
    if not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{name} must be a host name or address, got {value!r}")
    return value


def port(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise wrong_type(name, value, "a port number 0..65535 (an int)")
    if not 0 <= value <= 65535:
        raise ValueError(f"{name} must be a port number 0..65535, got {value!r}")
    return value


def port_text(name: str, text: str) -> int:
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):  # no sign, no "_", no other digits int() would take
        raise ValueError(f"{name} must be a port number 0..65535, got {text!r}")
    return port(name, int(digits))


def _positive_number_text(name: str, text: str, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of {unit}, got {text!r}")
    return value


def milliseconds_text(name: str, text: str) -> float:
    """A variable in milliseconds, as OpenTelemetry's are (``OTEL_METRIC_EXPORT_INTERVAL=60000``)."""
    return duration(name, _positive_number_text(name, text, "milliseconds") / 1000)


def seconds_text(name: str, text: str) -> float:
    """A positive number of seconds in a variable (the OTLP exporters read their timeout so)."""
    return _positive_number_text(name, text, "seconds")


def no_credentials(name: str, url: Any) -> None:
    """Refuse user:password@ in an endpoint (the SDK's exporters log the endpoint with every failure).

    The message never shows the URL.
    """
    if isinstance(url, str) and re.search(r"//[^/?#]*@", url):
        raise ValueError(f"{name} must not carry credentials (user:password@host); "
                         "give them in OTEL_EXPORTER_OTLP_HEADERS")


def http_url(name: str, value: Any) -> str:
    no_credentials(name, value)
    if not isinstance(value, str):
        raise wrong_type(name, value, "an http:// or https:// URL (a str)")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value


def non_empty_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type(name, value, "a non-empty str")
    if not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


def service_instance_id(name: str, value: Any) -> str:
    """The node's identity: printable text of 1..256 characters (a libp2p peer id fits)."""
    if not isinstance(value, str):
        raise wrong_type(name, value, "a str (the node's stable identity, e.g. its peer id)")
    if clean_name(value, MAX_PEER_ID_LENGTH) is None:
        raise ValueError(f"{name} must be 1..{MAX_PEER_ID_LENGTH} printable characters, got {value!r}")
    return value


_SCALARS = (str, bool, int, float)


def _attribute_value(where: str, value: Any) -> Any:
    """An OpenTelemetry attribute value: str, bool, int, float, or a sequence of one of them."""
    if isinstance(value, (list, tuple)):
        kinds = {type(item) for item in value}
        if not kinds <= set(_SCALARS) or len(kinds) > 1:
            raise wrong_type(where, value, "a sequence of one of str, bool, int, float")
        items = tuple(value)
    elif isinstance(value, _SCALARS):
        items = (value,)
    else:
        raise wrong_type(where, value, "a str, bool, int, float or a sequence of one of them")
    if any(isinstance(item, float) and not math.isfinite(item) for item in items):
        raise ValueError(f"{where} must hold finite numbers, got {value!r}")
    return tuple(value) if isinstance(value, list) else value


def resource_attributes(name: str, value: Any) -> dict[str, Any]:
    """Resource attributes: non-blank str keys, values of the types OpenTelemetry attributes take."""
    if not isinstance(value, Mapping):
        raise wrong_type(name, value, "a mapping of attribute names to values")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise wrong_type(f"{name} key {key!r}", key, "a str")
        if not key.strip():
            raise ValueError(f"{name}: attribute names must not be blank, got {key!r}")
        checked[key] = _attribute_value(f"{name}[{key!r}]", item)
    return checked


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise wrong_type(name, value, "a bool")
    return value


def sequence_of(kind: type, what: str) -> Check:
    """A check for a list or tuple of ``kind`` (returned as a tuple)."""
    def check(name: str, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, kind) for item in value):
            raise wrong_type(name, value, f"a list of {what}")
        return tuple(value)
    return check


def _table(*settings: Setting) -> dict[str, Setting]:
    return {setting.argument: setting for setting in settings}


SETTINGS = _table(
    Setting("exporters", ("OTEL_METRICS_EXPORTER",), ("prometheus",), exporters),
    Setting("otlp_endpoint", (), None, http_url),  # the exporters read OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT
    Setting("otlp_protocol", ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"), "grpc",
            one_of(OTLP_PROTOCOLS), exporter="otlp"),
    Setting("prometheus_host", ("OTEL_EXPORTER_PROMETHEUS_HOST",), "127.0.0.1", host, exporter="prometheus"),
    Setting("prometheus_port", ("OTEL_EXPORTER_PROMETHEUS_PORT",), 9464, port, port_text, exporter="prometheus"),
    Setting("export_interval", ("OTEL_METRIC_EXPORT_INTERVAL",), 60.0, duration, milliseconds_text),
    # The SDK's resource detection reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; these
    # arguments are merged over what it found.
    Setting("service_name", (), None, non_empty_str),
    Setting("service_instance_id", (), None, service_instance_id),
    Setting("resource_attributes", (), {}, resource_attributes),
    Setting("extra_readers", (), (), sequence_of(MetricReader, "MetricReader")),
    Setting("views", (), (), sequence_of(View, "opentelemetry.sdk.metrics.view.View")),
    Setting("set_global", (), True, boolean),
)


def resolve_all(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """configure()'s settings, each given, else from ``OTEL_*``, else its default (all checked)."""
    exporters = SETTINGS["exporters"].resolve(arguments["exporters"])
    return {name: setting.resolve(arguments[name], setting.exporter in (None, *exporters))
            for name, setting in SETTINGS.items()}
