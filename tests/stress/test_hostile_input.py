"""Hostile and bad input: every public record method, called with anything, never raises; every
dropped measurement is counted by reason; the exported totals are those of the valid calls alone."""

from __future__ import annotations

import math
from collections import Counter as Tally
from collections.abc import Hashable
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import collect
from p2p_telemetry import HealthStatus, MetricsCollector, NetworkMetrics, PeerStats, ResourceMetrics

MAX = 2**63 - 1
PROTOCOLS = ("task", "discovery", "resource", "health", "other", "/ipfs/ping/1.0.0")
TRANSPORTS = ("tcp", "udp", "quic", "unix", "pipe", "other")
DIRECTIONS = ("inbound", "outbound", "unknown")
HEALTH = ("healthy", "degraded", "unhealthy")
EVENT_LIMIT = 4

junk = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, 1, MAX, MAX + 1, -1, 2**30, 2**62]),
    st.text(max_size=20), st.text(min_size=200, max_size=300), st.binary(max_size=10),
    st.just("\udcff\ud800"), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers()),
)
counts = st.one_of(st.integers(min_value=0, max_value=10_000), junk)
names = st.one_of(st.sampled_from(PROTOCOLS + TRANSPORTS + DIRECTIONS + HEALTH + ("timeout", "refused")), junk)
seconds = st.one_of(st.floats(min_value=0, max_value=100), st.integers(min_value=0, max_value=100), junk)


def count_reason(n: Any) -> str | None:
    if type(n) is not int:
        return "type"
    return "range" if not 0 <= n <= MAX else None


def seconds_reason(x: Any) -> str | None:
    if type(x) not in (int, float):
        return "type"
    return None if 0 <= x < math.inf else "range"


def ratio_reason(x: Any) -> str | None:
    if type(x) not in (int, float):
        return "type"
    return None if 0 <= x <= 1 else "range"


def fold(value: Any, allowed: tuple, default: str = "other") -> str:
    return value if type(value) is str and value in allowed else default


def clean(value: Any) -> bool:
    if type(value) is not str or not 0 < len(value) <= 128 or not value.isprintable():
        return False
    try:
        value.encode()
        return True
    except UnicodeEncodeError:
        return False


class Model:
    """What the exported metrics must say: the valid calls alone, and the drops by reason."""

    def __init__(self) -> None:
        self.io: Tally = Tally()
        self.attempts: Tally = Tally()
        self.failures: Tally = Tally()
        self.active: Tally = Tally()
        self.events: Tally = Tally()
        self.event_names: dict[str, list[str]] = {}
        self.rejected: Tally = Tally()
        self.peers: dict[str, str] = {}
        self.latency: Tally = Tally()
        self.setups = 0
        self.resources: dict[str, float] = {}

    def add(self, tally: Tally, key: tuple, n: Any) -> None:
        reason = count_reason(n)
        if reason is None and tally[key] + n > MAX:
            reason = "overflow"
        if reason:
            self.rejected[reason] += 1
        else:
            tally[key] += n

    def event_name(self, protocol: str, event: Any) -> str:
        known = self.event_names.setdefault(protocol, [])
        if type(event) is str and event in known:
            return event
        if clean(event) and len(known) < EVENT_LIMIT:
            known.append(event)
            return event
        return "other"


