"""The catalogue's instruments on a MeterProvider: created once per provider, read from every attached source.

The SDK keeps the first callback of an instrument name and drops later ones, so two
collectors on one provider (a node's own and a MonitoringSystem's, say) would silently
lose data. Instead each provider gets one hub. Components attach *sources* (callables
returning ``(attributes, value)`` pairs) to a metric; at each collection the hub's single
callback for that metric reads every source and combines their points: sums add up per
attribute set (whatever the order of the attribute keys), gauges take the first source that
reports a set. A ``Registration`` is what attaching returns; ``cancel()`` detaches it.

Work that must happen at collection time, before any metric is read (handing batched
latency samples to the SDK, say), registers with ``before_collect``: the hub runs those hooks
from the first instrument it creates on the provider, whose callback the SDK calls before
the others at every collection (it never reports a point of its own).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation

from . import _sdk_bridge
from ._fork import after_fork_in_child
from ._version import __version__
from .attributes import SCHEMA_URL
from .metric import Kind, MetricSpec

__all__ = ["InstrumentHub", "Registration", "Points", "Point", "Source", "Combine", "AfterCollect", "METER_NAME"]

METER_NAME = "p2p_telemetry"
logger = logging.getLogger("p2p_telemetry")

Point = tuple[Mapping[str, Any], float]
Points = Iterable[Point]
Source = Callable[[], Points]
Combine = Callable[[list[list[Point]]], list[Point]]
AfterCollect = Callable[[Any, list[Point]], None]
_MARKER = "p2p.telemetry.collection"  # never reports a point; its callback runs the before-collect hooks


def _key(attributes: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset(attributes.items())


def sum_points(per_source: list[list[Point]]) -> list[Point]:
    """Points of several sources with the values of equal attribute sets added up."""
    merged: dict[frozenset[tuple[str, Any]], list[Any]] = {}
    for points in per_source:
        for attributes, value in points:
            entry = merged.get(_key(attributes))
            if entry is None:
                merged[_key(attributes)] = [attributes, value]
            else:
                entry[1] += value
    return [(attributes, value) for attributes, value in merged.values()]


def first_points(per_source: list[list[Point]]) -> list[Point]:
    """Points of several sources, the first source's value winning for an attribute set."""
    merged: dict[frozenset[tuple[str, Any]], Point] = {}
    for points in per_source:
        for point in points:
            merged.setdefault(_key(point[0]), point)
    return list(merged.values())


class Registration:
    """One source (or hook) attached to a hub; ``cancel()`` detaches it (idempotent)."""

    __slots__ = ("owner", "source", "_remove")

    def __init__(self, owner: object, source: Callable[..., Any], remove: Callable[[Registration], None]) -> None:
        self.owner = owner
        self.source = source
        self._remove = remove

    def cancel(self) -> None:
        """Stop reading this source."""
        self._remove(self)


class _Observed:
    """One observable instrument, the sources it reads, and how their points combine."""

    def __init__(self, spec: MetricSpec, combine: Combine, after: AfterCollect | None) -> None:
        self.spec = spec
        self.combine = combine
        self.after = after
        self.sources: tuple[Registration, ...] = ()
        self.instrument: Any = None
        self._failed: set[Registration] = set()

    def callback(self, options: CallbackOptions) -> list[Observation]:
        per_source: list[list[Point]] = []
        for registration in self.sources:
            try:
                per_source.append(list(registration.source()))
            except Exception:  # a broken source never breaks the other metrics
                if registration not in self._failed:
                    self._failed.add(registration)
                    logger.exception("p2p-telemetry: reading %s failed", self.spec.name)
        if len(per_source) == 1 and self.combine in (sum_points, first_points):
            points = per_source[0]
        else:
            points = self.combine(per_source)
        if self.after is not None:
            try:
                self.after(self.instrument, points)
            except Exception:
                logger.exception("p2p-telemetry: post-collection step of %s failed", self.spec.name)
        return [Observation(value, dict(attributes)) for attributes, value in points]


_HUB_ATTRIBUTE = "_p2p_telemetry_hub"


