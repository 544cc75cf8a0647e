"""Private: the only place p2p-telemetry reaches into opentelemetry-sdk internals.

Three things cannot be reached through the SDK's public API:

* ``merge_histogram`` adds a batch of in-process histogram samples to every reader's
  aggregation in one step (``Histogram.record`` costs about 9 us a sample);
* ``prune_attribute_sets`` forgets attribute sets that an observable instrument no longer
  reports (the SDK keeps them all and collapses into ``otel.metric.overflow`` after 2,000);
* ``renew_locks_after_fork`` gives a forked child fresh SDK locks (a lock another thread of the
  parent held at ``fork()`` stays held forever in the child, and the child's first collection
  or histogram record would wait on it).

Written against opentelemetry-sdk 1.45 (tested in CI). Anything unexpected raises
``SdkInternalsChanged``; callers then fall back to the public API with one warning.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["SdkInternalsChanged", "merge_histogram", "prune_attribute_sets", "is_sdk_instrument", "series_limit",
           "DEFAULT_SERIES_LIMIT", "renew_locks_after_fork",
           "exemplar_filter",
           "context_getter"]

try:
    from opentelemetry.sdk.metrics._internal.aggregation import (
        _DropAggregation,
        _ExplicitBucketHistogramAggregation,
    )
except ImportError:  # pragma: no cover - a future SDK
    _DropAggregation = _ExplicitBucketHistogramAggregation = None  # type: ignore[assignment,misc]


class SdkInternalsChanged(Exception):
    """The SDK's private structures are not what this module was written against."""


def _sdk_instrument(instrument: Any) -> Any | None:
    """The SDK instrument behind ``instrument`` (the API's proxy forwards to one), or None."""
    if hasattr(instrument, "_real_instrument"):
        instrument = instrument._real_instrument
    if instrument is None or not type(instrument).__module__.startswith("opentelemetry.sdk."):
        return None  # no SDK yet (proxy) or a no-op meter: nothing reads it
    return instrument


def _sdk_provider(provider: Any) -> Any | None:
    """The SDK MeterProvider behind ``provider`` (the API's proxy forwards to one), or None."""
    provider = getattr(provider, "_real_meter_provider", None) or provider
    return provider if type(provider).__module__.startswith("opentelemetry.sdk.") else None


def is_sdk_instrument(instrument: Any) -> bool:
    """True once ``instrument`` (or the instrument its proxy forwards to) belongs to an SDK provider."""
    return _sdk_instrument(instrument) is not None


def _view_matches(instrument: Any) -> list[Any]:
    sdk = _sdk_instrument(instrument)
    if sdk is None:
        return []
    try:
        storages = list(sdk._measurement_consumer._reader_storages.values())
        matches = []
        for storage in storages:
            matches.extend(storage._get_or_init_view_instrument_match(sdk))
        for match in matches:
            match._lock, match._attributes_aggregation, match._view  # noqa: B018 - shape check
        return matches
    except (AttributeError, TypeError, KeyError) as error:
        raise SdkInternalsChanged(f"reader storages: {error!r}") from error


def _aggregation_for(match: Any, attributes: dict[str, Any]) -> Any:
    keys = match._view._attribute_keys
    if keys is not None:
        attributes = {k: v for k, v in attributes.items() if k in keys}
    for aggregation in list(match._attributes_aggregation.values()):
        if aggregation._attributes == attributes:
            return aggregation
    return None


def merge_histogram(instrument: Any, attributes: dict[str, Any], boundaries: Sequence[float],
                    counts: Sequence[int], total: float, minimum: float, maximum: float) -> bool:
    """Add a batch of samples, given as bucket counts over ``boundaries``, to ``instrument``.

    The batch's minimum (a real sample) always goes through the public ``record`` first, which
    creates the aggregation in every reader; the other samples are added to those aggregations
    directly. Returns False, having added nothing more, when a reader aggregates the instrument
    otherwise than with explicit buckets on ``boundaries`` (a View); raises
    ``SdkInternalsChanged`` (the minimum recorded too) when the internals are not as expected.
    """
    n = sum(counts)
    if n == 0:
        return True
    instrument.record(minimum, attributes)
    if n == 1:
        return True
    if _ExplicitBucketHistogramAggregation is None:
        raise SdkInternalsChanged("no _ExplicitBucketHistogramAggregation")
    rest = list(counts)
    rest[bisect_left(boundaries, minimum)] -= 1
    targets: list[Any] = []
    try:
        for match in _view_matches(instrument):
            aggregation = _aggregation_for(match, attributes)
            if isinstance(aggregation, _DropAggregation):
                continue
            if (not isinstance(aggregation, _ExplicitBucketHistogramAggregation)
                    or tuple(aggregation._boundaries) != tuple(boundaries)):
                return False
            aggregation._lock, aggregation._value, aggregation._sum  # noqa: B018 - shape check
            targets.append(aggregation)
        for aggregation in targets:
            with aggregation._lock:
                if aggregation._value is None:
                    aggregation._value = aggregation._get_empty_bucket_counts()
                value = aggregation._value
                for index, count in enumerate(rest):
                    if count:
                        value[index] += count
                aggregation._sum += total - minimum
                if aggregation._record_min_max:
                    aggregation._min = min(aggregation._min, minimum)
                    aggregation._max = max(aggregation._max, maximum)
    except (AttributeError, TypeError) as error:
        raise SdkInternalsChanged(f"histogram aggregation: {error!r}") from error
    return True


