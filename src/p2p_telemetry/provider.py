"""configure(): a MeterProvider with OTLP, Prometheus or console exporters, from arguments and ``OTEL_*``."""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider as APIMeterProvider
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

__all__ = ["configure", "setup_info", "SetupInfo", "is_sdk_provider"]

logger = logging.getLogger("p2p_telemetry")

EXPORTERS = ("otlp", "prometheus", "console", "none")
OTLP_PROTOCOLS = ("grpc", "http/protobuf")
DEFAULTS = {"exporters": ("prometheus",), "prometheus_host": "127.0.0.1", "prometheus_port": 9464,
            "otlp_protocol": "grpc", "export_interval": 60.0, "service_name": "p2p-node"}
MAX_OTLP_TIMEOUT = 5.0


@dataclass
class SetupInfo:
    """What ``configure()`` set up on a provider."""

    exporters: tuple[str, ...]
    prometheus_url: str | None = None
    otlp_endpoint: str | None = None
    otlp_protocol: str | None = None
    otlp_timeout: float | None = None
    export_interval: float | None = None
    readers: list[MetricReader] = field(default_factory=list)


_SETUPS: weakref.WeakKeyDictionary[Any, SetupInfo] = weakref.WeakKeyDictionary()


def setup_info(provider: Any) -> SetupInfo | None:
    """What ``configure()`` set up on ``provider`` (exporters, the Prometheus URL...), or None."""
    return _SETUPS.get(provider)


def is_sdk_provider(provider: Any) -> bool:
    """True for an SDK MeterProvider (one that can take more metric readers)."""
    return isinstance(provider, MeterProvider)


def _global_is_set() -> bool:
    return type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider"


def _setting(value: Any, env: str | Sequence[str], default: Any) -> tuple[Any, str]:
    """The argument, else the first environment variable set, else the default; with the setting's name."""
    if value is not None:
        return value, ""
    for name in (env,) if isinstance(env, str) else env:
        raw = os.environ.get(name, "").strip()
        if raw:
            return raw, name
    return default, ""


def _name(argument: str, env: str) -> str:
    return f"{env} (the {argument} setting)" if env else argument


def _exporters(value: Any) -> tuple[str, ...]:
    raw, env = _setting(value, "OTEL_METRICS_EXPORTER", DEFAULTS["exporters"])
    names = raw.split(",") if isinstance(raw, str) else raw
    try:
        result = tuple(dict.fromkeys(str(n).strip().lower() for n in names if str(n).strip()))
    except TypeError:
        raise ValueError(f"{_name('exporters', env)} must be a list of {EXPORTERS}, got {raw!r}") from None
    unknown = [n for n in result if n not in EXPORTERS]
    if unknown or not result or not isinstance(names, (str, list, tuple, set, frozenset)):
        raise ValueError(f"{_name('exporters', env)}: unknown exporter {unknown or raw!r}; choose from {EXPORTERS}")
    return tuple(n for n in result if n != "none")


def _port(value: Any) -> int:
    raw, env = _setting(value, "OTEL_EXPORTER_PROMETHEUS_PORT", DEFAULTS["prometheus_port"])
    try:
        port = int(raw) if env else raw  # the variable is a string; the argument must be an int
    except ValueError:
        port = None
    if port.__class__ is not int or not 0 <= port <= 65535:  # type: ignore[operator]
        raise ValueError(f"{_name('prometheus_port', env)} must be a port number 0..65535, got {raw!r}")
    return port  # type: ignore[return-value]


def _host(value: Any) -> str:
    raw, env = _setting(value, "OTEL_EXPORTER_PROMETHEUS_HOST", DEFAULTS["prometheus_host"])
    if not isinstance(raw, str) or not raw or any(ch.isspace() for ch in raw):
        raise ValueError(f"{_name('prometheus_host', env)} must be a host name or address, got {raw!r}")
    return raw


def _interval(value: Any) -> float:
    if value is not None:
        seconds, env = value, ""
    else:
        raw, env = _setting(None, "OTEL_METRIC_EXPORT_INTERVAL", None)
        if raw is None:
            return DEFAULTS["export_interval"]
        try:
            seconds = float(raw) / 1000  # the variable is in milliseconds
        except ValueError:
            seconds = raw
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise ValueError(f"{_name('export_interval', env)} must be a positive number of "
                         f"{'milliseconds' if env else 'seconds'}, got {value if value is not None else raw!r}")
    return float(seconds)