class HostileNode(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.collector = MetricsCollector(self.provider, sample_resources=False, protocols=["/ipfs/ping/1.0.0"],
                                          max_event_names=EVENT_LIMIT)
        self.model = Model()

    def teardown(self) -> None:
        self.provider.shutdown()

    # -- network --------------------------------------------------------------------------------

    @rule(n=counts, protocol=names, transport=names, sent=st.booleans(), bound=st.booleans())
    def bytes(self, n, protocol, transport, sent, bound):
        net = self.collector.network
        if bound:
            (net.sent if sent else net.received)(protocol, transport).add(n)
        else:
            (net.bytes_sent if sent else net.bytes_received)(n, protocol=protocol, transport=transport)
        key = ("transmit" if sent else "receive", fold(protocol, PROTOCOLS), fold(transport, TRANSPORTS))
        self.model.add(self.model.io, key, n)

    @rule(direction=names, transport=names, error=st.one_of(names, st.sampled_from(
        [TimeoutError(), ConnectionRefusedError(), ValueError("x")])), duration=st.one_of(st.none(), seconds),
        what=st.sampled_from(["attempt", "open", "close", "fail", "setup", "connecting", "connecting_fails"]))
    def connection(self, direction, transport, error, duration, what):
        net, model = self.collector.network, self.model
        pair = (fold(direction, DIRECTIONS, "unknown"), fold(transport, TRANSPORTS))
        if what == "attempt":
            net.connection_attempted(direction, transport)
            model.add(model.attempts, pair, 1)
        elif what == "open":
            net.connection_opened(direction, transport)
            model.active[pair] += 1
        elif what == "close":
            net.connection_closed(direction, transport, duration=duration)
            if model.active[pair] > 0:
                model.active[pair] -= 1
            else:
                model.rejected["unbalanced"] += 1
            if duration is not None and seconds_reason(duration):
                model.rejected[seconds_reason(duration)] += 1
        elif what == "fail":
            net.connection_failed(error, direction, transport)
            from p2p_telemetry import error_type
            model.add(model.failures, (*pair, error_type(error)), 1)
        elif what == "setup":
            net.connection_setup(duration, direction, transport)
            reason = seconds_reason(duration)
            if reason:
                model.rejected[reason] += 1
            else:
                model.setups += 1
        else:
            try:
                with net.connecting(direction, transport):
                    if what == "connecting_fails":
                        raise ConnectionResetError
            except ConnectionResetError:
                pass
            model.add(model.attempts, pair, 1)
            if what == "connecting_fails":
                model.add(model.failures, (*pair, "reset"), 1)
            else:
                model.active[pair] += 1
                model.setups += 1

    @rule(m=st.builds(NetworkMetrics, bytes_sent=counts, bytes_received=counts, active_connections=counts,
                      connection_attempts=counts, connection_failures=counts,
                      avg_connection_latency=st.one_of(st.none(), seconds)))
    def seed_network(self, m):
        self.collector.record_network_metrics(m)
        model, pair = self.model, ("unknown", "other")
        model.add(model.io, ("transmit", "other", "other"), m.bytes_sent)
        model.add(model.io, ("receive", "other", "other"), m.bytes_received)
        reason = count_reason(m.active_connections)
        if reason:
            model.rejected[reason] += 1
        else:
            model.active[pair] = m.active_connections
        model.add(model.attempts, pair, m.connection_attempts)
        model.add(model.failures, (*pair, "other"), m.connection_failures)
        if m.avg_connection_latency is not None:
            reason = seconds_reason(m.avg_connection_latency)
            if reason:
                model.rejected[reason] += 1
            else:
                model.setups += 1

    # -- protocols ------------------------------------------------------------------------------

    @rule(protocol=names, event=names, n=counts, seed=st.booleans())
    def protocol_event(self, protocol, event, n, seed):
        if seed and isinstance(event, Hashable):
            self.collector.record_protocol_metrics(protocol, {event: n})
        else:
            self.collector.protocols.increment(protocol, event, n)
        name = fold(protocol, PROTOCOLS)
        self.model.add(self.model.events, (name, self.model.event_name(name, event)), n)

    @rule(events=junk)
    def protocol_junk_mapping(self, events):
        self.collector.record_protocol_metrics("task", events)
        if isinstance(events, dict):
            for event, n in events.items():
                self.model.add(self.model.events, ("task", self.model.event_name("task", event)), n)
        else:
            self.model.rejected["type"] += 1

    # -- peers ----------------------------------------------------------------------------------

    @rule(peer_id=st.one_of(st.sampled_from(["p1", "p2", "p3", "12D3KooWx"]), junk),
          health=st.one_of(st.none(), st.sampled_from(list(HealthStatus)), names),
          latency=st.one_of(st.none(), seconds), reputation=st.one_of(st.none(), st.floats(0, 1), junk),
          reason=st.one_of(st.none(), st.text(max_size=5), junk), seed=st.booleans())
    def peer(self, peer_id, health, latency, reputation, reason, seed):
        if seed:
            self.collector.record_peer_metrics(peer_id, PeerStats(health, latency, reputation, reason))
        else:
            self.collector.peers.update(peer_id, health=health, latency=latency, reputation=reputation,
                                        reason=reason)
        model = self.model
        new_health = None
        if health is not None:
            if isinstance(health, str) and health in HEALTH:
                new_health = str(health)
            else:
                model.rejected["range" if isinstance(health, str) else "type"] += 1
        if latency is not None and seconds_reason(latency):
            model.rejected[seconds_reason(latency)] += 1
            latency = None
        if reputation is not None and ratio_reason(reputation):
            model.rejected[ratio_reason(reputation)] += 1
        if reason is not None and (type(reason) is not str or len(reason) > 256):
            model.rejected["type"] += 1
        if not (type(peer_id) is str and peer_id in model.peers):
            if not (type(peer_id) is str and 0 < len(peer_id) <= 256
                    and (peer_id.isascii() or clean(peer_id[:128]) and peer_id.isprintable())):
                model.rejected["peer_id"] += 1
                return
            model.peers[peer_id] = "healthy"
        if new_health:
            model.peers[peer_id] = new_health
        if latency is not None:
            model.latency[model.peers[peer_id]] += 1

    @rule(peer_id=st.one_of(st.sampled_from(["p1", "p2", "12D3KooWx"]), junk))
    def remove(self, peer_id):
        self.collector.peers.remove(peer_id)
        if type(peer_id) is str:
            self.model.peers.pop(peer_id, None)

    # -- resources ------------------------------------------------------------------------------

    @rule(m=st.builds(ResourceMetrics, cpu_usage=st.one_of(st.none(), st.floats(0, 100), junk),
                      memory_usage=st.one_of(st.none(), counts), bandwidth_usage=st.one_of(st.none(), seconds),
                      storage_usage=st.one_of(st.none(), counts)))
    def resources(self, m):
        self.collector.record_resource_metrics(m)
        model = self.model
        for field, value, reason_of, key in (
                ("cpu", m.cpu_usage, seconds_reason, "p2p.node.cpu.utilization"),
                ("memory", m.memory_usage, count_reason, "p2p.node.memory.usage"),
                ("bandwidth", m.bandwidth_usage, seconds_reason, "bandwidth"),
                ("storage", m.storage_usage, count_reason, "p2p.node.storage.usage")):
            if value is None:
                continue
            reason = reason_of(value) or ("range" if field == "cpu" and value > 100 else None)
            if reason:
                model.rejected[reason] += 1
            else:
                model.resources[key] = value / 100 if field == "cpu" else value

    # -- what was exported ----------------------------------------------------------------------

    @invariant()
    def exported_equals_the_valid_calls(self):
        exported, model = collect(self.reader), self.model

        def sums(name: str, keys: tuple[str, ...]) -> dict:
            if name not in exported:
                return {}
            return {tuple(p.attributes[k] for k in keys): p.value for p in exported[name].points if p.value}

        assert sums("p2p.network.io", ("network.io.direction", "p2p.protocol", "network.transport")) == {
            k: v for k, v in model.io.items() if v}
        pair = ("p2p.connection.direction", "network.transport")
        assert sums("p2p.connection.attempts", pair) == {k: v for k, v in model.attempts.items() if v}
        assert sums("p2p.connection.failures", (*pair, "error.type")) == {
            k: v for k, v in model.failures.items() if v}
        assert sums("p2p.connection.active", pair) == {k: v for k, v in model.active.items() if v}
        assert sums("p2p.protocol.events", ("p2p.protocol", "p2p.protocol.event")) == {
            k: v for k, v in model.events.items() if v}
        assert sums("p2p.telemetry.rejected", ("reason",)) == {(k,): v for k, v in model.rejected.items() if v}
        health = Tally(model.peers.values())
        assert sums("p2p.peers", ("p2p.peer.health",)) == {(h,): n for h, n in health.items() if n}
        latency = {p.attributes["p2p.peer.health"]: p.count for p in exported["p2p.peer.latency"].points} \
            if "p2p.peer.latency" in exported else {}
        assert {h: n for h, n in latency.items() if n} == {h: n for h, n in model.latency.items() if n}
        setups = sum(p.count for p in exported["p2p.connection.setup.duration"].points) \
            if "p2p.connection.setup.duration" in exported else 0
        assert setups == model.setups
        for name in ("p2p.node.cpu.utilization", "p2p.node.memory.usage", "p2p.node.storage.usage"):
            if name in model.resources:
                assert exported.value(name) == model.resources[name]
            else:
                assert name not in exported


TestHostileNode = HostileNode.TestCase
TestHostileNode.settings = settings(max_examples=300, stateful_step_count=40, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
