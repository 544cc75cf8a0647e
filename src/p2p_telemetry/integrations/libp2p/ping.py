"""Ping round trips: each one py-libp2p's ping service measures is one ``p2p.peer.latency`` sample, once.

py-libp2p measures every ping round trip in one function, ``libp2p.host.ping._ping`` (its
``PingService`` and the connection health monitor's probe both call it). It is hooked
process-wide and timed here in seconds (py-libp2p itself keeps whole milliseconds only). On an
instrumented host each round trip counts ``pong`` (or ``ping_failure``) in ``p2p.protocol.events``
of ``/ipfs/ping/1.0.0`` and is one latency sample of its peer, whoever asked for the ping: the
node's own ``PingService.ping``, the host's ping events (that py-libp2p's metrics read), the
connection health monitor, or ``Libp2pPingProbe``. The probe's round trips are the exception that
keeps it once: a ``HealthChecker`` records the RTT the probe returns, so the hook leaves those to it.

Importing this module does not import py-libp2p (``p2p_telemetry.Libp2pPingProbe`` is imported by
every node).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Any

from .patches import Patch, install

__all__ = ["Libp2pPingProbe", "PING_PROTOCOL", "PATCHES"]

PING_PROTOCOL = "/ipfs/ping/1.0.0"


class _ProbeRound:
    __slots__ = ("rtt",)

    def __init__(self) -> None:
        self.rtt: float | None = None


_PROBE: contextvars.ContextVar[_ProbeRound | None] = contextvars.ContextVar("p2p_telemetry_ping_probe",
                                                                           default=None)


def _timed(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _ping(stream: Any, *args: Any, **kwargs: Any) -> Any:
        books = getattr(stream, "_p2p_telemetry", None)
        started = time.perf_counter()
        try:
            rtt_ms = await original(stream, *args, **kwargs)
        except Exception:
            if books is not None and not books.owner.closed:
                books.owner.ping_measured(stream, None, latency=False)
            raise
        seconds = time.perf_counter() - started
        probe = _PROBE.get()
        if probe is not None:
            probe.rtt = seconds  # the health checker records it, from the probe's answer
        if books is not None and not books.owner.closed:
            try:
                books.owner.ping_measured(stream, seconds, latency=probe is None)
            except Exception:
                pass
        return rtt_ms
    return _ping


PATCHES = (Patch("libp2p.host.ping", "_ping", _timed),)


def _current_trio_token() -> Any:
    try:
        import trio
        return trio.lowlevel.current_trio_token()
    except Exception:
        return None


class Libp2pPingProbe:
    """A health-check probe pinging a peer with py-libp2p's ``PingService`` (``/ipfs/ping/1.0.0``), once per call.

    Returns the round trip in seconds, as the ping hook times it (the ping itself, not the opening
    of its stream). Made inside ``trio.run``, it carries that loop's ``trio_token`` so that a
    ``HealthChecker`` started from ``MonitoringSystem`` runs its rounds in the host's loop.
    """

    def __init__(self, host: Any, trio_token: Any = None) -> None:
        from libp2p.host.ping import PingService

        install(PATCHES)
        self._service = PingService(host)
        self.trio_token = trio_token if trio_token is not None else _current_trio_token()

    async def __call__(self, peer_id: str) -> float:
        from libp2p.peer.id import ID

        round_ = _ProbeRound()
        token = _PROBE.set(round_)
        started = time.perf_counter()
        try:
            await self._service.ping(ID.from_base58(peer_id), 1)
        finally:
            _PROBE.reset(token)
        return round_.rtt if round_.rtt is not None else time.perf_counter() - started
