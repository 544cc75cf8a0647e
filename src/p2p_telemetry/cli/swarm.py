"""The demo swarm: an instrumented node and a few peers on 127.0.0.1, over real asyncio TCP connections.

Each peer is a small line-protocol server: ``<protocol> <kind> <padding>\\n`` is answered
with ``ok <kind>\\n``, and ``health ping\\n`` with ``pong\\n``. The node dials one connection per
peer and protocol (as libp2p opens one stream per protocol), sends messages of the four
protocols, and probes every peer's health through a fresh connection. One peer is flaky: it
answers, then answers slowly, then not at all, then recovers, on a fixed cycle, so its
health moves healthy -> degraded -> unhealthy -> healthy. Now and then the node dials a port
where nothing listens, and the dial fails with ``error.type=refused``.

The pieces serve ``p2p-telemetry fleet`` too: there each node process runs one ``DemoPeer``
(instrumented: its inbound connections count) and ``Traffic`` towards other nodes' listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..collector import MetricsCollector
from ..integrations.asyncio import open_connection, start_server

__all__ = ["DemoPeer", "FlakySchedule", "Remote", "Swarm", "Traffic", "peer_id", "ping", "PROTOCOLS"]

PROTOCOLS = ("task", "discovery", "resource", "health")
EVENTS = {"task": ("submitted", "completed"), "discovery": ("lookup", "found"),
          "resource": ("request", "granted"), "health": ("ping", "pong")}
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 0.5


@dataclass(frozen=True)
class FlakySchedule:
    """The flaky peer's cycle, in seconds from its start: answer, answer slowly, stay silent, recover."""

    answer: float = 4.0
    slow: float = 3.0
    silent: float = 7.0
    recover: float = 6.0
    slow_delay: float = 0.25

    def mode(self, elapsed: float) -> str:
        """``"ok"``, ``"slow"`` or ``"silent"`` at ``elapsed`` seconds into the run."""
        t = elapsed % (self.answer + self.slow + self.silent + self.recover)
        if t < self.answer:
            return "ok"
        if t < self.answer + self.slow:
            return "slow"
        return "silent" if t < self.answer + self.slow + self.silent else "ok"


@dataclass
class DemoPeer:
    """A line-protocol server on 127.0.0.1 with a libp2p-like id: a remote peer of the demo, or a fleet node's
    own listener (with ``collector``, its inbound connections and bytes are counted)."""

    peer_id: str
    schedule: FlakySchedule | None = None
    collector: MetricsCollector | None = None
    port: int = 0
    started: float = field(default_factory=time.monotonic)
    _server: asyncio.AbstractServer | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def mode(self) -> str:
        """How the peer behaves right now."""
        return self.schedule.mode(time.monotonic() - self.started) if self.schedule else "ok"

    async def start(self) -> None:
        if self.collector is not None:
            self._server = await start_server(self._handle, HOST, 0, collector=self.collector)
        else:
            self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while line := await reader.readline():
                mode = self.mode
                if mode == "silent":
                    continue
                if mode == "slow" and self.schedule is not None:
                    await asyncio.sleep(self.schedule.slow_delay)
                kind = line.split(b" ", 2)[1] if line.count(b" ") >= 1 else b"?"
                writer.write(b"pong\n" if line.startswith(b"health ping") else b"ok " + kind.strip() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)


