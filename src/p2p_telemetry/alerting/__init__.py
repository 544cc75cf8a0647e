"""Alerting: rules over the catalogue's metrics, evaluated in-process, delivered to sinks.

(Shell for the core library; the alert evaluator issue fills it in.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AlertConfig", "AlertManager", "AlertType"]


class AlertType(str, enum.Enum):
    """The seed's four alerts; the value is the rule's name."""

    HIGH_CPU_USAGE = "HighCpuUsage"
    HIGH_MEMORY_USAGE = "HighMemoryUsage"
    UNHEALTHY_PEERS = "UnhealthyPeers"
    HIGH_CONNECTION_FAILURES = "HighConnectionFailures"


@dataclass
class AlertConfig:
    """Rules and sinks."""

    rules: list[Any] = field(default_factory=list)
    sinks: list[Any] = field(default_factory=list)


class AlertManager:
    """Evaluates rules (shell)."""

    def __init__(self, config: AlertConfig, meter_provider: Any) -> None:
        self.config = config

    def start(self, interval: float) -> None:
        pass

    def stop(self) -> None:
        pass
