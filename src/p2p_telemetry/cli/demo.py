"""``p2p-telemetry demo``: the swarm, the monitoring system, the exporters and the live view, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from ..alerting import AlertmanagerSink, CallbackSink, default_rules, load_rules
from ..provider import setup_info
from .node import DEMO_POLICY, node_monitoring, node_provider
from .swarm import Swarm
from .view import LiveView

__all__ = ["DEMO_POLICY", "DemoOptions", "run"]

logger = logging.getLogger("p2p_telemetry")


@dataclass
class DemoOptions:
    """What ``p2p-telemetry demo`` was asked to do (see ``--help``)."""

    peers: int = 5
    duration: float | None = None
    prometheus: bool = True
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    otlp_endpoint: str | None = None
    otlp_protocol: str | None = None
    export_interval: float = 5.0
    alertmanager: str | None = None
    alert_check_interval: float = 1.0
    health_check_interval: float = 1.0
    rules_file: str | None = None
    view: bool = True
    seed: int | None = None


def _exporters(options: DemoOptions) -> list[str]:
    exporters = (["prometheus"] if options.prometheus else []) + (["otlp"] if options.otlp_endpoint else [])
    return exporters or ["none"]


def run(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo until ``options.duration`` passes, or Ctrl-C / SIGTERM; 0 on a clean stop."""
    with _stop_on_signals() as stopping:
        return _run(options, out, stopping)


class _Stopping:
    """Set by SIGINT or SIGTERM at any point of the run, before, during or after the event loop."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._wake: Callable[[], object] | None = None

    def request(self, *_: object) -> None:
        self.requested.set()
        if self._wake is not None:
            self._wake()

    def wake_with(self, wake: Callable[[], object] | None) -> None:
        self._wake = wake


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_Stopping]:
    stopping = _Stopping()
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, stopping.request) for sig in signals}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(options: DemoOptions, out: TextIO, stopping: _Stopping) -> int:
    provider = node_provider("p2p-telemetry-demo", exporters=_exporters(options),
                             otlp_endpoint=options.otlp_endpoint, otlp_protocol=options.otlp_protocol,
                             prometheus_host=options.prometheus_host, prometheus_port=options.prometheus_port,
                             export_interval=options.export_interval)
    rules = default_rules() + (load_rules(options.rules_file) if options.rules_file else [])
    view_box: list[LiveView] = []
    sinks: list[Any] = [CallbackSink(lambda alert: view_box[0].alert_event(alert) if view_box else None)]
    if options.alertmanager:
        sinks.append(AlertmanagerSink(options.alertmanager))
    swarm_box: list[Swarm] = []
    monitoring = node_monitoring(provider, lambda peer: swarm_box[0].port_of(peer), rules=rules, sinks=sinks,
                                 alert_check_interval=options.alert_check_interval,
                                 health_check_interval=options.health_check_interval)
    info = setup_info(provider)
    where = [f"Prometheus: {info.prometheus_url}"] if info and info.prometheus_url else []
    where += [f"OTLP ({info.otlp_protocol}): {options.otlp_endpoint}"] if info and options.otlp_endpoint else []
    where += [f"Alertmanager: {options.alertmanager}"] if options.alertmanager else []
    header = f"p2p-telemetry demo: 1 node + {options.peers} peers on 127.0.0.1   " + "   ".join(where)
    view = LiveView(monitoring.metrics, out, header=header, alert_source=monitoring.alert_manager)
    view_box.append(view)
    swarm = Swarm(monitoring.metrics, options.peers, seed=options.seed)
    swarm_box.append(swarm)
    if options.view:
        view.start()  # the header: heading each frame on a terminal, once on a pipe
    else:
        out.write(header + "\n")
        out.flush()
    try:
        monitoring.start()
        if not stopping.requested.is_set():
            asyncio.run(_run_swarm(swarm, view if options.view else None, options.duration, stopping))
    finally:
        if options.view:
            view.stop()
        monitoring.stop()
        provider.shutdown()  # type: ignore[attr-defined]
        out.write("p2p-telemetry demo: stopped\n")
        out.flush()
    return 0


async def _run_swarm(swarm: Swarm, view: LiveView | None, duration: float | None, stopping: _Stopping) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopping.wake_with(lambda: loop.call_soon_threadsafe(stop.set))
    if stopping.requested.is_set():
        stop.set()
    deadline = None if duration is None else loop.time() + duration
    await swarm.start()
    try:
        while not stop.is_set():
            if view is not None:
                view.refresh()
            wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
            if wait <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
    finally:
        stopping.wake_with(None)
        await swarm.stop()
