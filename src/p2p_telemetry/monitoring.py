"""MonitoringSystem: starts and stops the background work (resource sampling, alert evaluation, health checks)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry.metrics import MeterProvider

from ._fork import after_fork_in_child
from .alerting import AlertConfig, AlertManager
from .bounds import SettingTypeError, duration
from .collector import MetricsCollector

__all__ = ["MonitoringConfig", "MonitoringSystem"]

logger = logging.getLogger("p2p_telemetry")


@dataclass
class MonitoringConfig:
    """How often the monitoring system samples resources and evaluates alerts, and its alert rules."""

    metrics_interval: float | timedelta = 1.0
    alert_check_interval: float | timedelta = 1.0
    alert_config: AlertConfig = field(default_factory=AlertConfig)
    sample_resources: bool = True
    resource_names: str = "p2p"  # "p2p", "semconv" or "both": see MetricsCollector
    health_check_interval: float | timedelta = 5.0
    health_checker: Any = None  # a HealthChecker; see p2p_telemetry.health

    def __post_init__(self) -> None:
        self.metrics_interval = duration("metrics_interval", self.metrics_interval)
        self.alert_check_interval = duration("alert_check_interval", self.alert_check_interval)
        self.health_check_interval = duration("health_check_interval", self.health_check_interval)
        if not isinstance(self.alert_config, AlertConfig):
            raise SettingTypeError(f"alert_config must be an AlertConfig, got {self.alert_config!r}")
        if not isinstance(self.sample_resources, bool):
            raise SettingTypeError(f"sample_resources must be a bool, got {self.sample_resources!r}")


class MonitoringSystem:
    """A MetricsCollector plus its background work; ``with MonitoringSystem(config) as m: ...``.

    ``stop()`` ends the background work and, for the collector the system made itself, stops
    reporting it: after ``stop()`` nothing of this system is reported or read (a collector passed
    in as ``metrics=`` stays the caller's). ``start()`` again resumes both.

    In a child process forked while it runs, the system reports itself stopped (its threads did
    not survive the fork); ``start()`` in the child starts them there.
    """

    def __init__(self, config: MonitoringConfig | None = None, meter_provider: MeterProvider | None = None,
                 metrics: MetricsCollector | None = None) -> None:
        self.config = config if config is not None else MonitoringConfig()
        if not isinstance(self.config, MonitoringConfig):
            raise SettingTypeError(f"config must be a MonitoringConfig, got {config!r}")
        self._owns_metrics = metrics is None
        self.metrics = metrics if metrics is not None else MetricsCollector(
            meter_provider, sample_resources=self.config.sample_resources, resource_names=self.config.resource_names)
        self.alert_manager = AlertManager(self.config.alert_config, self.metrics.meter_provider)
        self.health_checker = self.config.health_checker
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._lock = threading.Lock()
        after_fork_in_child(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sampler = None  # the thread did not survive the fork

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._sampler is not None

    def start(self) -> MonitoringSystem:
        """Start resource sampling, alert evaluation and health checks (idempotent)."""
        with self._lock:
            if self._sampler is not None:
                return self
            if self._owns_metrics:
                self.metrics.reopen()
            self._stop.clear()
            self._sampler = threading.Thread(target=self._sample_loop, name="p2p-telemetry-resources", daemon=True)
            self._sampler.start()
            self.alert_manager.start(duration("alert_check_interval", self.config.alert_check_interval))
            if self.health_checker is not None:
                self.health_checker.start(self.metrics, self.config.health_check_interval)
        return self

    def stop(self) -> None:
        """Stop the background work and wait for it (idempotent)."""
        with self._lock:
            sampler, self._sampler = self._sampler, None
            if sampler is None:
                return
            self._stop.set()
            if self.health_checker is not None:
                self.health_checker.stop()
            self.alert_manager.stop()
            sampler.join()
            if self._owns_metrics:
                self.metrics.close()

    def _sample_loop(self) -> None:
        interval = duration("metrics_interval", self.config.metrics_interval)
        while not self._stop.is_set():
            try:
                self.metrics.resources.sample()
            except Exception:
                logger.exception("p2p-telemetry: resource sampling failed")
            self._stop.wait(interval)

    def __enter__(self) -> MonitoringSystem:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
