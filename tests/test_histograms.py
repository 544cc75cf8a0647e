"""p2p.peer.latency is exact under any View, keeps exemplars as any SDK histogram, and survives SDK changes.

The ground truth is the SDK itself: a plain histogram on the same provider (same View) given
the same samples one by one with ``Histogram.record``.
"""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.trace import TracerProvider

from conftest import collect
from p2p_telemetry import MetricsCollector, _sdk_bridge
from p2p_telemetry.groups.pubsub import MESSAGE_SIZE_BUCKETS
from p2p_telemetry.histograms import _SORTED_BATCHES as SORTED_BATCHES
from p2p_telemetry.histograms import BATCH_SIZE

# Values between boundaries, and on them (a bucket holds its upper boundary): 0.0005, 0.01, 0.25, 1.0, 10.0.
SAMPLES = [0.0004, 0.003, 0.02, 0.02, 0.07, 0.3, 0.9, 1.7, 4.2, 11.0, 12.0, 0.011, 0.25, 2.5, 0.0001, 3.3,
           0.0005, 0.01, 1.0, 10.0]
HEALTHY = {"p2p.peer.health": "healthy"}


def _shape(point):
    fields = ["count", "sum", "min", "max"]
    fields += ["bucket_counts", "explicit_bounds"] if hasattr(point, "explicit_bounds") else [
        "scale", "zero_count", "positive"]
    return {f: (round(getattr(point, f), 9) if f == "sum" else getattr(point, f)) for f in fields}


def _latency_and_truth(views, batches, **provider_options):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=views, **provider_options)
    peers = MetricsCollector(provider, sample_resources=False).peers
    truth = provider.get_meter("truth").create_histogram("truth.latency", unit="s",
                                                         explicit_bucket_boundaries_advisory=list(
                                                             peers.specs[1].buckets or ()))
    exported = None
    for batch in batches:
        for value in batch:
            peers.update("peer", latency=value)
            truth.record(value, HEALTHY)
        exported = collect(reader)
    provider.shutdown()
    return exported["p2p.peer.latency"].point(HEALTHY), exported["truth.latency"].point(HEALTHY)


@pytest.mark.parametrize("aggregation", [
    None,  # the catalogue's buckets: merged in batches
    ExplicitBucketHistogramAggregation(boundaries=(0.001, 0.01, 0.1, 1.0, 10.0)),
    ExponentialBucketHistogramAggregation(max_size=20),
], ids=["default", "other-buckets", "exponential"])
def test_exact_whatever_the_views_aggregation(aggregation, caplog):
    views = [] if aggregation is None else [View(instrument_name="*latency", aggregation=aggregation)]
    with caplog.at_level(logging.INFO, logger="p2p_telemetry"):
        ours, truth = _latency_and_truth(views, [SAMPLES, SAMPLES[::-1], SAMPLES[:3]])
    assert _shape(ours) == _shape(truth)
    assert ours.count == 2 * len(SAMPLES) + 3


# Message sizes (ints): few values repeated (on boundaries too: 64, 4096, 1048576), all different, one value.
FEW_SIZES = [0, 64, 65, 128, 200, 256, 4096, 4097, 16384, 1048576, 2_000_000] * 40
SPREAD_SIZES = [(n * 7919) % 5003 for n in range(600)]
ONE_SIZE = [256] * 300


def _sizes_and_truth(views, batches):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=views)
    pubsub = MetricsCollector(provider, sample_resources=False).pubsub
    book = pubsub.topic("t", own=True)
    truth = provider.get_meter("truth").create_histogram(
        "truth.size", unit="By", explicit_bucket_boundaries_advisory=list(MESSAGE_SIZE_BUCKETS))
    attributes = {"p2p.pubsub.topic": "t"}
    sorted_next = []
    for batch in batches:
        for size in batch:
            book.receive(size)
            truth.record(size, attributes)
        exported = collect(reader)
        sorted_next.append(book._histogram._sort_next[0])
    provider.shutdown()
    return exported["p2p.pubsub.message.size"].point(attributes), exported["truth.size"].point(attributes), sorted_next


