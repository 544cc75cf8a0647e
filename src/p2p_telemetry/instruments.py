"""The catalogue's instruments on a MeterProvider: created once per provider, read from every bound source.

The SDK keeps the first callback of an instrument name and drops later ones, so two
collectors on one provider (a node's own and a MonitoringSystem's, say) would silently
lose data. Instead each provider gets one hub; every collector attaches *sources* (bound
methods returning ``(attributes, value)`` pairs) and the hub's single callback combines
them: sums add up, gauges take the first source that reports a series.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from ._version import __version__
from .catalogue import Kind, MetricSpec

__all__ = ["InstrumentHub", "Points", "Source", "METER_NAME"]

METER_NAME = "p2p_telemetry"
logger = logging.getLogger("p2p_telemetry")

Points = Iterable[tuple[dict[str, Any], float]]
Source = Callable[[], Points]
Combine = Callable[[list[list[tuple[dict[str, Any], float]]]], Points]
AfterCollect = Callable[[Any, list[tuple[dict[str, Any], float]]], None]


def _sum(per_source: list[list[tuple[dict, float]]]) -> Points:
    merged: dict[tuple, list] = {}
    for points in per_source:
        for attributes, value in points:
            key = tuple(attributes.items())
            if key in merged:
                merged[key][1] += value
            else:
                merged[key] = [attributes, value]
    return [(a, v) for a, v in merged.values()]


def _first(per_source: list[list[tuple[dict, float]]]) -> Points:
    merged: dict[tuple, tuple] = {}
    for points in per_source:
        for attributes, value in points:
            merged.setdefault(tuple(attributes.items()), (attributes, value))
    return list(merged.values())


class _Observed:
    """One observable instrument and the sources it reads."""

    def __init__(self, spec: MetricSpec, combine: Combine, after: AfterCollect | None) -> None:
        self.spec = spec
        self.combine = combine
        self.after = after
        self.sources: list[tuple[int, Source]] = []
        self.instrument: Any = None
        self._failed: set[int] = set()

    def callback(self, options: CallbackOptions) -> list[Observation]:
        per_source = []
        for owner, source in self.sources:
            try:
                per_source.append(list(source()))
            except Exception:  # a broken source never breaks the other metrics
                if owner not in self._failed:
                    self._failed.add(owner)
                    logger.exception("p2p-telemetry: reading %s failed", self.spec.name)
        if len(per_source) == 1 and self.combine in (_sum, _first):
            points = per_source[0]
        else:
            points = list(self.combine(per_source))
        if self.after is not None:
            try:
                self.after(self.instrument, points)
            except Exception:
                logger.exception("p2p-telemetry: post-collection step of %s failed", self.spec.name)
        return [Observation(value, attributes) for attributes, value in points]


class InstrumentHub:
    """The catalogue's instruments on one MeterProvider."""

    _hubs: weakref.WeakKeyDictionary[Any, InstrumentHub] = weakref.WeakKeyDictionary()
    _hubs_lock = threading.Lock()

    @classmethod
    def for_provider(cls, provider: MeterProvider) -> InstrumentHub:
        """The hub of ``provider``, created on first use."""
        with cls._hubs_lock:
            hub = cls._hubs.get(provider)
            if hub is None:
                hub = cls._hubs[provider] = cls(provider.get_meter(METER_NAME, __version__))
            return hub

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._observed: dict[str, _Observed] = {}
        self._histograms: dict[str, Any] = {}
        self._shared: dict[str, Any] = {}
        self._lock = threading.Lock()

    def shared(self, name: str, factory: Callable[[], Any]) -> Any:
        """One object per provider under ``name``, for state the collectors on it must share."""
        with self._lock:
            if name not in self._shared:
                self._shared[name] = factory()
            return self._shared[name]

    def observe(self, spec: MetricSpec, owner: object, source: Source, *,
                combine: Combine | None = None, after: AfterCollect | None = None) -> Any:
        """Report ``source``'s points on ``spec``'s observable instrument; returns the instrument."""
        with self._lock:
            observed = self._observed.get(spec.name)
            if observed is None:
                default = _first if spec.kind is Kind.GAUGE else _sum
                observed = self._observed[spec.name] = _Observed(spec, combine or default, after)
                create = {
                    Kind.COUNTER: self.meter.create_observable_counter,
                    Kind.UP_DOWN_COUNTER: self.meter.create_observable_up_down_counter,
                    Kind.GAUGE: self.meter.create_observable_gauge,
                }[spec.kind]
                observed.instrument = create(spec.name, [observed.callback], unit=spec.unit,
                                             description=spec.description)
            observed.sources = [*observed.sources, (id(owner), source)]
            return observed.instrument

    def histogram(self, spec: MetricSpec) -> Any:
        """``spec``'s synchronous histogram, shared by every collector on this provider."""
        with self._lock:
            instrument = self._histograms.get(spec.name)
            if instrument is None:
                instrument = self._histograms[spec.name] = self.meter.create_histogram(
                    spec.name, unit=spec.unit, description=spec.description,
                    explicit_bucket_boundaries_advisory=list(spec.buckets or ()))
            return instrument

    def detach(self, owner: object) -> None:
        """Stop reading every source that ``owner`` attached."""
        with self._lock:
            for observed in self._observed.values():
                observed.sources = [(o, r) for o, r in observed.sources if o != id(owner)]
