"""``p2p-telemetry demo --libp2p``: the demo on real py-libp2p hosts: gossipsub, a Kademlia DHT, pings, identify.

One instrumented node and N peers, all py-libp2p hosts in this process on 127.0.0.1, each with a
gossipsub router and a Kademlia DHT server. The peers publish blocks on one topic and the node
transactions on another; the node stores and looks up values in the DHT; its health checker pings
every peer with py-libp2p's ping service. The live view adds pubsub and Kademlia lines to the
demo's; metrics are served and exported, and alerts evaluated, as in the plain demo.
"""

from __future__ import annotations

import random
import signal
import sys
from contextlib import AsyncExitStack
from typing import Any, TextIO

from ..alerting import AlertConfig, AlertmanagerSink, CallbackSink, default_rules, load_rules
from ..collector import MetricsCollector
from ..health import HealthChecker
from ..monitoring import MonitoringConfig, MonitoringSystem
from ..provider import setup_info
from .demo import DEMO_POLICY, DemoOptions
from .node import node_provider
from .view import LiveView

__all__ = ["run", "Libp2pView", "TOPICS"]

TOPICS = ("demo-blocks", "demo-transactions")
_LISTEN = "/ip4/127.0.0.1/tcp/0"


class Libp2pView(LiveView):
    """The demo's live view, with a line per pubsub topic and one for Kademlia."""

    def frame(self) -> list[str]:
        lines = super().frame()
        collector = self.collector
        extra: list[str] = []
        for topic, counts in sorted(collector.pubsub.snapshot().items()):
            extra.append(f"{'pubsub' if not extra else '':13}{topic + ':':19}"
                         + " ".join(f"{event}={counts.get(event, 0)}"
                                    for event in ("published", "received", "delivered", "duplicate", "rejected")))
        answered = " ".join(f"{t}={n}" for t, n in sorted(collector.kad.snapshot().items()) if n)
        asked = " ".join(f"{t}/{o}={n}" for (t, o), n in sorted(collector.kad.queries().items()))
        if answered or asked:
            extra.append(f"{'kademlia':13}answered {answered or '-'}   queries {asked or '-'}")
        at = next((i for i, line in enumerate(lines) if line.startswith("alerts now")), len(lines))
        return lines[:at] + extra + lines[at:]


