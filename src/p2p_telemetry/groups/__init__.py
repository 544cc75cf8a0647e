"""Every metric group, registered in one place.

A group is one module declaring its ``MetricSpec``s and a ``MetricGroup`` subclass (see
``base.py``). ``MetricsCollector`` builds the groups of ``REGISTRY`` in this order (a group may
read one listed before it) and closes them in reverse; ``catalogue`` gathers their specs.
Adding a metric family is one module and one line here.
"""

from __future__ import annotations

from .base import CollectorOptions, GroupContext, MetricGroup
from .identify import IdentifyGroup
from .kad import KadGroup
from .network import NetworkGroup
from .peers import PeerGroup
from .protocols import ProtocolGroup
from .pubsub import PubsubGroup
from .rcmgr import RcmgrGroup
from .relay import RelayGroup
from .resources import ResourceGroup
from .telemetry import TelemetryGroup

__all__ = ["REGISTRY", "LIBP2P_GROUPS", "MetricGroup", "GroupContext", "CollectorOptions"]

#: The groups only a py-libp2p host reports (through ``integrations.libp2p``); other nodes leave them empty.
LIBP2P_GROUPS: tuple[type[MetricGroup], ...] = (PubsubGroup, KadGroup, IdentifyGroup, RelayGroup, RcmgrGroup)

REGISTRY: tuple[type[MetricGroup], ...] = (
    NetworkGroup,
    ProtocolGroup,
    PeerGroup,
    ResourceGroup,
    TelemetryGroup,
    *LIBP2P_GROUPS,
)
