"""One node of ``p2p-telemetry fleet``, run as its own process by the fleet (not a command of its own).

``python -m p2p_telemetry.cli.fleet_node SETTINGS_JSON``. The node talks to the fleet over its
standard streams, one JSON object a line:

- it writes ``{"ready": {...}}`` once it serves Prometheus and listens for peers (or ``{"error": "..."}``
  and exits 2), then reads ``{"dial": [{"peer_id": ..., "port": ...}, ...]}``: the nodes it dials;
- it writes ``{"status": {...}}`` every ``status_interval`` seconds;
- it stops on ``stop``, on the end of its standard input (so a fleet that dies, however it dies,
  takes its nodes with it), and on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..alerting import AlertmanagerSink, default_rules
from ..monitoring import MonitoringSystem
from ..provider import setup_info
from .node import node_monitoring, node_provider
from .swarm import DemoPeer, FlakySchedule, Remote, Traffic, peer_id

__all__ = ["NodeSettings", "main"]

SERVICE_NAME = "p2p-telemetry-fleet"


@dataclass
class NodeSettings:
    """What one fleet node is told by the fleet."""

    name: str
    prometheus_port: int
    prometheus_host: str = "127.0.0.1"
    flaky: bool = False
    seed: int = 0
    message_interval: float | None = 0.2  # None: no messages, only health pings
    traffic_seconds: float | None = None  # stop all traffic (messages, dials, pings) after this long
    health_check_interval: float = 1.0
    alert_check_interval: float = 1.0
    status_interval: float = 1.0
    alertmanager: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def status(name: str, monitoring: MonitoringSystem, traffic_on: bool) -> dict[str, Any]:
    """The node's figures for the fleet's one-line summary."""
    collector = monitoring.metrics
    net = collector.network_snapshot()
    events = collector.protocols.snapshot()
    return {"name": name, "time": time.time(), "peers": collector.peer_counts(),
            "bytes_sent": net.bytes_sent, "bytes_received": net.bytes_received,
            "connections": net.active_connections, "attempts": net.connection_attempts,
            "failures": net.connection_failures,
            "events": sum(sum(counts.values()) for counts in events.values()),
            "timeouts": sum(counts.get("timeout", 0) for counts in events.values()),
            "alerts": sorted(a.name for a in monitoring.alert_manager.active_alerts()), "traffic": traffic_on}


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_node(settings: NodeSettings) -> int:
    """Serve one node until told to stop; 0 on a clean stop, 2 if it could not start."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(settings.seed)
    try:
        provider = node_provider(SERVICE_NAME, settings.name, exporters=["prometheus"],
                                 prometheus_host=settings.prometheus_host, prometheus_port=settings.prometheus_port)
    except (ValueError, OSError) as error:
        _emit({"error": f"{settings.name}: {error}"})
        return 2
    traffic_box: list[Traffic] = []
    sinks = [AlertmanagerSink(settings.alertmanager)] if settings.alertmanager else []
    monitoring = node_monitoring(provider, lambda peer: traffic_box[0].port_of(peer), rules=default_rules(),
                                 sinks=sinks, alert_check_interval=settings.alert_check_interval,
                                 health_check_interval=settings.health_check_interval)
    listener = DemoPeer(peer_id(rng), FlakySchedule() if settings.flaky else None, collector=monitoring.metrics)
    commands = await _stdin_lines()
    traffic_on = False
    try:
        await listener.start()
        info = setup_info(provider)
        _emit({"ready": {"name": settings.name, "peer_id": listener.peer_id, "port": listener.port,
                         "metrics": info.prometheus_url if info else None, "flaky": settings.flaky}})
        line = await commands.readline()
        if not line.startswith(b"{"):
            return 0  # stopped (or the fleet went away) before the nodes were wired up
        remotes = [Remote(r["peer_id"], int(r["port"])) for r in json.loads(line)["dial"]]
        traffic = Traffic(monitoring.metrics, remotes, rng, message_interval=settings.message_interval)
        traffic_box.append(traffic)
        monitoring.start()
        await traffic.start()
        traffic_on = True
        quiet_at = None if settings.traffic_seconds is None else loop.time() + settings.traffic_seconds
        told = asyncio.ensure_future(commands.readline())  # "stop", or b"" when the fleet's end of the pipe closes
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not (told.done() or stopped.done()):
                if quiet_at is not None and traffic_on and loop.time() >= quiet_at:
                    await _quiesce(traffic, monitoring)
                    traffic_on = False
                _emit({"status": status(settings.name, monitoring, traffic_on)})
                await asyncio.wait({told, stopped}, timeout=settings.status_interval)
        finally:
            for pending in (told, stopped):
                pending.cancel()
        if traffic_on:
            await traffic.stop()
        return 0
    except (BrokenPipeError, ConnectionError):
        return 0  # the fleet is gone
    finally:
        monitoring.stop()
        await listener.stop()
        provider.shutdown()  # type: ignore[attr-defined]


async def _quiesce(traffic: Traffic, monitoring: MonitoringSystem) -> None:
    """End the traffic but keep the peers in the table: from now on every counter of the node stays as it is."""
    if monitoring.health_checker is not None:
        await asyncio.to_thread(monitoring.health_checker.stop)
    remotes, traffic.remotes = traffic.remotes, []  # stop() would remove them from the peer table
    await traffic.stop()
    traffic.remotes = remotes


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = NodeSettings(**json.loads(args[0]))
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_node(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
