"""Health checks (the seed's ``start_health_checks``): probe the peers in the table, feed ``p2p.peer.latency``,
and turn the results into each peer's health by a documented policy.

A probe is a callable ``probe(peer_id) -> rtt_seconds``, sync or async, that raises when the peer
does not answer. Each round probes every peer of the table concurrently, at most
``max_in_flight`` at a time, each cut at ``timeout`` seconds (a hanging probe counts as a failure
and never holds up the others). Async probes run on whatever event loop runs the round, through
anyio: asyncio, or trio for py-libp2p. Sync probes run in worker threads; one that hangs is
abandoned at its timeout, and while ``max_in_flight`` sync probes are still running (hung ones
included) further sync probes count as failed instead of starting threads without bound.

Three ways to run it:

- ``MonitoringSystem(MonitoringConfig(health_checker=checker))`` calls ``checker.start(collector,
  interval)``: a background thread runs a round every ``interval`` seconds on a fresh asyncio
  loop, or, when the checker has a ``trio_token`` (a libp2p probe made inside ``trio.run`` carries
  one), inside that trio loop through ``trio.from_thread.run``.
- ``await checker.run(collector, interval)`` inside the node's own loop (e.g. in its nursery).
- ``await checker.check_once(collector)`` for one round.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .bounds import duration
from .collector import MetricsCollector
from .groups.network import error_type
from .model import HealthStatus

if TYPE_CHECKING:  # at run time, module __getattr__ below imports it on first use
    from .integrations.libp2p.ping import Libp2pPingProbe

__all__ = ["HealthPolicy", "HealthChecker", "Probe", "tcp_connect_probe", "Libp2pPingProbe"]

logger = logging.getLogger("p2p_telemetry")

Probe = Callable[[str], float | Awaitable[float]]


@dataclass(frozen=True)
class HealthPolicy:
    """How probe results become health.

    - An answer within ``latency_threshold`` seconds is fast; a slower one makes the peer degraded.
    - A failed probe (it raised, or ran past its timeout) makes the peer degraded, and unhealthy
      once ``failures_to_unhealthy`` probes in a row have failed.
    - A peer that is not healthy turns healthy again after ``successes_to_recover`` fast answers in
      a row; until then an answer moves an unhealthy peer to degraded.
    """

    latency_threshold: float = 0.5
    failures_to_unhealthy: int = 3
    successes_to_recover: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency_threshold", duration("latency_threshold", self.latency_threshold))
        for name in ("failures_to_unhealthy", "successes_to_recover"):
            value = getattr(self, name)
            if value.__class__ is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    def judge(self, state: PeerRecord, rtt: float | None) -> HealthStatus:
        """Update ``state`` with one result (``rtt`` None for a failure) and return the peer's new health."""
        if rtt is None:
            state.failures += 1
            state.successes = 0
            unhealthy = state.failures >= self.failures_to_unhealthy or state.health is HealthStatus.UNHEALTHY
            state.health = HealthStatus.UNHEALTHY if unhealthy else HealthStatus.DEGRADED
        elif rtt > self.latency_threshold:
            state.failures = state.successes = 0
            state.health = HealthStatus.DEGRADED
        else:
            state.failures = 0
            state.successes += 1
            recovered = state.health is HealthStatus.HEALTHY or state.successes >= self.successes_to_recover
            state.health = HealthStatus.HEALTHY if recovered else HealthStatus.DEGRADED
        return state.health


@dataclass
class PeerRecord:
    """What the checker remembers of one peer between rounds."""

    health: HealthStatus = HealthStatus.HEALTHY
    failures: int = 0
    successes: int = 0


def _is_async(probe: Any) -> bool:
    # a coroutine function, or an object whose __call__ is one (Libp2pPingProbe)
    return inspect.iscoroutinefunction(probe) or inspect.iscoroutinefunction(type(probe).__call__)