async def ping(port: int, collector: MetricsCollector, timeout: float = REQUEST_TIMEOUT) -> float:
    """Round-trip time of one ``health ping`` on a fresh connection to the peer at ``port``; raises on failure.

    A ping left unanswered for ``timeout`` seconds counts as the ``health`` protocol's ``timeout`` event.
    """
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(open_connection(HOST, port, collector=collector, protocol="health"),
                                                timeout)
    except asyncio.TimeoutError:
        collector.protocols.increment("health", "timeout")
        raise
    try:
        writer.write(b"health ping\n")
        collector.protocols.increment("health", "ping")
        await writer.drain()
        try:
            reply = await asyncio.wait_for(reader.readline(), timeout - (time.perf_counter() - started))
        except asyncio.TimeoutError:
            collector.protocols.increment("health", "timeout")
            raise
        if reply != b"pong\n":
            raise ConnectionError(f"unexpected reply {reply[:20]!r}")
        collector.protocols.increment("health", "pong")
        return time.perf_counter() - started
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def closed_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def peer_id(rng: random.Random) -> str:
    """A libp2p-looking peer id."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return "12D3KooW" + "".join(rng.choice(alphabet) for _ in range(44))


@dataclass(frozen=True)
class Remote:
    """A peer the node dials: its id and the loopback port where it listens."""

    peer_id: str
    port: int


class Traffic:
    """The dialing side of a node: a connection per remote peer and protocol, messages, failed dials.

    The demo runs it against peers in its own process; each node of ``p2p-telemetry fleet`` runs it
    against the other nodes.
    """

    def __init__(self, collector: MetricsCollector, remotes: Sequence[Remote | DemoPeer], rng: random.Random, *,
                 message_interval: float | None = 0.05) -> None:
        self.collector = collector
        self.remotes = list(remotes)
        self.rng = rng
        self.message_interval = message_interval  # None: no messages (an idle node: health checks only)
        self._connections: dict[tuple[str, str], tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False

    def port_of(self, peer: str) -> int:
        """The port where peer ``peer`` listens."""
        return next(r.port for r in self.remotes if r.peer_id == peer)

    async def start(self) -> None:
        for remote in self.remotes:
            self.collector.peers.update(remote.peer_id, health="healthy", reputation=round(self.rng.uniform(0.6, 1), 2))
        for protocol in PROTOCOLS:  # every series from the start, so the set of series never grows
            for event in (*EVENTS[protocol], "timeout"):
                self.collector.protocols.increment(protocol, event, 0)
        self._running = True
        if self.message_interval is not None:
            self._tasks = [asyncio.create_task(self._messages(remote)) for remote in self.remotes]
            self._tasks.append(asyncio.create_task(self._failed_dials()))

    async def stop(self) -> None:
        self._running = False
        pending = set(self._tasks)
        while pending:  # 3.11's wait_for can swallow a cancellation that meets a result: cancel until done
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        self._tasks = []
        for _, writer in self._connections.values():
            writer.close()
        self._connections.clear()
        for remote in self.remotes:
            self.collector.peers.remove(remote.peer_id)

    async def _connection(self, remote: Remote | DemoPeer, protocol: str
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        key = (remote.peer_id, protocol)
        if key not in self._connections:
            self._connections[key] = await open_connection(HOST, remote.port, collector=self.collector,
                                                           protocol=protocol)
        return self._connections[key]

    async def _messages(self, remote: Remote | DemoPeer) -> None:
        """Messages of the protocols to one peer, forever; a request that times out drops the connection."""
        assert self.message_interval is not None
        events = self.collector.protocols
        while self._running:
            protocol = self.rng.choice(PROTOCOLS[:3])
            sent, answered = EVENTS[protocol]
            try:
                reader, writer = await self._connection(remote, protocol)
                writer.write(f"{protocol} {sent} {'x' * self.rng.randint(32, 2048)}\n".encode())
                events.increment(protocol, sent)
                await writer.drain()
                await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
                events.increment(protocol, answered)
            except (OSError, asyncio.TimeoutError):
                events.increment(protocol, "timeout")
                reader_writer = self._connections.pop((remote.peer_id, protocol), None)
                if reader_writer is not None:
                    reader_writer[1].close()
                await asyncio.sleep(REQUEST_TIMEOUT)
            await asyncio.sleep(self.rng.expovariate(1 / self.message_interval))

    async def _failed_dials(self) -> None:
        """Every few seconds, a dial to a port where nothing listens."""
        while self._running:
            await asyncio.sleep(self.rng.uniform(2, 6))
            with contextlib.suppress(OSError):
                _, writer = await open_connection(HOST, closed_port(), collector=self.collector, protocol="discovery")
                writer.close()


class Swarm:
    """The demo: N peers served in this process, and the node's traffic to them."""

    def __init__(self, collector: MetricsCollector, peers: int = 5, *, flaky: FlakySchedule | None = FlakySchedule(),
                 seed: int | None = None, message_interval: float = 0.05) -> None:
        self.collector = collector
        self.rng = random.Random(seed if seed is not None else secrets.randbits(32))
        self.peers = [DemoPeer(peer_id(self.rng), flaky if i == peers - 1 else None) for i in range(peers)]
        self.traffic = Traffic(collector, self.peers, self.rng, message_interval=message_interval)

    @property
    def flaky_peer(self) -> DemoPeer | None:
        """The peer whose health comes and goes."""
        return next((p for p in self.peers if p.schedule is not None), None)

    def port_of(self, peer: str) -> int:
        """The port where peer ``peer`` listens."""
        return self.traffic.port_of(peer)

    async def start(self) -> None:
        for peer in self.peers:
            await peer.start()
        await self.traffic.start()

    async def stop(self) -> None:
        await self.traffic.stop()
        for peer in self.peers:
            await peer.stop()