def _otlp_protocol(value: Any) -> str:
    raw, env = _setting(value, ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
                        DEFAULTS["otlp_protocol"])
    if raw not in OTLP_PROTOCOLS:
        raise ValueError(f"{_name('otlp_protocol', env)} must be one of {OTLP_PROTOCOLS}, got {raw!r}")
    return raw


def _otlp_endpoint(value: Any) -> str | None:
    if value is None:
        return None  # the exporters read OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT themselves
    _no_credentials(value, "otlp_endpoint")
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"otlp_endpoint must be an http:// or https:// URL, got {value!r}")
    return value


# One entry of OTEL_EXPORTER_OTLP_HEADERS, as the SDK accepts it (the specification's, with spaces in values)
_HEADER_ENTRY = re.compile(r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*=[ \t]*"
                           r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def _no_credentials(url: Any, name: str) -> None:
    """Refuse user:password@ in an endpoint: the SDK's exporters log the endpoint with every failure."""
    if isinstance(url, str) and re.search(r"//[^/?#]*@", url):
        raise ValueError(f"{name} must not carry credentials (user:password@host); "
                         "give them in OTEL_EXPORTER_OTLP_HEADERS")


def _otlp_secrets() -> None:
    """Check the variables the OTLP exporters read secrets from, without ever showing their values.

    The SDK logs a malformed headers entry verbatim (``Authorization: Bearer ...`` with a colon is
    a common mistake), and an endpoint with every failed export.
    """
    for env in ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        _no_credentials(os.environ.get(env), env)
    _, env = _setting(None, ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"), None)
    for number, entry in enumerate(re.split(r"[ \t]*,[ \t]*", os.environ.get(env, "") if env else ""), 1):
        if entry.strip() and not _HEADER_ENTRY.fullmatch(entry.strip()):
            raise ValueError(f"{env}: entry {number} is not name=value (comma-separated, URL-encoded); "
                             "its text is not shown as it may hold a secret")


def _otlp_timeout(interval: float) -> float:
    for env in ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        if env in os.environ and not os.environ[env].strip():  # the SDK's exporters fail on a blank value
            raise ValueError(f"{env} is set but empty; unset it or give a number of seconds")
    raw, env = _setting(None, ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"), None)
    timeout = MAX_OTLP_TIMEOUT
    if raw is not None:
        try:
            timeout = float(raw)
        except ValueError:
            raise ValueError(f"{env} must be a number of seconds, got {raw!r}") from None
        if not 0 < timeout < math.inf:
            raise ValueError(f"{env} must be a positive number of seconds, got {raw!r}")
    return min(timeout, MAX_OTLP_TIMEOUT, interval)


def _otlp_exporter(endpoint: str | None, protocol: str, timeout: float) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        return OTLPMetricExporter(endpoint=endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPExporter
    if endpoint is not None and urlparse(endpoint).path in ("", "/"):
        endpoint = endpoint.rstrip("/") + "/v1/metrics"  # a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is
    return HTTPExporter(endpoint=endpoint, timeout=timeout, session=_otlp_http_session())


def _otlp_http_session() -> Any:
    """A requests session that keeps the CA file of ``OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE``, or None.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override a session's CA file, so where
    those are set (many distributions and containers) the OTLP certificate would be silently ignored.
    """
    if not any(os.environ.get(f"OTEL_EXPORTER_OTLP_{part}CERTIFICATE") for part in ("METRICS_", "")) or any(
            os.environ.get(f"OTEL_PYTHON_EXPORTER_OTLP_HTTP_{part}CREDENTIAL_PROVIDER") for part in ("METRICS_", "")):
        return None  # the exporter's own session (or the configured credential provider's)
    import requests

    class CertificateSession(requests.Session):
        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            settings = super().merge_environment_settings(*args, **kwargs)
            settings["verify"] = self.verify  # the exporter sets it from the OTLP certificate variables
            return settings

    return CertificateSession()


class _BoundedExportingReader(PeriodicExportingMetricReader):
    """A periodic OTLP reader whose ``shutdown`` never outlasts the export timeout.

    The SDK's shutdown first waits for an export in flight, then makes a final one, each up to
    the timeout: twice the timeout against a collector that accepts and never answers. Bounding
    the wait makes the exporter's own shutdown (which closes the channel) end whichever is left.
    """

    def __init__(self, exporter: Any, interval: float, timeout: float) -> None:
        super().__init__(exporter, export_interval_millis=interval * 1000, export_timeout_millis=timeout * 1000)
        self._shutdown_millis = timeout * 1000

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        super().shutdown(timeout_millis=min(timeout_millis, self._shutdown_millis), **kwargs)


def _prometheus_reader(host: str, port: int) -> tuple[MetricReader, str]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    class ServedPrometheusReader(PrometheusMetricReader):
        """A Prometheus reader on a private registry, with the HTTP server it owns."""

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            super().shutdown(timeout_millis=timeout_millis, **kwargs)
            server.shutdown()
            server.server_close()

    registry = CollectorRegistry(auto_describe=True)  # never the global REGISTRY
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        reason = "already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise OSError(error.errno, f"prometheus_port {port} on {host}: {reason}") from None
    bound = server.server_address[1]
    reader = ServedPrometheusReader(registry=registry)
    url_host = f"[{host}]" if ":" in host else host
    return reader, f"http://{url_host}:{bound}/metrics"


def configure(service_name: str | None = None, exporters: Sequence[str] | str | None = None,
              otlp_endpoint: str | None = None, otlp_protocol: str | None = None,
              prometheus_host: str | None = None, prometheus_port: int | None = None,
              export_interval: float | None = None, extra_readers: Sequence[MetricReader] = (),
              set_global: bool = True) -> APIMeterProvider:
    """Build (and by default install) the MeterProvider the node exports through.

    Arguments left as None fall back to the standard ``OTEL_*`` variables, then to:
    Prometheus on 127.0.0.1:9464, OTLP over gRPC, a 60 s export interval. With
    ``set_global`` and a provider already installed, that provider is kept and returned
    (with ``extra_readers`` added to it), and a warning says so.
    """
    if not isinstance(set_global, bool):
        raise ValueError(f"set_global must be a bool, got {set_global!r}")
    readers_in = list(extra_readers) if isinstance(extra_readers, (list, tuple)) else None
    if readers_in is None or not all(isinstance(r, MetricReader) for r in readers_in):
        raise ValueError(f"extra_readers must be a list of MetricReader, got {extra_readers!r}")
    if service_name is not None and (not isinstance(service_name, str) or not service_name):
        raise ValueError(f"service_name must be a non-empty str, got {service_name!r}")
    names = _exporters(exporters)
    host, port = (_host(prometheus_host), _port(prometheus_port)) if "prometheus" in names else (None, None)
    protocol = _otlp_protocol(otlp_protocol) if "otlp" in names else None
    if "otlp" in names:
        _otlp_secrets()
    endpoint = _otlp_endpoint(otlp_endpoint)
    interval = _interval(export_interval)

    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        logger.info("p2p-telemetry: OTEL_SDK_DISABLED=true, metrics are not exported")
        return NoOpMeterProvider()

    if set_global and _global_is_set():
        existing = metrics.get_meter_provider()
        logger.warning("p2p-telemetry: a global MeterProvider is already installed (%s); configure() keeps it "
                       "and does not install its own exporters", type(existing).__name__)
        for reader in readers_in:
            if is_sdk_provider(existing):
                existing.add_metric_reader(reader)  # type: ignore[attr-defined]
        return existing

    info = SetupInfo(exporters=names, export_interval=interval)
    readers: list[MetricReader] = []
    try:
        if "prometheus" in names:
            reader, info.prometheus_url = _prometheus_reader(host, port)  # type: ignore[arg-type]
            readers.append(reader)
        if "otlp" in names:
            info.otlp_endpoint, info.otlp_protocol = endpoint, protocol
            info.otlp_timeout = _otlp_timeout(interval)
            exporter = _otlp_exporter(endpoint, protocol, info.otlp_timeout)  # type: ignore[arg-type]
            readers.append(_BoundedExportingReader(exporter, interval, info.otlp_timeout))
        if "console" in names:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(),
                                                         export_interval_millis=interval * 1000))
    except BaseException:
        for reader in readers:
            reader.shutdown()
        raise
    attributes = {"service.name": service_name} if service_name else {}
    resource = Resource.create(attributes)
    if not service_name and resource.attributes.get("service.name", "").startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULTS["service_name"]}))
    info.readers = readers
    provider = MeterProvider(resource=resource, metric_readers=[*readers, *readers_in])
    _SETUPS[provider] = info
    if set_global:
        metrics.set_meter_provider(provider)
    return provider