def run(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the libp2p demo until ``options.duration`` passes, or Ctrl-C / SIGTERM; 0 on a clean stop."""
    import trio

    exporters = (["prometheus"] if options.prometheus else []) + (["otlp"] if options.otlp_endpoint else [])
    provider = node_provider("p2p-telemetry-demo-libp2p", exporters=exporters or ["none"],
                             otlp_endpoint=options.otlp_endpoint, otlp_protocol=options.otlp_protocol,
                             prometheus_host=options.prometheus_host, prometheus_port=options.prometheus_port,
                             export_interval=options.export_interval)
    collector = MetricsCollector(provider)
    info = setup_info(provider)
    where = [f"Prometheus: {info.prometheus_url}"] if info and info.prometheus_url else []
    where += [f"OTLP: {options.otlp_endpoint}"] if options.otlp_endpoint else []
    header = (f"p2p-telemetry demo --libp2p: 1 node + {options.peers} py-libp2p peers on 127.0.0.1   "
              + "   ".join(where))
    try:
        trio.run(_main, options, collector, provider, header, out)
    finally:
        provider.shutdown()  # type: ignore[attr-defined]
        out.write("p2p-telemetry demo: stopped\n")
        out.flush()
    return 0


async def _main(options: DemoOptions, collector: MetricsCollector, provider: Any, header: str, out: TextIO) -> None:
    import trio
    from libp2p import new_host
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from ..integrations.libp2p import Libp2pPingProbe, instrument_host

    rng = random.Random(options.seed)
    node, *peers = [new_host() for _ in range(options.peers + 1)]
    handle = instrument_host(node, collector)  # first: the node's router and DHT are found as they are made
    services = [_services(host) for host in (node, *peers)]
    view_box: list[LiveView] = []
    sinks: list[Any] = [CallbackSink(lambda alert: view_box[0].alert_event(alert) if view_box else None)]
    if options.alertmanager:
        sinks.append(AlertmanagerSink(options.alertmanager))
    rules = default_rules() + (load_rules(options.rules_file) if options.rules_file else [])
    async with AsyncExitStack() as stack:
        for pubsub, router, dht in services:
            for service in (pubsub, router, dht):
                await stack.enter_async_context(_background(service))
        for host in (node, *peers):
            await stack.enter_async_context(host.run([_multiaddr(_LISTEN)]))
        subscriptions = {topic: await services[0][0].subscribe(topic) for topic in TOPICS}
        for pubsub, _, _ in services[1:]:
            for topic in TOPICS:
                await pubsub.subscribe(topic)
        for i, peer in enumerate(peers):  # the node dials every peer; each peer its ring neighbour
            await node.connect(info_from_p2p_addr(peer.get_addrs()[0]))
            await peer.connect(info_from_p2p_addr(peers[(i + 1) % len(peers)].get_addrs()[0]))
        for host, (_, _, dht) in zip((node, *peers), services):
            for other in (node, *peers):
                if other is not host:
                    await dht.routing_table.add_peer(other.get_id())
        checker = HealthChecker(Libp2pPingProbe(node), DEMO_POLICY, timeout=2.0)  # rounds run in this trio loop
        config = MonitoringConfig(metrics_interval=1.0, alert_check_interval=options.alert_check_interval,
                                  alert_config=AlertConfig(rules=rules, sinks=sinks),
                                  health_check_interval=options.health_check_interval, health_checker=checker)
        monitoring = MonitoringSystem(config, metrics=collector, meter_provider=provider)
        view = Libp2pView(collector, out, header=header, alert_source=monitoring.alert_manager)
        view_box.append(view)
        if options.view:
            view.start()
        else:
            out.write(header + "\n")
            out.flush()
        monitoring.start()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signals, nursery.cancel_scope)
                for subscription in subscriptions.values():
                    nursery.start_soon(_drain, subscription)
                nursery.start_soon(_traffic, services, rng)
                deadline = trio.current_time() + (options.duration if options.duration is not None else float("inf"))
                while trio.current_time() < deadline:
                    if options.view:
                        view.refresh()
                    await trio.sleep(min(1.0, max(0.0, deadline - trio.current_time())))
                nursery.cancel_scope.cancel()
        finally:
            if options.view:
                view.stop()
            await trio.to_thread.run_sync(monitoring.stop)
            handle.close()


def _services(host: Any) -> tuple[Any, Any, Any]:
    from libp2p.custom_types import TProtocol
    from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.records.validator import Validator

    class Anything(Validator):
        def validate(self, key: str, value: bytes) -> None:
            if not value:
                raise ValueError("empty value")

        def select(self, key: str, values: list[bytes]) -> int:
            return 0

    router = GossipSub(protocols=[TProtocol("/meshsub/1.1.0")], degree=3, degree_low=2, degree_high=4,
                       heartbeat_interval=1, eclipse_protection_enabled=False)  # every peer on one IP: loopback
    dht = KadDHT(host, DHTMode.SERVER)
    dht.register_validator("demo", Anything())
    return Pubsub(host, router), router, dht


async def _traffic(services: list[tuple[Any, Any, Any]], rng: random.Random) -> None:
    """Peers publish blocks, the node transactions; the node stores and looks up values; peers look them up."""
    import trio

    node_pubsub, _, node_dht = services[0]
    for tick in range(10**9):
        pubsub, _, dht = rng.choice(services[1:])
        await pubsub.publish(TOPICS[0], b"block %d " % tick + bytes(rng.randrange(64, 2048)))
        if tick % 5 == 0:
            await node_pubsub.publish(TOPICS[1], b"tx %d" % tick)
        if tick % 10 == 0:
            key = f"/demo/{tick // 10 % 20}"
            await node_dht.put_value(key, b"value %d" % tick)
            await dht.get_value(f"/demo/peer-{tick}")  # not stored anywhere: the node answers GET_VALUE
            await node_dht.get_value(key)
        await trio.sleep(rng.uniform(0.05, 0.35))


async def _drain(subscription: Any) -> None:
    while True:
        await subscription.get()


async def _stop_on_signals(scope: Any) -> None:
    import trio

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _background(service: Any) -> Any:
    from libp2p.tools.anyio_service import background_trio_service

    return background_trio_service(service)


def _multiaddr(text: str) -> Any:
    import multiaddr

    return multiaddr.Multiaddr(text)
