"""configure(): a MeterProvider with OTLP, Prometheus or console exporters, from arguments and ``OTEL_*``."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider as APIMeterProvider
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import View

from ._identity import SERVICE_INSTANCE_ID, SERVICE_NAME, node_resource
from ._otlp import MAX_OTLP_TIMEOUT as MAX_OTLP_TIMEOUT
from ._otlp import check_otlp_variables, otlp_reader, otlp_timeout
from ._settings import resolve_all

__all__ = ["configure", "setup_info", "SetupInfo", "is_sdk_provider"]

logger = logging.getLogger("p2p_telemetry")


@dataclass
class SetupInfo:
    """What ``configure()`` set up on a provider."""

    exporters: tuple[str, ...]
    prometheus_url: str | None = None
    otlp_endpoint: str | None = None
    otlp_protocol: str | None = None
    otlp_timeout: float | None = None
    export_interval: float | None = None
    service_name: str | None = None
    service_instance_id: str | None = None
    # Weak: the readers reach the provider, and this record must not keep it alive.
    _readers: list[weakref.ref[MetricReader]] = field(default_factory=list, init=False, repr=False)

    @property
    def readers(self) -> list[MetricReader]:
        """The exporting readers configure() built (while their provider lives)."""
        return [reader for ref in self._readers if (reader := ref()) is not None]


_SETUPS: weakref.WeakKeyDictionary[Any, SetupInfo] = weakref.WeakKeyDictionary()


def setup_info(provider: Any) -> SetupInfo | None:
    """What ``configure()`` set up on ``provider`` (exporters, the Prometheus URL...), or None."""
    return _SETUPS.get(provider)


def is_sdk_provider(provider: Any) -> bool:
    """True for an SDK MeterProvider (one that can take more metric readers)."""
    return isinstance(provider, MeterProvider)


def _global_is_set() -> bool:
    return type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider"


def _readers(info: SetupInfo, settings: dict[str, Any]) -> list[MetricReader]:
    """The exporting readers of the chosen exporters (all shut down again if one fails)."""
    readers: list[MetricReader] = []
    try:
        if "prometheus" in info.exporters:
            from ._prometheus_reader import ServedPrometheusReader
            prometheus = ServedPrometheusReader(settings["prometheus_host"], settings["prometheus_port"])
            info.prometheus_url = prometheus.url
            readers.append(prometheus)
        if "otlp" in info.exporters:
            assert info.otlp_protocol is not None and info.otlp_timeout is not None and info.export_interval
            readers.append(otlp_reader(info.otlp_endpoint, info.otlp_protocol, info.export_interval,
                                       info.otlp_timeout))
        if "console" in info.exporters:
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(),
                                                         export_interval_millis=settings["export_interval"] * 1000))
    except BaseException:
        _shut_down(readers)
        raise
    return readers


def _shut_down(readers: list[MetricReader]) -> None:
    for reader in readers:
        reader.shutdown()


def configure(service_name: str | None = None, exporters: Sequence[str] | str | None = None,
              otlp_endpoint: str | None = None, otlp_protocol: str | None = None,
              prometheus_host: str | None = None, prometheus_port: int | None = None,
              export_interval: float | timedelta | str | None = None, extra_readers: Sequence[MetricReader] = (),
              set_global: bool = True, *, views: Sequence[View] = (), service_instance_id: str | None = None,
              resource_attributes: Mapping[str, Any] | None = None) -> APIMeterProvider:
    """Build (and by default install) the MeterProvider the node exports through.

    Arguments left as None fall back to the standard ``OTEL_*`` variables, then to:
    Prometheus on 127.0.0.1:9464, OTLP over gRPC, a 60 s export interval. ``views`` are
    the node's Views for the provider built here; ``service_instance_id`` and
    ``resource_attributes`` say which node this is (merged over ``OTEL_RESOURCE_ATTRIBUTES``).
    With ``set_global`` and a provider already installed, that provider is kept and returned
    (with ``extra_readers`` added to it), and a warning says so.
    """
    settings = resolve_all(locals())  # the arguments by name: the settings table has a row for each
    info = SetupInfo(exporters=settings["exporters"], export_interval=settings["export_interval"])
    if "otlp" in info.exporters:
        check_otlp_variables()
        info.otlp_endpoint, info.otlp_protocol = settings["otlp_endpoint"], settings["otlp_protocol"]
        info.otlp_timeout = otlp_timeout(settings["export_interval"])

    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        logger.info("p2p-telemetry: OTEL_SDK_DISABLED=true, metrics are not exported")
        return NoOpMeterProvider()

    if settings["set_global"] and _global_is_set():
        existing = metrics.get_meter_provider()
        logger.warning("p2p-telemetry: a global MeterProvider is already installed (%s); configure() keeps it "
                       "and does not install its own exporters%s", type(existing).__name__,
                       "; the views given cannot be added to it (a MeterProvider takes Views only when built)"
                       if settings["views"] else "")
        if isinstance(existing, MeterProvider):
            for reader in settings["extra_readers"]:
                existing.add_metric_reader(reader)
        return existing

    resource = node_resource(settings["service_name"], settings["service_instance_id"],
                             settings["resource_attributes"])
    info.service_name = str(resource.attributes[SERVICE_NAME])
    info.service_instance_id = str(resource.attributes[SERVICE_INSTANCE_ID])
    readers = _readers(info, settings)
    try:
        provider = MeterProvider(resource=resource, metric_readers=[*readers, *settings["extra_readers"]],
                                 views=settings["views"])
    except BaseException:  # e.g. an extra reader already registered on another provider
        _shut_down(readers)
        raise
    info._readers = [weakref.ref(reader) for reader in readers]
    _SETUPS[provider] = info
    if settings["set_global"]:
        metrics.set_meter_provider(provider)
    return provider
