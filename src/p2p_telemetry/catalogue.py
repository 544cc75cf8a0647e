"""Every metric p2p-telemetry emits, as data: the product's contract.

Each metric group declares its own specs (``groups/<group>.py``); this module gathers them
from the group registry, in the order the reference documentation lists them. It also
re-exports the attribute vocabulary (``attributes.py``) and each spec by name, so that a reader
(or a rule, a dashboard test) finds any metric here.
"""

from __future__ import annotations

from .attributes import (
                         ALERTNAME,
                         ALERTSTATE,
                         CONNECTION_DIRECTION,
                         CONNECTION_DIRECTIONS,
                         DEFAULT_PROTOCOLS,
                         ERROR_TYPE,
                         ERROR_TYPES,
                         EVENT,
                         HEALTH,
                         HEALTH_STATES,
                         IO_DIRECTION,
                         IO_DIRECTIONS,
                         OTHER,
                         P2P_TRANSPORT,
                         P2P_TRANSPORTS,
                         PEER_ID,
                         PEER_RANK,
                         PROTOCOL,
                         REASON,
                         REJECT_REASONS,
                         SCHEMA_URL,
                         SERVICE_INSTANCE_ID_LABEL,
                         SERVICE_NAME_LABEL,
                         SEVERITY,
                         TRANSPORT,
                         TRANSPORTS,
                         UNKNOWN,
)
from .groups import REGISTRY
from .groups.network import (
                         CONNECTION_ACTIVE,
                         CONNECTION_ATTEMPTS,
                         CONNECTION_DURATION,
                         CONNECTION_FAILURES,
                         CONNECTION_SETUP,
                         LIFETIME_BUCKETS,
                         NETWORK_IO,
                         SETUP_BUCKETS,
)
from .groups.peers import LATENCY_BUCKETS, PEER_LATENCY, PEER_REPUTATION, PEERS
from .groups.protocols import PROTOCOL_EVENTS
from .groups.resources import (
                         BANDWIDTH,
                         CPU_UTILIZATION,
                         MEMORY_USAGE,
                         PROCESS_CPU_UTILIZATION,
                         PROCESS_MEMORY_USAGE,
                         SAME_FIGURE,
                         STORAGE_USAGE,
)
from .groups.telemetry import ALERT_ACTIVE, TELEMETRY_REJECTED
from .metric import Kind, MetricSpec

__all__ = [
    "Kind", "MetricSpec", "CATALOGUE", "BY_NAME", "GROUP_OF", "SAME_FIGURE",
    "NETWORK_IO", "CONNECTION_ACTIVE", "CONNECTION_ATTEMPTS", "CONNECTION_FAILURES", "CONNECTION_SETUP",
    "CONNECTION_DURATION", "PROTOCOL_EVENTS", "PEERS", "PEER_LATENCY", "PEER_REPUTATION", "CPU_UTILIZATION",
    "MEMORY_USAGE", "BANDWIDTH", "STORAGE_USAGE", "PROCESS_CPU_UTILIZATION", "PROCESS_MEMORY_USAGE", "ALERT_ACTIVE",
    "TELEMETRY_REJECTED",
    "SETUP_BUCKETS", "LIFETIME_BUCKETS", "LATENCY_BUCKETS",
    # the attribute vocabulary of attributes.py, re-exported
    "ALERTNAME", "ALERTSTATE", "CONNECTION_DIRECTION", "CONNECTION_DIRECTIONS", "DEFAULT_PROTOCOLS", "ERROR_TYPE",
    "ERROR_TYPES", "EVENT", "HEALTH", "HEALTH_STATES", "IO_DIRECTION", "IO_DIRECTIONS", "OTHER", "P2P_TRANSPORT",
    "P2P_TRANSPORTS", "PEER_ID", "PEER_RANK", "PROTOCOL", "REASON", "REJECT_REASONS", "SCHEMA_URL",
    "SERVICE_INSTANCE_ID_LABEL", "SERVICE_NAME_LABEL", "SEVERITY",
    "TRANSPORT", "TRANSPORTS", "UNKNOWN",
]

#: Every metric, group by group in registry order.
CATALOGUE: tuple[MetricSpec, ...] = tuple(spec for group in REGISTRY for spec in group.specs)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}
#: The name of the group (``MetricsCollector`` attribute) that reports each metric.
GROUP_OF: dict[str, str] = {spec.name: group.name for group in REGISTRY for spec in group.specs}
assert len(BY_NAME) == len(CATALOGUE), "two groups declare a metric of the same name"