class InstrumentHub:
    """The catalogue's instruments on one MeterProvider."""

    _hubs: weakref.WeakKeyDictionary[Any, InstrumentHub] = weakref.WeakKeyDictionary()
    _hubs_lock = threading.Lock()

    @classmethod
    def for_provider(cls, provider: MeterProvider) -> InstrumentHub:
        """The hub of ``provider``, created on first use."""
        with cls._hubs_lock:
            hub: InstrumentHub | None = getattr(provider, _HUB_ATTRIBUTE, None) or cls._hubs.get(provider)
            if hub is None:
                hub = cls(provider)
                try:  # kept on the provider: it lives and dies with it
                    setattr(provider, _HUB_ATTRIBUTE, hub)
                except (AttributeError, TypeError):
                    cls._hubs[provider] = hub
            return hub

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = weakref.ref(provider)
        self.meter: Meter = provider.get_meter(METER_NAME, __version__, schema_url=SCHEMA_URL)
        self.series_limit = _sdk_bridge.series_limit(provider)
        #: The SDK's exemplar filter on this provider ("always_on", "always_off", "trace_based" or None).
        self.exemplar_filter = _sdk_bridge.exemplar_filter(provider)
        self._observed: dict[str, _Observed] = {}
        self._histograms: dict[str, Histogram] = {}
        self._shared: dict[str, Any] = {}
        self._before: tuple[Registration, ...] = ()
        self._lock = threading.Lock()
        self.meter.create_observable_gauge(_MARKER, [self._run_before_collect],
                                           description="Runs p2p-telemetry's collection-time work; no points.")
        after_fork_in_child(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        provider = self._provider()
        if provider is not None:
            try:
                _sdk_bridge.renew_locks_after_fork(provider)
            except _sdk_bridge.SdkInternalsChanged as error:
                logger.warning("p2p-telemetry: could not renew the SDK's locks in a forked child; a collection "
                               "there may wait forever on a lock the parent held: %s", error)

    def shared(self, name: str, factory: Callable[[], Any]) -> Any:
        """One object per provider under ``name``, for state the collectors on it must share."""
        with self._lock:
            if name not in self._shared:
                self._shared[name] = factory()
            return self._shared[name]

    def observe(self, spec: MetricSpec, owner: object, source: Source, *, combine: Combine | None = None,
                after: AfterCollect | None = None) -> Registration:
        """Report ``source``'s points on ``spec``'s observable instrument at every collection.

        ``combine`` (how several sources' points merge; default: add for sums, first for gauges)
        and ``after`` (a step run with the combined points) belong to the metric: the first
        registration sets them, and a later one that names different ones raises ValueError.
        """
        if spec.kind is Kind.HISTOGRAM:
            raise ValueError(f"{spec.name} is a histogram; record on hub.histogram(spec)")
        combine = combine or (first_points if spec.kind is Kind.GAUGE else sum_points)
        with self._lock:
            observed = self._observed.get(spec.name)
            if observed is None:
                observed = self._observed[spec.name] = _Observed(spec, combine, after)
                create = {
                    Kind.COUNTER: self.meter.create_observable_counter,
                    Kind.UP_DOWN_COUNTER: self.meter.create_observable_up_down_counter,
                    Kind.GAUGE: self.meter.create_observable_gauge,
                }[spec.kind]
                observed.instrument = create(spec.name, [observed.callback], unit=spec.unit,
                                             description=spec.description)
            elif observed.spec != spec or observed.combine != combine or observed.after != after:
                raise ValueError(f"{spec.name} is already reported with another spec, combine or after step")
            registration = Registration(owner, source, self._remover(observed))
            observed.sources = (*observed.sources, registration)
            return registration

    def _remover(self, observed: _Observed) -> Callable[[Registration], None]:
        def remove(registration: Registration) -> None:
            with self._lock:
                observed.sources = tuple(r for r in observed.sources if r is not registration)
        return remove

    def attached(self, spec: MetricSpec) -> int:
        """How many sources ``spec``'s instrument reads at each collection."""
        observed = self._observed.get(spec.name)
        return 0 if observed is None else len(observed.sources)

    def instrument(self, spec: MetricSpec) -> Any:
        """The observable instrument of ``spec`` (None until a source is attached)."""
        observed = self._observed.get(spec.name)
        return None if observed is None else observed.instrument

    def histogram(self, spec: MetricSpec) -> Histogram:
        """``spec``'s synchronous histogram, shared by every collector on this provider."""
        with self._lock:
            instrument = self._histograms.get(spec.name)
            if instrument is None:
                instrument = self._histograms[spec.name] = self.meter.create_histogram(
                    spec.name, unit=spec.unit, description=spec.description,
                    explicit_bucket_boundaries_advisory=list(spec.buckets or ()))
            return instrument

    def before_collect(self, owner: object, hook: Callable[[], None]) -> Registration:
        """Run ``hook()`` at every collection, before any metric of this hub is read."""
        def remove(registration: Registration) -> None:
            with self._lock:
                self._before = tuple(r for r in self._before if r is not registration)
        registration = Registration(owner, hook, remove)
        with self._lock:
            self._before = (*self._before, registration)
        return registration

    def _run_before_collect(self, options: CallbackOptions) -> list[Observation]:
        for registration in self._before:
            try:
                registration.source()
            except Exception:
                logger.exception("p2p-telemetry: a collection-time step failed")
        return []

    def detach(self, owner: object) -> None:
        """Cancel every registration ``owner`` made (sources and hooks)."""
        with self._lock:
            for observed in self._observed.values():
                observed.sources = tuple(r for r in observed.sources if r.owner is not owner)
            self._before = tuple(r for r in self._before if r.owner is not owner)
