"""The attribute vocabulary: every attribute key p2p-telemetry puts on a point, and its bounded values.

Keys take OpenTelemetry's semantic-convention constants where a convention exists
(``network.io.direction``, ``network.transport``, ``error.type``); the ``p2p.*`` keys are this
project's own. Where the values depart from a convention it is said here:

- ``error.type``: the convention allows any low-cardinality string (an exception's class name,
  say); p2p-telemetry uses a fixed set of failure classes, so one class of failure is one series
  whichever library raised it.
- ``network.transport``: the convention's values, plus ``other`` for anything else.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes.network_attributes import NETWORK_IO_DIRECTION
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE as SEMCONV_ERROR_TYPE
from opentelemetry.semconv.attributes.network_attributes import NETWORK_TRANSPORT
from opentelemetry.semconv.schemas import Schemas

__all__ = [
    "SCHEMA_URL", "OTHER", "UNKNOWN",
    "IO_DIRECTION", "TRANSPORT", "P2P_TRANSPORT", "PROTOCOL", "EVENT", "CONNECTION_DIRECTION", "ERROR_TYPE",
    "HEALTH", "PEER_ID", "PEER_RANK", "ALERTNAME", "ALERTSTATE", "SERVICE_NAME_LABEL", "SERVICE_INSTANCE_ID_LABEL",
    "SEVERITY", "REASON",
    "IO_DIRECTIONS", "CONNECTION_DIRECTIONS", "TRANSPORTS", "P2P_TRANSPORTS", "ERROR_TYPES", "HEALTH_STATES",
    "DEFAULT_PROTOCOLS", "REJECT_REASONS",
    # py-libp2p protocols
    "PUBSUB_TOPIC", "PUBSUB_EVENT", "PUBSUB_RPC_PART", "KAD_REQUEST_TYPE", "KAD_QUERY_OUTCOME", "IDENTIFY_EVENT",
    "RELAY_EVENT", "RCMGR_RESOURCE", "RCMGR_SCOPE",
    "PUBSUB_EVENTS", "PUBSUB_RPC_PARTS", "KAD_REQUEST_TYPES", "KAD_QUERY_OUTCOMES", "IDENTIFY_EVENTS", "RELAY_EVENTS",
    "RCMGR_RESOURCES", "RCMGR_SCOPES",
]

SCHEMA_URL: Final = Schemas.V1_40_0.value  # the semantic-convention version these keys follow

OTHER: Final = "other"
UNKNOWN: Final = "unknown"

# Keys.
IO_DIRECTION: Final = NETWORK_IO_DIRECTION
TRANSPORT: Final = NETWORK_TRANSPORT
ERROR_TYPE: Final = SEMCONV_ERROR_TYPE
P2P_TRANSPORT: Final = "p2p.transport"
PROTOCOL: Final = "p2p.protocol"
EVENT: Final = "p2p.protocol.event"
CONNECTION_DIRECTION: Final = "p2p.connection.direction"
HEALTH: Final = "p2p.peer.health"
PEER_ID: Final = "p2p.peer.id"
PEER_RANK: Final = "p2p.peer.rank"
ALERTNAME: Final = "alertname"
# The node's identity on its alerts, under the label names Prometheus gives the Resource on target_info.
SERVICE_NAME_LABEL: Final = "service_name"
SERVICE_INSTANCE_ID_LABEL: Final = "service_instance_id"
ALERTSTATE: Final = "alertstate"
SEVERITY: Final = "severity"
REASON: Final = "reason"
PUBSUB_TOPIC: Final = "p2p.pubsub.topic"
PUBSUB_EVENT: Final = "p2p.pubsub.event"
PUBSUB_RPC_PART: Final = "p2p.pubsub.rpc.part"
KAD_REQUEST_TYPE: Final = "p2p.kad.request.type"
KAD_QUERY_OUTCOME: Final = "p2p.kad.query.outcome"
IDENTIFY_EVENT: Final = "p2p.identify.event"
RELAY_EVENT: Final = "p2p.relay.event"
RCMGR_RESOURCE: Final = "p2p.rcmgr.resource"
RCMGR_SCOPE: Final = "p2p.rcmgr.scope"

# Bounded values.
IO_DIRECTIONS: Final = ("transmit", "receive")
CONNECTION_DIRECTIONS: Final = ("inbound", "outbound", UNKNOWN)
TRANSPORTS: Final = ("tcp", "udp", "quic", "unix", "pipe", OTHER)
P2P_TRANSPORTS: Final = ("tcp", "quic", "ws", "wss", "webtransport", "webrtc", "circuit", OTHER)
ERROR_TYPES: Final = ("timeout", "refused", "reset", "unreachable", "tls", "protocol", "canceled", OTHER)
HEALTH_STATES: Final = ("healthy", "degraded", "unhealthy")
DEFAULT_PROTOCOLS: Final = ("task", "discovery", "resource", "health")
REJECT_REASONS: Final = (
    "type",  # wrong type: a float count, a bool, None, a string...
    "range",  # negative, out of range, or not finite
    "overflow",  # a running total would pass 2**63-1
    "peer_id",  # empty, too long or not valid UTF-8
    "peer_limit",  # the peer table is full
    "unbalanced",  # a connection closed that was never opened
    "error",  # anything unexpected inside a record call
)

# Bounded values of the py-libp2p protocol groups (``p2p.pubsub.topic`` is bounded by the node's own topics).
PUBSUB_EVENTS: Final = ("published", "received", "delivered", "duplicate", "rejected")
PUBSUB_RPC_PARTS: Final = ("publish", "subscription", "control")
KAD_REQUEST_TYPES: Final = ("find_node", "get_value", "put_value", "get_providers", "add_provider", "ping", OTHER)
KAD_QUERY_OUTCOMES: Final = ("ok", "not_found", "error")
IDENTIFY_EVENTS: Final = ("received", "sent", "push_received", "push_sent", "error")
RELAY_EVENTS: Final = ("reservation_accepted", "reservation_denied", "circuit_opened", "circuit_closed",
                       "circuit_failed")
RCMGR_RESOURCES: Final = ("connections", "streams", "fds", "memory")
RCMGR_SCOPES: Final = ("system", "transient")