def exemplar_filter(provider: Any) -> str | None:
    """``"always_on"``, ``"always_off"`` or ``"trace_based"``: the exemplar filter of ``provider``, or None."""
    real = _sdk_provider(provider)
    if real is None:
        return None
    try:
        name = type(real._sdk_config.exemplar_filter).__name__
    except AttributeError:
        return None
    return {"AlwaysOnExemplarFilter": "always_on", "AlwaysOffExemplarFilter": "always_off",
            "TraceBasedExemplarFilter": "trace_based"}.get(name)


def prune_attribute_sets(instrument: Any, keep: Sequence[dict[str, Any]]) -> None:
    """Forget every attribute set of observable ``instrument`` not in ``keep``, in every reader."""
    wanted = {tuple(sorted(attributes.items())) for attributes in keep}
    try:
        for match in _view_matches(instrument):
            with match._lock:
                table = match._attributes_aggregation
                stale = [key for key, aggregation in table.items()
                         if tuple(sorted(aggregation._attributes.items())) not in wanted]
                for key in stale:
                    del table[key]
    except (AttributeError, TypeError) as error:
        raise SdkInternalsChanged(f"attribute sets: {error!r}") from error


DEFAULT_SERIES_LIMIT = 2000  # opentelemetry-sdk's default cardinality limit per metric and reader


def series_limit(provider: Any) -> int:
    """The fewest attribute sets a metric of ``provider`` can export before the SDK folds the rest into
    ``otel.metric.overflow``: the smallest limit any of its readers (or Views with a limit) enforce.

    Readers added to the provider later are not seen; without an SDK provider (or with internals
    other than expected) the SDK's default.
    """
    provider = _sdk_provider(provider)
    if provider is None:
        return DEFAULT_SERIES_LIMIT
    try:
        readers = list(provider._measurement_consumer._reader_storages)
        limits = [limit for reader in readers for limit in reader._instrument_class_cardinality_limit.values()]
        limits += [view._aggregation_cardinality_limit for view in provider._sdk_config.views
                   if getattr(view, "_aggregation_cardinality_limit", None) is not None]
    except AttributeError:
        return DEFAULT_SERIES_LIMIT
    valid = [limit for limit in limits if isinstance(limit, int) and limit > 0]
    return min(valid, default=DEFAULT_SERIES_LIMIT)


_LOCK_FACTORIES: dict[type, Any] = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


def _renew_locks_of(obj: Any) -> None:
    for name, value in list(vars(obj).items()):
        factory = _LOCK_FACTORIES.get(type(value))
        if factory is not None:
            setattr(obj, name, factory())


def renew_locks_after_fork(provider: Any) -> None:
    """In a forked child: replace every lock of ``provider``'s collection path with a fresh one.

    Walks the provider, its measurement consumer, readers, reader storages, view-instrument
    matches, their aggregations and the aggregations' exemplar reservoirs. Raises
    ``SdkInternalsChanged`` when those are not found; does nothing for a provider that is not the SDK's.
    """
    provider = _sdk_provider(provider)
    if provider is None:
        return
    try:
        consumer = provider._measurement_consumer
        objects: list[Any] = [provider, consumer, *consumer._reader_storages]
        for storage in consumer._reader_storages.values():
            objects.append(storage)
            for matches in storage._instrument_view_instrument_matches.values():
                for match in matches:
                    objects.append(match)
                    for aggregation in list(match._attributes_aggregation.values()):
                        objects.append(aggregation)
                        reservoir = getattr(aggregation, "_reservoir", None)  # exemplars: a lock of its own
                        if reservoir is not None:
                            objects.append(reservoir)
    except AttributeError as error:
        raise SdkInternalsChanged(f"collection path: {error!r}") from error
    for obj in objects:
        _renew_locks_of(obj)


def context_getter() -> Callable[[], Any]:
    """The cheapest call returning the current OpenTelemetry ``Context`` (empty when no span is active).

    The API's ``get_current()`` goes through two Python calls; with the default runtime context
    (contextvars) the context variable's own ``get`` is one C call. Any other runtime context:
    ``get_current`` itself.
    """
    from opentelemetry import context

    variable = getattr(getattr(context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    get = getattr(variable, "get", None)
    return get if callable(get) else context.get_current
