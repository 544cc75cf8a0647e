"""Testing a node's telemetry: read what was really exported, by metric name and attributes.

``TelemetryCapture`` is a MetricsCollector on its own SDK ``MeterProvider`` with an
``InMemoryMetricReader`` (never the global provider), and readers that spare a test the walk
through resource metrics, scopes, metrics and points::

    capture = TelemetryCapture()
    node = MyNode(collector=capture.collector)
    ...
    assert capture.value("p2p.connection.active", {"p2p.connection.direction": "outbound",
                                                    "network.transport": "tcp"}) == 0
    assert capture.value("p2p.network.io", {"p2p.protocol": "task"}, exact=False) == 1024
    assert capture.histogram("p2p.peer.latency", {"p2p.peer.health": "healthy"}).count == 3

Attributes match exactly by default (the one series with exactly these attributes, as
prometheus_client's ``get_sample_value`` does); with ``exact=False`` every series whose attributes
include the ones given counts, added up. Each read on the capture collects anew; ``collect()``
returns a ``Snapshot`` to read several figures of one collection. A read that finds no such
series raises ``NotExported`` (an ``AssertionError`` and a ``LookupError``) naming what was there.

The pytest plugin of this package offers a fresh capture as the ``p2p_telemetry`` fixture.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import TracebackType
from typing import Any, TypeAlias

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .catalogue import BY_NAME
from .collector import MetricsCollector

__all__ = ["TelemetryCapture", "Snapshot", "ExportedMetric", "HistogramValue", "NotExported", "collect"]

Point: TypeAlias = NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint
Attributes: TypeAlias = Mapping[str, Any]


class NotExported(LookupError, AssertionError):
    """No metric, or no point, as asked for was exported (an AssertionError, so a test reads as failed)."""


@dataclass(frozen=True)
class HistogramValue:
    """One histogram series (or several added up): count, sum, min, max and the count in each bucket.

    ``buckets`` maps each bucket's upper bound (``math.inf`` last) to the samples in that bucket
    alone, as OpenTelemetry exports them; ``le(bound)`` gives Prometheus's cumulative
    ``_bucket{le=...}`` count.
    """

    count: int
    sum: float
    min: float | None
    max: float | None
    buckets: Mapping[float, int] = field(default_factory=dict)

    def le(self, bound: float) -> int:
        """Samples at or below ``bound``, which must be one of the bucket bounds."""
        if bound not in self.buckets:
            raise ValueError(f"{bound!r} is not a bucket bound of this histogram; bounds: {list(self.buckets)}")
        return sum(n for upper, n in self.buckets.items() if upper <= bound)

    @classmethod
    def of(cls, points: Sequence[Point]) -> HistogramValue:
        """The histogram points added up (points of one metric share their bucket bounds)."""
        count, total, buckets = 0, 0.0, dict[float, int]()
        lows: list[float] = []
        highs: list[float] = []
        for point in points:
            if not isinstance(point, (HistogramDataPoint, ExponentialHistogramDataPoint)):
                raise TypeError(f"not a histogram point: {point!r}")
            count += point.count
            total += point.sum
            if point.count:
                lows.append(point.min)
                highs.append(point.max)
            for upper, n in _bucket_counts(point):
                buckets[upper] = buckets.get(upper, 0) + n
        return cls(count, total, min(lows, default=None), max(highs, default=None), dict(sorted(buckets.items())))


def _bucket_counts(point: HistogramDataPoint | ExponentialHistogramDataPoint) -> Iterator[tuple[float, int]]:
    if isinstance(point, HistogramDataPoint):
        yield from zip((*point.explicit_bounds, math.inf), point.bucket_counts, strict=True)
        return
    base = 2.0 ** (2.0 ** -point.scale)  # bucket i of an exponential histogram is (base**i, base**(i+1)]
    for i, n in enumerate(point.negative.bucket_counts):
        yield -(base ** (point.negative.offset + i)), n
    if point.zero_count:
        yield 0.0, point.zero_count
    for i, n in enumerate(point.positive.bucket_counts):
        yield base ** (point.positive.offset + i + 1), n


def _kind(data: Any) -> str:
    if isinstance(data, Sum):
        return "monotonic_sum" if data.is_monotonic else "sum"
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    if isinstance(data, ExponentialHistogram):
        return "exponential_histogram"
    return type(data).__name__


def _matches(point: Point, wanted: Attributes, exact: bool) -> bool:
    attributes = point.attributes or {}
    if exact:
        return dict(attributes) == dict(wanted)
    return all(key in attributes and attributes[key] == value for key, value in wanted.items())


@dataclass
class ExportedMetric:
    """One exported metric: its name, unit, description, kind and points.

    ``kind`` is ``"monotonic_sum"`` (a counter), ``"sum"`` (an up-down counter), ``"gauge"``,
    ``"histogram"`` or ``"exponential_histogram"``.
    """

    name: str
    unit: str
    description: str
    kind: str
    points: list[Any]
    temporality: AggregationTemporality | None = None

    def matching(self, attributes: Attributes | None = None, *, exact: bool = False) -> list[Any]:
        """The points whose attributes are exactly ``attributes`` (``exact``) or include them."""
        wanted = attributes or {}
        return [point for point in self.points if _matches(point, wanted, exact)]

    def point(self, attributes: Attributes | None = None) -> Any:
        """The one point whose attributes are exactly ``attributes`` (none: the point without attributes)."""
        found = self.matching(attributes, exact=True)
        if len(found) != 1:
            raise NotExported(f"{self.name}: no point with attributes exactly {dict(attributes or {})}; "
                              f"its points have {self.attribute_sets()}")
        return found[0]

    def value(self, attributes: Attributes | None = None, *, exact: bool = True) -> int | float:
        """A sum's or gauge's value: the one exact series, or (``exact=False``) the matching series added up."""
        if self.kind.endswith("histogram"):
            raise TypeError(f"{self.name} is a histogram: read it with histogram()")
        if exact:
            return self.point(attributes).value  # type: ignore[no-any-return]
        total: int | float = sum(point.value for point in self.matching(attributes))
        return total

    def histogram(self, attributes: Attributes | None = None, *, exact: bool = True) -> HistogramValue:
        """A histogram's count, sum, min, max and buckets: the one exact series, or the matching ones added up."""
        if not self.kind.endswith("histogram"):
            raise TypeError(f"{self.name} is a {self.kind}, not a histogram: read it with value()")
        return HistogramValue.of([self.point(attributes)] if exact else self.matching(attributes))

    def attribute_sets(self) -> list[dict[str, Any]]:
        """The attributes of every point."""
        return [dict(point.attributes or {}) for point in self.points]


