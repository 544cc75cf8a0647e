"""The OTLP exporter configure() sets up: secrets checked without showing them, a short timeout, a bounded shutdown."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader

from ._settings import no_credentials, seconds_text

__all__ = ["MAX_OTLP_TIMEOUT", "check_otlp_variables", "otlp_timeout", "otlp_reader"]

MAX_OTLP_TIMEOUT = 5.0
_TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
_HEADERS_VARIABLES = ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")

# One entry of OTEL_EXPORTER_OTLP_HEADERS, as the SDK accepts it (the specification's, with spaces in values)
_HEADER_ENTRY = re.compile(r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*=[ \t]*"
                           r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def check_otlp_variables() -> None:
    """Check the variables the OTLP exporters read secrets from, without ever showing their values.

    The SDK logs a malformed headers entry verbatim (``Authorization: Bearer ...`` with a colon is
    a common mistake), and an endpoint with every failed export. It also fails on a timeout
    variable that is set but blank.
    """
    for variable in ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        no_credentials(variable, os.environ.get(variable))
    headers = next((v for v in _HEADERS_VARIABLES if os.environ.get(v, "").strip()), None)
    if headers is not None:
        for number, entry in enumerate(re.split(r"[ \t]*,[ \t]*", os.environ[headers]), 1):
            if entry.strip() and not _HEADER_ENTRY.fullmatch(entry.strip()):
                raise ValueError(f"{headers}: entry {number} is not name=value (comma-separated, URL-encoded); "
                                 "its text is not shown as it may hold a secret")
    for variable in _TIMEOUT_VARIABLES:
        if variable in os.environ and not os.environ[variable].strip():
            raise ValueError(f"{variable} is set but empty; unset it or give a number of seconds")


def otlp_timeout(interval: float) -> float:
    """The exporter's timeout: the variables' if shorter, at most 5 s, never longer than the interval."""
    variable = next((v for v in _TIMEOUT_VARIABLES if os.environ.get(v, "").strip()), None)
    configured = seconds_text(variable, os.environ[variable]) if variable else MAX_OTLP_TIMEOUT
    return min(configured, MAX_OTLP_TIMEOUT, interval)


def _exporter(endpoint: str | None, protocol: str, timeout: float) -> MetricExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        return OTLPMetricExporter(endpoint=endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPExporter
    if endpoint is not None and urlparse(endpoint).path in ("", "/"):
        endpoint = endpoint.rstrip("/") + "/v1/metrics"  # a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is
    return HTTPExporter(endpoint=endpoint, timeout=timeout, session=_http_session())


def _http_session() -> Any:
    """A requests session that keeps the CA file of ``OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE``, or None.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override a session's CA file, so where
    those are set (many distributions and containers) the OTLP certificate would be silently ignored.
    """
    if not any(os.environ.get(f"OTEL_EXPORTER_OTLP_{part}CERTIFICATE") for part in ("METRICS_", "")) or any(
            os.environ.get(f"OTEL_PYTHON_EXPORTER_OTLP_HTTP_{part}CREDENTIAL_PROVIDER") for part in ("METRICS_", "")):
        return None  # the exporter's own session (or the configured credential provider's)
    import requests

    class CertificateSession(requests.Session):
        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> Any:
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

    def __init__(self, exporter: MetricExporter, interval: float, timeout: float) -> None:
        super().__init__(exporter, export_interval_millis=interval * 1000, export_timeout_millis=timeout * 1000)
        self._shutdown_millis = timeout * 1000

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        super().shutdown(timeout_millis=min(timeout_millis, self._shutdown_millis), **kwargs)


def otlp_reader(endpoint: str | None, protocol: str, interval: float, timeout: float) -> PeriodicExportingMetricReader:
    """A periodic reader exporting over OTLP (``endpoint`` None: the exporters' own variables)."""
    return _BoundedExportingReader(_exporter(endpoint, protocol, timeout), interval, timeout)