def _valid_rtt(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


class HealthChecker:
    """Runs ``probe`` over the peer table at an interval and keeps each peer's health and latency current."""

    def __init__(self, probe: Probe, policy: HealthPolicy | None = None, *, timeout: float = 2.0,
                 max_in_flight: int = 16, trio_token: Any = None) -> None:
        if not callable(probe):
            raise ValueError(f"probe must be callable, got {probe!r}")
        timeout = duration("timeout", timeout)
        if max_in_flight.__class__ is not int or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be an int >= 1, got {max_in_flight!r}")
        self.probe = probe
        self.policy = policy if policy is not None else HealthPolicy()
        self.timeout = float(timeout)
        self.max_in_flight = max_in_flight
        self.trio_token = trio_token if trio_token is not None else getattr(probe, "trio_token", None)
        self.rounds = 0
        self._async = _is_async(probe)
        self._records: dict[str, PeerRecord] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._threads = 0  # sync probes still running, abandoned ones included

    # -- one round --------------------------------------------------------------------------------

    async def check_once(self, collector: MetricsCollector) -> dict[str, HealthStatus]:
        """Probe every peer in the table once, concurrently; returns the health each probed peer now has."""
        peers = collector.peers.ids()
        live = set(peers)
        for gone in [peer for peer in self._records if peer not in live]:
            del self._records[gone]  # memory follows the table
        results: dict[str, HealthStatus] = {}
        limiter = anyio.CapacityLimiter(self.max_in_flight)
        async with anyio.create_task_group() as group:
            for peer_id in peers:
                group.start_soon(self._check_peer, collector, peer_id, limiter, results)
        self.rounds += 1
        return results

    async def _check_peer(self, collector: MetricsCollector, peer_id: str, limiter: anyio.CapacityLimiter,
                          results: dict[str, HealthStatus]) -> None:
        async with limiter:
            rtt, reason = await self._measure(peer_id)
        if peer_id not in collector.peers:
            return  # it left during the round: do not bring it back
        record = self._records.get(peer_id)
        if record is None:
            current = collector.peers.get(peer_id)
            record = self._records[peer_id] = PeerRecord(current.health_status if current else HealthStatus.HEALTHY)
        health = self.policy.judge(record, rtt)
        collector.peers.update(peer_id, health=health, latency=rtt, reason=reason)
        results[peer_id] = health

    async def _measure(self, peer_id: str) -> tuple[float | None, str | None]:
        try:
            with anyio.fail_after(self.timeout):
                if self._async:
                    value = await self.probe(peer_id)  # type: ignore[misc]
                else:
                    with self._lock:
                        if self._threads >= self.max_in_flight:
                            return None, "probe not run: earlier probes still hang"
                        self._threads += 1
                    value = await anyio.to_thread.run_sync(self._call_sync, peer_id, abandon_on_cancel=True)
        except TimeoutError:
            return None, f"probe timed out after {self.timeout:g}s"
        except Exception as error:
            return None, f"probe failed: {error_type(error)}"
        rtt = _valid_rtt(value)
        return (rtt, None) if rtt is not None else (None, "probe returned no round-trip time")

    def _call_sync(self, peer_id: str) -> Any:
        try:
            return self.probe(peer_id)
        finally:
            with self._lock:
                self._threads -= 1

    # -- running it -------------------------------------------------------------------------------

    async def run(self, collector: MetricsCollector, interval: float) -> None:
        """Run a round every ``interval`` seconds inside the current event loop (asyncio or trio), until cancelled."""
        while True:
            started = time.monotonic()
            await self._guarded_round(collector)
            await anyio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _guarded_round(self, collector: MetricsCollector) -> None:
        try:
            await self.check_once(collector)
        except Exception:
            logger.exception("p2p-telemetry: a health-check round failed")

    def check_now(self, collector: MetricsCollector) -> None:
        """Run one round from a thread that is not an event loop's, the way the background thread does."""
        if self.trio_token is not None:
            import trio
            trio.from_thread.run(self._guarded_round, collector, trio_token=self.trio_token)
        else:
            anyio.run(self._guarded_round, collector)

    def start(self, collector: MetricsCollector, interval: float) -> None:
        """Run rounds every ``interval`` seconds in a background thread (``MonitoringSystem.start`` calls this)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(collector, float(interval)),
                                        name="p2p-telemetry-health", daemon=True)
        self._thread.start()

    def _loop(self, collector: MetricsCollector, interval: float) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.check_now(collector)
            except Exception as error:  # the node's trio loop has ended, for one
                logger.warning("p2p-telemetry: health checks stopped: %r", error)
                return
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def stop(self) -> None:
        """Stop the background thread, waiting for a round in progress (bounded by the probes' timeout)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if self.trio_token is not None and _current_trio_token() is self.trio_token:
            return  # called from the loop the rounds run in: joining would wait for that loop itself
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout * 2 + 5)

    def __repr__(self) -> str:
        return f"<HealthChecker probe={self.probe!r} policy={self.policy} rounds={self.rounds}>"


def tcp_connect_probe(addresses: Mapping[str, tuple[str, int]] | Callable[[str], tuple[str, int]]) -> Probe:
    """A probe timing a TCP connect to each peer's ``(host, port)``, from a mapping or a lookup function."""
    lookup = addresses.__getitem__ if isinstance(addresses, Mapping) else addresses

    async def tcp_connect(peer_id: str) -> float:
        host, port = lookup(peer_id)
        started = time.perf_counter()
        stream = await anyio.connect_tcp(host, port)
        rtt = time.perf_counter() - started
        await stream.aclose()
        return rtt

    return tcp_connect


def _current_trio_token() -> Any:
    try:
        import trio
        return trio.lowlevel.current_trio_token()
    except Exception:
        return None


def __getattr__(name: str) -> Any:
    # Libp2pPingProbe lives beside the other py-libp2p code; imported on first use, so that a node
    # without py-libp2p never imports it.
    if name == "Libp2pPingProbe":
        from .integrations.libp2p.ping import Libp2pPingProbe

        return Libp2pPingProbe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
