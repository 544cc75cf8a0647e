"""An instrumented node as the command line runs it: its provider, and its monitoring (alerts, health pings of
its peers). Shared by ``p2p-telemetry demo`` (one node) and every node of ``p2p-telemetry fleet``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.metrics import MeterProvider

from ..alerting import AlertConfig, AlertRule
from ..health import HealthChecker, HealthPolicy
from ..monitoring import MonitoringConfig, MonitoringSystem
from ..provider import configure
from .swarm import REQUEST_TIMEOUT, ping

__all__ = ["DEMO_POLICY", "node_monitoring", "node_provider"]

#: The demo's health policy: a ping slower than 100 ms is degraded; 3 failures in a row unhealthy; 2 answers heal.
DEMO_POLICY = HealthPolicy(latency_threshold=0.1, failures_to_unhealthy=3, successes_to_recover=2)


def node_provider(service_name: str, service_instance_id: str | None = None, **settings: Any) -> MeterProvider:
    """``configure(...)`` for a node of the command line, not installed globally.

    ``service_instance_id`` goes through ``configure``'s keyword where this version has it; otherwise the
    caller has put it in ``OTEL_RESOURCE_ATTRIBUTES``, which the SDK reads (the fleet does so for each node).
    """
    if service_instance_id is not None and "service_instance_id" in inspect.signature(configure).parameters:
        settings["service_instance_id"] = service_instance_id
    return configure(service_name=service_name, set_global=False, **settings)


def node_monitoring(provider: MeterProvider, port_of: Callable[[str], int], *, rules: Sequence[AlertRule],
                    sinks: Sequence[Any], alert_check_interval: float, health_check_interval: float
                    ) -> MonitoringSystem:
    """Resource sampling each second, the alert rules, and a health ping of each peer (found by ``port_of``)."""
    box: list[MonitoringSystem] = []

    async def probe(peer_id: str) -> float:
        return await ping(port_of(peer_id), box[0].metrics, REQUEST_TIMEOUT)

    config = MonitoringConfig(metrics_interval=1.0, alert_check_interval=alert_check_interval,
                              alert_config=AlertConfig(rules=list(rules), sinks=list(sinks)),
                              health_check_interval=health_check_interval,
                              health_checker=HealthChecker(probe, policy=DEMO_POLICY, timeout=REQUEST_TIMEOUT + 0.1))
    box.append(MonitoringSystem(config, meter_provider=provider))
    return box[0]
