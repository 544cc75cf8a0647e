"""Health checker: the policy's schedule against a real TCP peer that stops answering, timeouts, alerting."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import anyio
import pytest

from conftest import collect
from p2p_telemetry import (
    AlertConfig,
    AlertType,
    HealthChecker,
    HealthPolicy,
    HealthStatus,
    MonitoringConfig,
    MonitoringSystem,
    tcp_connect_probe,
)
from realstack import wait_for

HEALTHY, DEGRADED, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY
POLICY = HealthPolicy(latency_threshold=0.5, failures_to_unhealthy=3, successes_to_recover=2)


class Listener:
    """A real TCP listener on 127.0.0.1 that can stop answering (closed: connect refused) and come back."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.port = 0
        self.up()

    def up(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)  # connects complete in the kernel's backlog: nobody needs to accept
        self.port = self.sock.getsockname()[1]

    def down(self) -> None:
        assert self.sock is not None
        self.sock.close()


def latency_count(exported) -> int:
    return sum(p.count for p in exported["p2p.peer.latency"].points)



def test_policy_schedule_on_a_peer_that_stops_answering(collector, reader):
    listener, steady = Listener(), Listener()
    addresses = {"flaky": ("127.0.0.1", listener.port), "steady": ("127.0.0.1", steady.port)}
    checker = HealthChecker(tcp_connect_probe(addresses), POLICY, timeout=1.0)
    collector.peers.update("flaky")
    collector.peers.update("steady")
    seen = []

    def round_() -> HealthStatus:
        anyio.run(checker.check_once, collector)
        seen.append(collector.peers.get("flaky").health_status)
        assert collector.peers.get("steady").health_status is HEALTHY
        return seen[-1]

    assert round_() is HEALTHY
    listener.down()
    assert [round_() for _ in range(4)] == [DEGRADED, DEGRADED, UNHEALTHY, UNHEALTHY]
    assert "refused" in collector.peers.get("flaky").reason
    listener.up()
    assert [round_() for _ in range(3)] == [DEGRADED, HEALTHY, HEALTHY]
    exported = collect(reader)
    assert latency_count(exported) == 2 * 8 - 4  # every answered probe is one sample; 4 were refused
    assert exported.value("p2p.peers", {"p2p.peer.health": "healthy"}) == 2
    listener.down(), steady.down()


def test_slow_answer_degrades_and_hanging_probes_are_cut(collector):
    release = threading.Event()

    def sync_probe(peer: str) -> float:
        if peer == "hangs-sync":
            release.wait(10)
        return {"slow": 0.9}.get(peer, 0.01)

    async def async_probe(peer: str) -> float:
        if peer == "hangs-async":
            await anyio.sleep_forever()
        return 0.01

    for peer in ("fast", "slow", "hangs-sync"):
        collector.peers.update(peer)
    checker = HealthChecker(sync_probe, POLICY, timeout=0.3, max_in_flight=4)
    started = time.monotonic()
    result = anyio.run(checker.check_once, collector)
    assert time.monotonic() - started < 1.5
    assert result == {"fast": HEALTHY, "slow": DEGRADED, "hangs-sync": DEGRADED}
    assert "timed out" in collector.peers.get("hangs-sync").reason
    release.set()

    collector.peers.remove("hangs-sync")
    collector.peers.update("hangs-async")
    checker = HealthChecker(async_probe, POLICY, timeout=0.3)
    started = time.monotonic()
    result = asyncio.run(checker.check_once(collector))  # the same round on a plain asyncio loop
    assert time.monotonic() - started < 1.5
    assert result["hangs-async"] is DEGRADED and result["fast"] is HEALTHY


def test_policy_rejects_bad_settings():
    with pytest.raises(ValueError, match="failures_to_unhealthy"):
        HealthPolicy(failures_to_unhealthy=0)
    with pytest.raises(ValueError, match="latency_threshold"):
        HealthPolicy(latency_threshold=float("nan"))
    with pytest.raises(ValueError, match="timeout"):
        HealthChecker(lambda p: 0.0, timeout=0)


def test_monitoring_runs_checks_and_unhealthy_peers_fires_then_resolves(provider):
    listener = Listener()
    checker = HealthChecker(tcp_connect_probe({"peer-1": ("127.0.0.1", listener.port)}),
                            HealthPolicy(failures_to_unhealthy=2, successes_to_recover=1), timeout=0.5)
    config = MonitoringConfig(alert_check_interval=0.1, health_check_interval=0.1, health_checker=checker,
                              sample_resources=False, alert_config=AlertConfig())
    with MonitoringSystem(config, meter_provider=provider) as monitoring:
        monitoring.metrics.peers.update("peer-1")
        alerts = monitoring.alert_manager
        wait_for(lambda: checker.rounds >= 2, 5, "health rounds")
        assert not alerts.has_alert(AlertType.UNHEALTHY_PEERS)
        listener.down()
        wait_for(lambda: monitoring.metrics.peer_counts()["unhealthy"] == 1, 5, "peer unhealthy")
        wait_for(lambda: alerts.has_alert(AlertType.UNHEALTHY_PEERS), 5, "UnhealthyPeers firing")
        listener.up()
        wait_for(lambda: monitoring.metrics.peer_counts()["healthy"] == 1, 5, "peer recovered")
        wait_for(lambda: not alerts.has_alert(AlertType.UNHEALTHY_PEERS), 5, "UnhealthyPeers resolved")
    listener.down()