@pytest.mark.parametrize("aggregation", [
    None,  # the catalogue's buckets: merged in batches
    ExplicitBucketHistogramAggregation(boundaries=(100.0, 1000.0)),
    ExponentialBucketHistogramAggregation(max_size=20),
], ids=["default", "other-buckets", "exponential"])
def test_message_sizes_are_exact_summed_by_value_or_sorted(aggregation):
    views = [] if aggregation is None else [View(instrument_name="*size", aggregation=aggregation)]
    ours, truth, sorted_next = _sizes_and_truth(views, [FEW_SIZES, SPREAD_SIZES, FEW_SIZES, ONE_SIZE])
    assert _shape(ours) == _shape(truth)
    assert ours.count == 2 * len(FEW_SIZES) + len(SPREAD_SIZES) + len(ONE_SIZE)
    if aggregation is None:
        # by value; sorted (every value new), then the next batches sorted without trying
        assert sorted_next == [0, SORTED_BATCHES, SORTED_BATCHES - 1, SORTED_BATCHES - 2]


def test_exact_when_the_sdk_internals_change(monkeypatch, caplog):
    def changed(*args, **kwargs):
        args[0].record(args[5], args[1])  # as the bridge does: the minimum goes through record() first
        raise _sdk_bridge.SdkInternalsChanged("test")

    monkeypatch.setattr(_sdk_bridge, "merge_histogram", changed)
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        ours, truth = _latency_and_truth([], [SAMPLES, SAMPLES])
    assert _shape(ours) == _shape(truth)
    assert caplog.text.count("public API") == 1


def test_a_full_batch_is_handed_over_before_collection():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    peers = MetricsCollector(provider, sample_resources=False).peers
    for _ in range(BATCH_SIZE + 10):
        peers.update("peer", latency=0.01)
    # the batch of BATCH_SIZE went to the SDK on the recording thread: collecting the SDK's storage
    # without the before-collect hook (which would flush the rest) shows it
    from p2p_telemetry.instruments import InstrumentHub
    InstrumentHub.for_provider(provider)._before = ()
    assert collect(reader)["p2p.peer.latency"].point(HEALTHY).count == BATCH_SIZE
    provider.shutdown()


def test_exemplars_are_kept_as_by_any_sdk_histogram():
    tracer = TracerProvider().get_tracer("test")
    reader = InMemoryMetricReader()
    from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter
    provider = MeterProvider(metric_readers=[reader], exemplar_filter=AlwaysOnExemplarFilter())
    peers = MetricsCollector(provider, sample_resources=False).peers
    truth = provider.get_meter("truth").create_histogram("truth.latency", unit="s",
                                                         explicit_bucket_boundaries_advisory=list(
                                                             peers.specs[1].buckets or ()))
    with tracer.start_as_current_span("ping"):
        for value in SAMPLES[:8]:
            peers.update("peer", latency=value)
            truth.record(value, HEALTHY)
    exported = collect(reader)
    ours, theirs = exported["p2p.peer.latency"].point(HEALTHY), exported["truth.latency"].point(HEALTHY)
    assert len(ours.exemplars) == len(theirs.exemplars) == 7  # one a bucket: 0.02 twice
    assert {e.trace_id for e in ours.exemplars} == {e.trace_id for e in theirs.exemplars} != {None}
    provider.shutdown()


def test_trace_based_exemplars_inside_a_sampled_span_only():
    tracer = TracerProvider().get_tracer("test")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])  # the SDK's default filter: trace_based
    peers = MetricsCollector(provider, sample_resources=False).peers
    for value in SAMPLES[:5]:
        peers.update("peer", latency=value)  # no span: batched, no exemplar (as the SDK would do)
    with tracer.start_as_current_span("ping") as span:
        peers.update("peer", latency=0.123)
    ours = collect(reader)["p2p.peer.latency"].point(HEALTHY)
    assert ours.count == 6
    assert [(e.value, e.span_id) for e in ours.exemplars] == [(0.123, span.get_span_context().span_id)]
    provider.shutdown()
