"""p2p-telemetry: OpenTelemetry instrumentation for Python peer-to-peer nodes."""

from ._version import __version__
from .alerting import (
                       Alert,
                       AlertConfig,
                       AlertManager,
                       AlertmanagerSink,
                       AlertRule,
                       AlertType,
                       CallbackSink,
                       FleetRule,
                       LogSink,
                       default_rules,
                       fleet_rules,
                       load_rules,
                       rules_to_prometheus,
)
from .collector import MetricsCollector
from .groups.network import error_type
from .health import HealthChecker, HealthPolicy, Libp2pPingProbe, tcp_connect_probe
from .model import HealthStatus, NetworkMetrics, PeerStats, ResourceMetrics
from .monitoring import MonitoringConfig, MonitoringSystem
from .provider import configure, setup_info

__all__ = [
    "__version__",
    "MetricsCollector",
    "HealthStatus",
    "NetworkMetrics",
    "PeerStats",
    "ResourceMetrics",
    "MonitoringConfig",
    "MonitoringSystem",
    "AlertConfig",
    "AlertManager",
    "AlertType",
    "Alert",
    "AlertRule",
    "LogSink",
    "CallbackSink",
    "AlertmanagerSink",
    "default_rules",
    "FleetRule",
    "fleet_rules",
    "load_rules",
    "rules_to_prometheus",
    "configure",
    "setup_info",
    "error_type",
    "HealthChecker",
    "HealthPolicy",
    "Libp2pPingProbe",
    "tcp_connect_probe",
]
