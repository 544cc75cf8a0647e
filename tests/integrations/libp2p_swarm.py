"""Real py-libp2p swarms on 127.0.0.1 for the libp2p tests: hosts, gossipsub, Kademlia, and waiting on conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.records.validator import Validator
from libp2p.tools.anyio_service import background_trio_service

TCP = "/ip4/127.0.0.1/tcp/0"
WS = "/ip4/127.0.0.1/tcp/0/ws"
QUIC = "/ip4/127.0.0.1/udp/0/quic-v1"
GOSSIPSUB = "/meshsub/1.1.0"


def listen(address: str = TCP) -> list[multiaddr.Multiaddr]:
    return [multiaddr.Multiaddr(address)]


async def until(check: Callable[[], Any], seconds: float = 15.0, what: str = "a condition") -> None:
    """Wait until ``check()`` holds, at most ``seconds``: for conditions over state that signals no event
    (metric totals, a router's mesh), re-checked every 10 ms; never a fixed sleep standing in for a condition."""
    with trio.move_on_after(seconds) as scope:
        while not check():  # noqa: ASYNC110 - nothing to wait on but the condition itself
            await trio.sleep(0.01)
    assert not scope.cancelled_caught, f"timed out after {seconds}s waiting for {what}"


async def connect(a: Any, b: Any) -> None:
    """``a`` dials ``b`` (its first address)."""
    await a.connect(info_from_p2p_addr(b.get_addrs()[0]))


class AcceptAll(Validator):  # type: ignore[misc]
    """Values under ``/test/``: any non-empty value, the first one wins."""

    def validate(self, key: str, value: bytes) -> None:
        if not value:
            raise ValueError("empty value")

    def select(self, key: str, values: list[bytes]) -> int:
        return 0


def gossipsub() -> GossipSub:
    """A gossipsub router for a handful of nodes: every peer in the mesh, no rate limit on publishing."""
    return GossipSub(protocols=[GOSSIPSUB], degree=3, degree_low=2, degree_high=4, heartbeat_initial_delay=0.1,
                     heartbeat_interval=1, spam_protection_enabled=False, eclipse_protection_enabled=False,
                     adaptive_gossip_enabled=False)


class OwnMethodsPubsub(Pubsub):
    """A pubsub whose three per-message methods are not py-libp2p's code: the hooks must wrap them."""

    def _is_subscribed_to_msg(self, msg):
        return super()._is_subscribed_to_msg(msg)

    def _is_msg_seen(self, msg):
        return super()._is_msg_seen(msg)

    def notify_subscriptions(self, publish_message):
        super().notify_subscriptions(publish_message)


@dataclass
class Node:
    host: Any
    pubsub: Any = None
    router: Any = None
    dht: Any = None
    subscriptions: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> Any:
        return self.host.get_id()


@asynccontextmanager
async def running(hosts: list[Any], address: str = TCP, *, pubsub: bool = False, pubsub_class: type = Pubsub,
                  dht: DHTMode | None = None) -> AsyncIterator[list[Node]]:
    """Run ``hosts`` (listening on ``address``), each with a gossipsub ``Pubsub`` (of ``pubsub_class``) and/or a
    ``KadDHT`` if asked."""
    nodes = [Node(host) for host in hosts]
    async with AsyncExitStack() as stack:
        for node in nodes:
            if pubsub:
                node.router = gossipsub()
                node.pubsub = pubsub_class(node.host, node.router, strict_signing=True)
            if dht is not None:
                node.dht = KadDHT(node.host, dht)
                node.dht.register_validator("test", AcceptAll())
        # Services first, hosts last: on the way out the hosts stop (and their stream handlers with them)
        # before the services whose tasks those handlers start.
        for node in nodes:
            if node.pubsub is not None:
                await stack.enter_async_context(background_trio_service(node.pubsub))
                await stack.enter_async_context(background_trio_service(node.router))
            if node.dht is not None:
                await stack.enter_async_context(background_trio_service(node.dht))
        for node in nodes:
            await stack.enter_async_context(node.host.run(listen(address)))
        for node in nodes:
            if node.pubsub is not None:
                await node.pubsub.wait_until_ready()
        yield nodes


def new_hosts(n: int, **kwargs: Any) -> list[Any]:
    return [new_host(**kwargs) for _ in range(n)]


@dataclass
class Telemetry:
    """One host's own collector, on its own provider, read through an InMemoryMetricReader."""

    reader: Any
    provider: Any
    collector: Any

    @classmethod
    def new(cls, **kwargs: Any) -> Telemetry:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from p2p_telemetry import MetricsCollector

        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        return cls(reader, provider, MetricsCollector(provider, sample_resources=False, **kwargs))

    def collect(self) -> Any:
        from conftest import collect

        return collect(self.reader)

    def shutdown(self) -> None:
        self.provider.shutdown()


def instrumented(hosts: list[Any], **kwargs: Any) -> tuple[list[Telemetry], list[Any]]:
    """A Telemetry and an ``instrument_host`` handle per host."""
    from p2p_telemetry.integrations.libp2p import instrument_host

    telemetry = [Telemetry.new() for _ in hosts]
    return telemetry, [instrument_host(host, t.collector, **kwargs) for host, t in zip(hosts, telemetry)]


def values(metric: Any, key: str) -> dict[str, Any]:
    """``{value of attribute key: point value}`` of one exported metric."""
    return {point.attributes[key]: point.value for point in metric.points}
