"""Protocol group: default and registered protocols, folding into other, bounded event names."""

from __future__ import annotations

import logging

import pytest

from conftest import collect
from p2p_telemetry import MetricsCollector


def events(reader):
    return {(p.attributes["p2p.protocol"], p.attributes["p2p.protocol.event"]): p.value
            for p in collect(reader)["p2p.protocol.events"].points}


def test_default_and_registered_protocols(provider, reader):
    collector = MetricsCollector(provider, protocols=["/ipfs/ping/1.0.0"])
    for protocol in ("task", "discovery", "resource", "health", "/ipfs/ping/1.0.0"):
        collector.protocols.increment(protocol, "request")
    collector.protocols.register("/meshsub/1.1.0")
    collector.record_protocol_metrics("/meshsub/1.1.0", {"publish": 4, "graft": 1})
    handle = collector.protocols.counter("task", "completed")
    handle.add(2)
    handle.add(3)
    assert events(reader) == {
        ("task", "request"): 1, ("discovery", "request"): 1, ("resource", "request"): 1,
        ("health", "request"): 1, ("/ipfs/ping/1.0.0", "request"): 1, ("/meshsub/1.1.0", "publish"): 4,
        ("/meshsub/1.1.0", "graft"): 1, ("task", "completed"): 5}


def test_unregistered_protocols_fold_into_other_with_one_warning(provider, reader, caplog):
    collector = MetricsCollector(provider)
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        for i in range(1000):
            collector.protocols.increment(f"/evil/{i}", "spam")
    assert events(reader) == {("other", "spam"): 1000}
    assert caplog.text.count("protocols outside the accepted set") == 1


def test_event_names_are_capped_per_protocol(provider, reader, caplog):
    collector = MetricsCollector(provider, max_event_names=4)
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        for i in range(10):
            collector.protocols.increment("task", f"event-{i}", n=i)
        collector.protocols.increment("task", "event-0", n=100)
        collector.protocols.increment("task", "x" * 10_000)  # too long to ever be a label
        collector.protocols.increment("task", "\udcff")  # not UTF-8
        collector.protocols.increment("task", 42)  # type: ignore[arg-type]
    counted = events(reader)
    assert counted == {("task", "event-0"): 100, ("task", "event-1"): 1, ("task", "event-2"): 2,
                       ("task", "event-3"): 3, ("task", "other"): sum(range(4, 10)) + 3}
    assert caplog.text.count("event names of protocol 'task'") == 1


def test_invalid_counts_are_rejected(provider, reader):
    collector = MetricsCollector(provider)
    collector.record_protocol_metrics("task", {"ok": 2, "neg": -1, "float": 1.0, "bool": True})
    collector.record_protocol_metrics("task", None)  # type: ignore[arg-type]
    exported = collect(reader)
    assert exported.value("p2p.protocol.events", {"p2p.protocol": "task", "p2p.protocol.event": "ok"}) == 2
    rejected = {p.attributes["reason"]: p.value for p in exported["p2p.telemetry.rejected"].points}
    assert (rejected["range"], rejected["type"]) == (1, 3)


def test_register_rejects_bad_names(provider):
    collector = MetricsCollector(provider)
    with pytest.raises(ValueError, match="protocols"):
        collector.protocols.register("")