class Snapshot:
    """Every metric of one collection, by name (the last one wins if two scopes export a name).

    ``snapshot[name]`` is one ``ExportedMetric`` (``NotExported`` if there is none), ``name in snapshot``
    tells whether it was exported, iterating gives every metric; ``metrics`` maps names to metrics,
    ``scopes`` and ``resources`` hold the instrumentation scopes and resources of the collection, and
    ``data`` the SDK's ``MetricsData`` itself.
    """

    def __init__(self, data: MetricsData | None) -> None:
        self.data = data
        self.metrics: dict[str, ExportedMetric] = {}
        self.scopes: list[InstrumentationScope] = []
        self.resources: list[Resource] = []
        for resource_metrics in (data.resource_metrics if data is not None else ()):
            self.resources.append(resource_metrics.resource)
            for scope_metrics in resource_metrics.scope_metrics:
                self.scopes.append(scope_metrics.scope)
                for metric in scope_metrics.metrics:
                    self.metrics[metric.name] = ExportedMetric(
                        metric.name, metric.unit or "", metric.description or "", _kind(metric.data),
                        list(metric.data.data_points), getattr(metric.data, "aggregation_temporality", None))

    def __getitem__(self, name: str) -> ExportedMetric:
        try:
            return self.metrics[name]
        except KeyError:
            raise NotExported(f"{name} was not exported; exported: {sorted(self.metrics)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.metrics

    def __iter__(self) -> Iterator[ExportedMetric]:
        return iter(self.metrics.values())

    def _metric_or_none(self, name: str) -> ExportedMetric | None:
        """The metric, or None for a catalogue metric with no series yet (an unknown name raises)."""
        if name in self.metrics or name not in BY_NAME:
            return self[name]
        return None

    def points(self, name: str, attributes: Attributes | None = None, *, exact: bool = False) -> list[Any]:
        """The points of ``name`` whose attributes include ``attributes`` (are exactly them with ``exact``)."""
        metric = self._metric_or_none(name)
        return metric.matching(attributes, exact=exact) if metric is not None else []

    def value(self, name: str, attributes: Attributes | None = None, *, exact: bool = True) -> int | float:
        """The value of the series of ``name`` with exactly ``attributes``; with ``exact=False``, the sum over
        every series whose attributes include them (0 when none does)."""
        if exact:
            return self[name].value(attributes)
        metric = self._metric_or_none(name)
        return metric.value(attributes, exact=False) if metric is not None else 0

    def histogram(self, name: str, attributes: Attributes | None = None, *, exact: bool = True) -> HistogramValue:
        """Count, sum, min, max and buckets of the histogram series of ``name`` with exactly ``attributes``;
        with ``exact=False``, every series whose attributes include them, added up."""
        if exact:
            return self[name].histogram(attributes)
        metric = self._metric_or_none(name)
        return metric.histogram(attributes, exact=False) if metric is not None else HistogramValue(0, 0.0, None, None)


def collect(reader: InMemoryMetricReader) -> Snapshot:
    """Collect once through ``reader`` (any InMemoryMetricReader) and return what was exported."""
    return Snapshot(reader.get_metrics_data())


class TelemetryCapture:
    """A MetricsCollector on its own MeterProvider and InMemoryMetricReader, and readers of what it exported.

    ``collector`` is made on first use with ``sample_resources=False`` (resource gauges report what
    the test records, not live psutil readings) and ``collector_options`` (``protocols=``,
    ``peer_series_limit=``...). Give ``provider`` to anything else under test (a second collector,
    a ``MonitoringSystem(meter_provider=capture.provider, metrics=capture.collector)``); ``views``
    are the node's Views, as ``MeterProvider(views=...)`` takes them. ``close()`` (or leaving a
    ``with`` block) shuts the provider down.
    """

    def __init__(self, *, views: Sequence[View] = (), resource: Resource | None = None,
                 sample_resources: bool = False, **collector_options: Any) -> None:
        self.reader = InMemoryMetricReader()
        provider_options: dict[str, Any] = {"metric_readers": [self.reader], "views": list(views)}
        if resource is not None:
            provider_options["resource"] = resource
        self.provider = MeterProvider(**provider_options)
        self._collector_options = {"sample_resources": sample_resources, **collector_options}
        self._closed = False

    @cached_property
    def collector(self) -> MetricsCollector:
        """The MetricsCollector to hand to the node under test (made on first use)."""
        return MetricsCollector(self.provider, **self._collector_options)

    def collect(self) -> Snapshot:
        """Collect now; the snapshot reads several figures of this one collection."""
        return collect(self.reader)

    def points(self, name: str, attributes: Attributes | None = None, *, exact: bool = False) -> list[Any]:
        """Collect, then ``Snapshot.points``: the points of ``name`` whose attributes include ``attributes``."""
        return self.collect().points(name, attributes, exact=exact)

    def value(self, name: str, attributes: Attributes | None = None, *, exact: bool = True) -> int | float:
        """Collect, then ``Snapshot.value``: one series' value, or (``exact=False``) the matching ones added up."""
        return self.collect().value(name, attributes, exact=exact)

    def histogram(self, name: str, attributes: Attributes | None = None, *, exact: bool = True) -> HistogramValue:
        """Collect, then ``Snapshot.histogram``: count, sum, min, max and buckets of a histogram series."""
        return self.collect().histogram(name, attributes, exact=exact)

    def close(self) -> None:
        """Close the collector (if one was made) and shut the provider down; idempotent."""
        if self._closed:
            return
        self._closed = True
        if "collector" in self.__dict__:
            self.collector.close()
        self.provider.shutdown()

    def __enter__(self) -> TelemetryCapture:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        made = "collector" in self.__dict__
        return f"<TelemetryCapture collector={'made' if made else 'not made'} closed={self._closed}>"
