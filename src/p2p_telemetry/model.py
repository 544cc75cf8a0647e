"""The seed's vocabulary: the plain records a node hands to ``MetricsCollector.record_*``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["HealthStatus", "NetworkMetrics", "PeerStats", "ResourceMetrics"]


class HealthStatus(str, enum.Enum):
    """A peer's health, as ``p2p.peer.health`` reports it."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    def __str__(self) -> str:
        return self.value


@dataclass
class NetworkMetrics:
    """The seed's aggregate network figures (no protocol, transport or direction)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    active_connections: int = 0
    connection_attempts: int = 0
    connection_failures: int = 0
    avg_connection_latency: float | None = None  # seconds; one set-up sample when given


@dataclass
class PeerStats:
    """What the node knows about one peer."""

    health_status: HealthStatus = HealthStatus.HEALTHY
    latency: float | None = None  # seconds
    reputation: float | None = None  # 0..1
    reason: str | None = None


@dataclass
class ResourceMetrics:
    """Resource figures as the seed names them (CPU in percent, the rest in bytes and bytes/s)."""

    cpu_usage: float | None = None  # percent, 0..100
    memory_usage: int | None = None  # bytes (RSS)
    bandwidth_usage: float | None = None  # bytes per second, both directions
    storage_usage: int | None = None  # bytes in the data directory
