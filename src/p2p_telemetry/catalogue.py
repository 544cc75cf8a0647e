"""Every metric p2p-telemetry emits, as data: the contract of ``shared/spec/metrics.md``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Kind",
    "MetricSpec",
    "CATALOGUE",
    "BY_NAME",
    "TRANSPORTS",
    "CONNECTION_DIRECTIONS",
    "IO_DIRECTIONS",
    "ERROR_TYPES",
    "HEALTH_STATES",
    "REJECT_REASONS",
    "DEFAULT_PROTOCOLS",
    "OTHER",
    "UNKNOWN",
]

OTHER = "other"
UNKNOWN = "unknown"

# Attribute keys.
IO_DIRECTION = "network.io.direction"
TRANSPORT = "network.transport"
PROTOCOL = "p2p.protocol"
EVENT = "p2p.protocol.event"
CONNECTION_DIRECTION = "p2p.connection.direction"
ERROR_TYPE = "error.type"
HEALTH = "p2p.peer.health"
PEER_ID = "p2p.peer.id"
PEER_RANK = "p2p.peer.rank"
ALERTNAME = "alertname"
ALERTSTATE = "alertstate"
SEVERITY = "severity"
REASON = "reason"

# Bounded attribute values.
IO_DIRECTIONS = ("transmit", "receive")
CONNECTION_DIRECTIONS = ("inbound", "outbound", UNKNOWN)
TRANSPORTS = ("tcp", "udp", "quic", "unix", "pipe", OTHER)
ERROR_TYPES = ("timeout", "refused", "reset", "unreachable", "tls", "protocol", "canceled", OTHER)
HEALTH_STATES = ("healthy", "degraded", "unhealthy")
DEFAULT_PROTOCOLS = ("task", "discovery", "resource", "health")
REJECT_REASONS = (
    "type",  # wrong type: a float count, a bool, None, a string...
    "range",  # negative, out of range, or not finite
    "overflow",  # a running total would pass 2**63-1
    "peer_id",  # empty, too long or not valid UTF-8
    "peer_limit",  # the peer table is full
    "unbalanced",  # a connection closed that was never opened
    "error",  # anything unexpected inside a record call
)

# Histogram buckets, in seconds.
SETUP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LIFETIME_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 604800.0)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Kind(enum.Enum):
    """The OpenTelemetry instrument behind a metric."""

    COUNTER = "observable_counter"  # monotonic sum
    UP_DOWN_COUNTER = "observable_up_down_counter"  # non-monotonic sum
    GAUGE = "observable_gauge"
    HISTOGRAM = "histogram"  # synchronous


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the catalogue."""

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...]
    prometheus: str
    buckets: tuple[float, ...] | None = None


_CONN = (CONNECTION_DIRECTION, TRANSPORT)

NETWORK_IO = MetricSpec(
    "p2p.network.io", Kind.COUNTER, "By", "Bytes this node sent and received over its peer connections.",
    (IO_DIRECTION, PROTOCOL, TRANSPORT), "p2p_network_io_bytes_total")
CONNECTION_ACTIVE = MetricSpec(
    "p2p.connection.active", Kind.UP_DOWN_COUNTER, "{connection}", "Peer connections open now.",
    _CONN, "p2p_connection_active")
CONNECTION_ATTEMPTS = MetricSpec(
    "p2p.connection.attempts", Kind.COUNTER, "{attempt}", "Connections this node tried to set up.",
    _CONN, "p2p_connection_attempts_total")
CONNECTION_FAILURES = MetricSpec(
    "p2p.connection.failures", Kind.COUNTER, "{failure}", "Connection set-ups that failed, by class of error.",
    (*_CONN, ERROR_TYPE), "p2p_connection_failures_total")
CONNECTION_SETUP = MetricSpec(
    "p2p.connection.setup.duration", Kind.HISTOGRAM, "s", "Time from dial or accept to a usable connection.",
    _CONN, "p2p_connection_setup_duration_seconds", SETUP_BUCKETS)
CONNECTION_DURATION = MetricSpec(
    "p2p.connection.duration", Kind.HISTOGRAM, "s", "How long a closed connection lived.",
    _CONN, "p2p_connection_duration_seconds", LIFETIME_BUCKETS)
PROTOCOL_EVENTS = MetricSpec(
    "p2p.protocol.events", Kind.COUNTER, "{event}", "Protocol events, by protocol and event name.",
    (PROTOCOL, EVENT), "p2p_protocol_events_total")
PEERS = MetricSpec(
    "p2p.peers", Kind.UP_DOWN_COUNTER, "{peer}", "Peers in the peer table, by health.",
    (HEALTH,), "p2p_peers")
PEER_LATENCY = MetricSpec(
    "p2p.peer.latency", Kind.HISTOGRAM, "s", "Round-trip latency samples of peers (pings, requests).",
    (HEALTH,), "p2p_peer_latency_seconds", LATENCY_BUCKETS)
PEER_REPUTATION = MetricSpec(
    "p2p.peer.reputation", Kind.GAUGE, "1", "Reputation (0..1) of the peers with the lowest reputation.",
    (PEER_ID,), "p2p_peer_reputation")
CPU_UTILIZATION = MetricSpec(
    "p2p.node.cpu.utilization", Kind.GAUGE, "1", "CPU time of the node process over wall time, per CPU (0..1).",
    (), "p2p_node_cpu_utilization")
MEMORY_USAGE = MetricSpec(
    "p2p.node.memory.usage", Kind.UP_DOWN_COUNTER, "By", "Resident set size of the node process.",
    (), "p2p_node_memory_usage_bytes")
BANDWIDTH = MetricSpec(
    "p2p.node.bandwidth", Kind.GAUGE, "By/s", "Bytes per second this node moved over the recent past.",
    (IO_DIRECTION,), "p2p_node_bandwidth_bytes_per_second")
STORAGE_USAGE = MetricSpec(
    "p2p.node.storage.usage", Kind.UP_DOWN_COUNTER, "By", "Bytes used by the node's data directory.",
    (), "p2p_node_storage_usage_bytes")
ALERT_ACTIVE = MetricSpec(
    "p2p.alert.active", Kind.GAUGE, "{alert}", "Alerts pending or firing in the in-process evaluator (1 each).",
    (ALERTNAME, ALERTSTATE, SEVERITY), "p2p_alert_active")
TELEMETRY_REJECTED = MetricSpec(
    "p2p.telemetry.rejected", Kind.COUNTER, "{measurement}", "Measurements dropped as invalid, by reason.",
    (REASON,), "p2p_telemetry_rejected_total")

CATALOGUE: tuple[MetricSpec, ...] = (
    NETWORK_IO, CONNECTION_ACTIVE, CONNECTION_ATTEMPTS, CONNECTION_FAILURES, CONNECTION_SETUP,
    CONNECTION_DURATION, PROTOCOL_EVENTS, PEERS, PEER_LATENCY, PEER_REPUTATION, CPU_UTILIZATION,
    MEMORY_USAGE, BANDWIDTH, STORAGE_USAGE, ALERT_ACTIVE, TELEMETRY_REJECTED,
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}
