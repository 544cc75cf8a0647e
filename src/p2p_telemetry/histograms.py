"""A histogram whose samples reach the SDK in batches, exactly, whatever the node's Views say.

``Histogram.record`` costs several microseconds a sample in opentelemetry-sdk (attribute
hashing, exemplar reservoirs, a lock per aggregation). A ``BatchedHistogram`` keeps the raw
samples of each attribute set in a small array and hands them to the SDK at collection (the
hub's before-collect hook) or when an array fills:

- when every reader aggregates the instrument with the catalogue's explicit buckets (the
  default), the batch is merged into their aggregations in one step (``_sdk_bridge``), its
  bucket counts made in C code: counted per value when its values repeat (message sizes), else
  sorted and bisected at each boundary;
- otherwise (a View with other buckets, an exponential histogram, an SDK whose internals
  differ) every sample goes through the public ``record``, so count, sum, min, max and buckets
  are exactly what the SDK makes of each sample; from then on samples are recorded as they come.

Exemplars: a sample that the SDK's exemplar filter would keep (``always_on``, or
``trace_based`` inside a sampled span) is recorded at once, in the caller's context, so the
exemplar links the caller's trace as with any other histogram.

Not thread-safe by itself: the owner serializes ``record`` and ``take`` (the peer table does
it with its lock) and calls ``hand_over`` outside its locks.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.metrics import Histogram
from opentelemetry.trace import get_current_span

from . import _sdk_bridge
from .bounds import Rejections

__all__ = ["BatchedHistogram", "Batches", "BATCH_SIZE"]

logger = logging.getLogger("p2p_telemetry")

BATCH_SIZE = 4096  # samples of one attribute set held before they are handed over on the recording thread
# A batch is summed up by value (counted per distinct value, C code) while at most one sample in
# _REPEATS brings a new value, as message sizes do; otherwise by sorting it, and then the next
# _SORTED_BATCHES batches of that attribute set are sorted without trying.
_REPEATS = 4
_SORTED_BATCHES = 16
Batches = Sequence[Sequence[float]]
_current_context = _sdk_bridge.context_getter()


class BatchedHistogram:
    """One histogram instrument, with a fixed list of attribute sets chosen by index."""

    def __init__(self, instrument: Histogram, boundaries: Sequence[float], series: Sequence[Mapping[str, Any]],
                 rejections: Rejections, exemplar_filter: str | None, where: str) -> None:
        self._instrument = instrument
        self._boundaries = tuple(boundaries)
        self._series = [dict(attributes) for attributes in series]
        self._rejections = rejections
        self._where = where
        self._pending: list[array[float]] = [array("d") for _ in self._series]
        self._sort_next: list[int] = [0 for _ in self._series]  # a hint only: a race picks either way, both exact
        self._always_now = exemplar_filter == "always_on"
        self._now_in_sampled_span = exemplar_filter == "trace_based"
        #: True once samples are recorded one by one (a reader aggregates differently, or always_on exemplars)
        self.direct = self._always_now

    def record(self, value: float, series: int) -> bool:
        """Add a valid sample (a finite number >= 0) to attribute set ``series``; True when its batch is full."""
        if self.direct or (self._now_in_sampled_span and _current_context() and _in_sampled_span()):
            self.record_now(value, series)
            return False
        pending = self._pending[series]
        pending.append(value)
        return len(pending) >= BATCH_SIZE

    def record_now(self, value: float, series: int) -> None:
        """Record one sample through the SDK at once (in the caller's context)."""
        try:
            self._instrument.record(value, self._series[series])
        except Exception:
            self._rejections.reject("error", self._where)

    def take(self) -> Batches:
        """The pending samples, leaving none (call under the owner's lock)."""
        batches, self._pending = self._pending, [array("d") for _ in self._series]
        return batches

    def hand_over(self, batches: Batches) -> None:
        """Give samples taken with ``take`` (or any batch per attribute set) to the SDK, outside the owner's locks."""
        for series, samples in enumerate(batches):
            if samples:
                self._hand_over(series, samples)

    def _hand_over(self, series: int, samples: Sequence[float]) -> None:
        if not self.direct:
            counts, total, minimum, maximum = self._summary(series, samples)
            try:
                if _sdk_bridge.merge_histogram(self._instrument, self._series[series], self._boundaries,
                                               counts, total, minimum, maximum):
                    return
                logger.info("p2p-telemetry: a reader aggregates %s otherwise than with the catalogue's buckets (a "
                            "View?); its samples now go through the SDK one by one", self._where)
            except _sdk_bridge.SdkInternalsChanged as error:
                logger.warning("p2p-telemetry: %s now records each sample through the SDK's public API (slower): %s",
                               self._where, error)
            self.direct = True
            samples = list(samples)
            samples.remove(minimum)  # merge_histogram recorded the batch's minimum already
        for value in samples:
            self.record_now(value, series)

    def _summary(self, series: int, samples: Sequence[float]) -> tuple[list[int], float, float, float]:
        """The bucket counts, sum, minimum and maximum of a batch (not empty)."""
        if self._sort_next[series]:
            self._sort_next[series] -= 1
        elif samples[0] != samples[-1]:  # else most likely one value throughout, which sorts in one pass
            tally = Counter(samples)
            if len(tally) * _REPEATS <= len(samples) and all(value.__class__ is int for value in tally):
                return _tally_counts(tally, self._boundaries), sum(samples), min(tally), max(tally)
            self._sort_next[series] = _SORTED_BATCHES
        ordered = sorted(samples)  # C code: the buckets are then one bisection per boundary
        return _bucket_counts(ordered, self._boundaries), sum(ordered), ordered[0], ordered[-1]


def _bucket_counts(ordered: Sequence[float], boundaries: Sequence[float]) -> list[int]:
    """How many of ``ordered`` (sorted ascending) fall in each explicit bucket: ``(-inf, b0]``, ``(b0, b1]``, ...,
    ``(bn, +inf)``, as OpenTelemetry's explicit bucket histogram counts them."""
    counts = []
    below = 0
    for boundary in boundaries:
        upto = bisect_right(ordered, boundary)
        counts.append(upto - below)
        below = upto
    counts.append(len(ordered) - below)
    return counts


def _tally_counts(tally: Mapping[float, int], boundaries: Sequence[float]) -> list[int]:
    """``_bucket_counts`` of the samples counted per value in ``tally``."""
    counts = [0] * (len(boundaries) + 1)
    for value, n in tally.items():
        counts[bisect_left(boundaries, value)] += n
    return counts


def _in_sampled_span() -> bool:
    return bool(get_current_span().get_span_context().trace_flags.sampled)
