"""Every metric group, registered in one place.

A group is one module declaring its ``MetricSpec``s and a ``MetricGroup`` subclass (see
``base.py``). ``MetricsCollector`` builds the groups of ``REGISTRY`` in this order (a group may
read one listed before it) and closes them in reverse; ``catalogue`` gathers their specs.
Adding a metric family is one module and one line here.
"""

from __future__ import annotations

from .base import CollectorOptions, GroupContext, MetricGroup
from .network import NetworkGroup
from .peers import PeerGroup
from .protocols import ProtocolGroup
from .resources import ResourceGroup
from .telemetry import TelemetryGroup

__all__ = ["REGISTRY", "MetricGroup", "GroupContext", "CollectorOptions"]

REGISTRY: tuple[type[MetricGroup], ...] = (
    NetworkGroup,
    ProtocolGroup,
    PeerGroup,
    ResourceGroup,
    TelemetryGroup,
)
