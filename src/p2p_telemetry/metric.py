"""What a metric is, as data: its instrument kind, unit, description and attribute keys."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Kind", "MetricSpec"]


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
