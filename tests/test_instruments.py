"""InstrumentHub: one instrument per metric and provider, every source read, one clear contract."""

from __future__ import annotations

import pytest

from conftest import collect
from p2p_telemetry.catalogue import PEER_REPUTATION, PEERS, TELEMETRY_REJECTED
from p2p_telemetry.instruments import InstrumentHub, first_points


def test_sums_add_whatever_the_order_of_attribute_keys(provider, reader):
    hub = InstrumentHub.for_provider(provider)
    hub.observe(TELEMETRY_REJECTED, "a", lambda: [({"reason": "type", "x": "1"}, 2)])
    hub.observe(TELEMETRY_REJECTED, "b", lambda: [({"x": "1", "reason": "type"}, 3)])
    assert collect(reader).value("p2p.telemetry.rejected", {"reason": "type", "x": "1"}) == 5


def test_a_second_registration_cannot_change_how_sources_combine(provider):
    hub = InstrumentHub.for_provider(provider)
    hub.observe(PEERS, "a", lambda: [])
    with pytest.raises(ValueError, match="p2p.peers"):
        hub.observe(PEERS, "b", lambda: [], combine=first_points)
    hub.observe(PEER_REPUTATION, "a", lambda: [], combine=first_points)
    hub.observe(PEER_REPUTATION, "b", lambda: [], combine=first_points)  # the same: accepted


def test_registrations_cancel_by_handle_and_detach_by_owner(provider, reader):
    hub = InstrumentHub.for_provider(provider)
    owner = object()
    first = hub.observe(PEERS, owner, lambda: [({"p2p.peer.health": "healthy"}, 1)])
    hub.observe(PEERS, owner, lambda: [({"p2p.peer.health": "healthy"}, 2)])
    other = hub.observe(PEERS, "other", lambda: [({"p2p.peer.health": "healthy"}, 4)])
    assert collect(reader).value("p2p.peers", {"p2p.peer.health": "healthy"}) == 7
    first.cancel()
    first.cancel()  # idempotent
    assert collect(reader).value("p2p.peers", {"p2p.peer.health": "healthy"}) == 6
    hub.detach(owner)
    assert collect(reader).value("p2p.peers", {"p2p.peer.health": "healthy"}) == 4
    other.cancel()
    assert hub.attached(PEERS) == 0


def test_before_collect_hooks_run_once_per_collection_before_any_metric(provider, reader):
    hub = InstrumentHub.for_provider(provider)
    order: list[str] = []
    hub.observe(PEERS, "a", lambda: order.append("read") or [({"p2p.peer.health": "healthy"}, 1)])
    registration = hub.before_collect("a", lambda: order.append("hook"))
    collect(reader)
    collect(reader)
    assert order == ["hook", "read", "hook", "read"]
    registration.cancel()
    collect(reader)
    assert order[-1] == "read" and order.count("hook") == 2


def test_a_failing_hook_breaks_no_metric(provider, reader):
    hub = InstrumentHub.for_provider(provider)
    hub.before_collect("a", lambda: 1 / 0)
    hub.observe(PEERS, "a", lambda: [({"p2p.peer.health": "healthy"}, 1)])
    assert collect(reader).value("p2p.peers", {"p2p.peer.health": "healthy"}) == 1


def test_one_hub_per_provider_kept_on_the_provider(provider):
    assert InstrumentHub.for_provider(provider) is InstrumentHub.for_provider(provider)


def test_the_meter_carries_the_semantic_convention_schema(provider, reader):
    from p2p_telemetry import MetricsCollector
    from p2p_telemetry.attributes import SCHEMA_URL

    MetricsCollector(provider, sample_resources=False).network.bytes_sent(1)
    scope = collect(reader).scopes[0]
    assert (scope.name, scope.schema_url) == ("p2p_telemetry", SCHEMA_URL)
    assert SCHEMA_URL.startswith("https://opentelemetry.io/schemas/1.")
