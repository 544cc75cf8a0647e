"""``p2p-telemetry fleet``: N instrumented nodes as processes on 127.0.0.1, peers of each other, for Prometheus.

Each node (``fleet_node``) serves Prometheus on its own port with its own ``service.instance.id``
(``node-1`` ... ``node-N``), listens for peers and dials its ring neighbours, which dial it back.
The fleet writes a Prometheus ``file_sd`` target file, shows one line per node, and on its way
out (``--duration``, Ctrl-C, SIGTERM) stops every node, kills one that does not stop, and reaps
them all. A node also stops by itself when the fleet's end of its standard input closes, so not
even a fleet killed outright leaves nodes behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .fleet_node import NodeSettings
from .screen import Screen
from .view import rate

__all__ = ["DEFAULT_FILE_SD", "FleetOptions", "dial_plan", "run"]

DEFAULT_FILE_SD = str(Path(tempfile.gettempdir()) / "p2p-telemetry-fleet" / "targets.json")
READY_TIMEOUT = 120.0  # 50 nodes start in ~10 s on 2 cores; leave room for a busy machine
STOP_TIMEOUT = 15.0  # a node's clean stop is bounded by its health checks (< 2 s) and its provider's shutdown
PIPE_FRAME_EVERY = 10.0  # on a pipe, a summary every 10 s (and one at the end); every second on a terminal


@dataclass
class FleetOptions:
    """What ``p2p-telemetry fleet`` was asked to do (see ``--help``)."""

    nodes: int = 10
    base_port: int = 9464
    prometheus_host: str = "127.0.0.1"
    file_sd: str = DEFAULT_FILE_SD
    duration: float | None = None
    peers_per_node: int = 4
    flaky_every: int = 10
    message_interval: float = 0.2
    idle: bool = False
    traffic_seconds: float | None = None
    health_check_interval: float = 1.0
    alert_check_interval: float = 1.0
    alertmanager: str | None = None
    view: bool = True
    seed: int | None = None


def dial_plan(nodes: int, peers_per_node: int) -> list[list[int]]:
    """For each node (0-based), the nodes it dials: its ring neighbours on both sides, who dial it back.

    Every node has ``min(peers_per_node, nodes - 1)`` peers (rounded up to an even number below a
    full mesh), each of them both an outbound and an inbound connection.
    """
    if nodes - 1 <= peers_per_node:
        return [[j for j in range(nodes) if j != i] for i in range(nodes)]
    half = (peers_per_node + 1) // 2
    return [sorted({(i + d) % nodes for d in range(1, half + 1)} | {(i - d) % nodes for d in range(1, half + 1)})
            for i in range(nodes)]


def is_flaky(index: int, nodes: int, every: int) -> bool:
    """Whether node ``index`` (1-based) has the demo's flaky listener: node-N, node-(N-every), ..."""
    return every > 0 and (nodes - index) % every == 0


@dataclass
class _Node:
    index: int
    settings: NodeSettings
    process: asyncio.subprocess.Process | None = None
    ready: dict[str, Any] | None = None
    error: str | None = None
    status: dict[str, Any] | None = None
    last: tuple[float, int, int] | None = None  # (time, bytes sent, bytes received) of the previous status
    rates: tuple[float, float] = (0.0, 0.0)
    lines: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode


def _node_settings(options: FleetOptions, index: int, seed: int) -> NodeSettings:
    return NodeSettings(name=f"node-{index}", prometheus_port=options.base_port + index - 1 if options.base_port else 0,
                        prometheus_host=options.prometheus_host,
                        flaky=is_flaky(index, options.nodes, options.flaky_every), seed=seed * 1000 + index,
                        message_interval=None if options.idle else options.message_interval,
                        traffic_seconds=options.traffic_seconds, health_check_interval=options.health_check_interval,
                        alert_check_interval=options.alert_check_interval, alertmanager=options.alertmanager)


def _environment(node: NodeSettings) -> dict[str, str]:
    """The node's environment: its identity in ``OTEL_RESOURCE_ATTRIBUTES`` (beside any the user set)."""
    env = dict(os.environ)
    own = f"service.instance.id={node.name}"
    inherited = [item for item in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
                 if item.strip() and not item.strip().startswith("service.instance.id=")]
    env["OTEL_RESOURCE_ATTRIBUTES"] = ",".join([*inherited, own])
    env.pop("OTEL_SERVICE_NAME", None)  # the fleet names its nodes' service
    return env


async def _spawn(node: _Node) -> None:
    node.process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "p2p_telemetry.cli.fleet_node", node.settings.to_json(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=_environment(node.settings))


async def _read(node: _Node) -> None:
    """The node's messages, until it closes its standard output."""
    assert node.process is not None and node.process.stdout is not None
    while line := await node.process.stdout.readline():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if "status" in message:
                _note_status(node, message["status"])
            else:
                await node.lines.put(message)
    await node.lines.put(None)


def _note_status(node: _Node, status: dict[str, Any]) -> None:
    now = status["time"]
    if node.last is not None and now > node.last[0]:
        elapsed = now - node.last[0]
        node.rates = ((status["bytes_sent"] - node.last[1]) / elapsed,
                      (status["bytes_received"] - node.last[2]) / elapsed)
    node.last = (now, status["bytes_sent"], status["bytes_received"])
    node.status = status


def write_file_sd(path: str, nodes: list[_Node]) -> None:
    """The Prometheus ``file_sd`` target file: every node's metrics endpoint, written atomically."""
    targets = [node.ready["metrics"].split("//", 1)[1].split("/", 1)[0] for node in nodes if node.ready]
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".targets-", suffix=".json", delete=False) as tmp:
        json.dump([{"targets": targets}], tmp, indent=1)  # no label: a target also listed elsewhere is scraped once
    os.replace(tmp.name, path)


def _per_second(value: float) -> str:
    """Bytes per second in 7 columns: B, K (KiB) or M (MiB)."""
    return rate(value, ("B", "K", "M"), width=6)


COLUMNS = (f"{'node':9} {'port':>5} {'peers':>5} {'ok':>3} {'deg':>3} {'unh':>3}  {'out/s':>7} {'in/s':>7} "
           f"{'conns':>5} {'fails':>5} {'tmout':>5}  alerts")


def summary(nodes: list[_Node]) -> list[str]:
    """The fleet's totals, a column header, then one line per node (70 columns before its alerts)."""
    up = [n for n in nodes if n.returncode is None and n.status is not None]
    peers = {state: sum(n.status["peers"][state] for n in up if n.status) for state in ("healthy", "degraded",
                                                                                          "unhealthy")}
    alerting = sum(1 for n in up if n.status and n.status["alerts"])
    lines = [f"fleet: {len(up)}/{len(nodes)} nodes up, peers {peers['healthy']} ok {peers['degraded']} degraded "
             f"{peers['unhealthy']} unhealthy, out {_per_second(sum(n.rates[0] for n in up)).strip()}/s "
             f"in {_per_second(sum(n.rates[1] for n in up)).strip()}/s, {alerting} nodes alerting", COLUMNS]
    for node in nodes:
        port = node.ready["metrics"].rsplit(":", 1)[1].split("/")[0] if node.ready else "?"
        s = node.status
        if node.returncode is not None:
            lines.append(f"{node.name:9} {port:>5}  exited ({node.returncode})")
        elif s is None:
            lines.append(f"{node.name:9} {port:>5}  starting")
        else:
            p = s["peers"]
            alerts = ",".join(s["alerts"]) or "-"
            lines.append(f"{node.name:9} {port:>5} {p['total']:5} {p['healthy']:3} {p['degraded']:3} "
                         f"{p['unhealthy']:3}  {_per_second(node.rates[0])} {_per_second(node.rates[1])} "
                         f"{s['connections']:5} {s['failures']:5} {s['timeouts']:5}  {alerts}"
                         + ("" if s["traffic"] else " (traffic stopped)"))
    return lines


async def _next_message(node: _Node, timeout: float) -> dict[str, Any] | None:
    return await asyncio.wait_for(node.lines.get(), timeout)


async def _run(options: FleetOptions, out: TextIO, stop: asyncio.Event) -> int:
    seed = options.seed if options.seed is not None else int(time.time())
    nodes = [_Node(i, _node_settings(options, i, seed)) for i in range(1, options.nodes + 1)]
    readers: list[asyncio.Task[None]] = []
    plan = dial_plan(options.nodes, options.peers_per_node)
    header = (f"p2p-telemetry fleet: {options.nodes} nodes on {options.prometheus_host}, "
              f"{len(plan[0])} peers each; file_sd {options.file_sd}")
    screen = Screen(out, header) if options.view else None
    wrote_file_sd = False
    try:
        for node in nodes:
            await _spawn(node)
            readers.append(asyncio.create_task(_read(node)))
            if stop.is_set():
                return 0
        deadline = time.monotonic() + READY_TIMEOUT
        for node in nodes:
            message = await _until(stop, _next_message(node, max(0.1, deadline - time.monotonic())))
            if stop.is_set():
                return 0
            if not message or "ready" not in message:
                error = (message or {}).get("error") or (
                    f"{node.name} was not ready after {READY_TIMEOUT:g} s" if node.returncode is None
                    else f"{node.name} exited ({node.returncode}) before it was ready")
                print(f"p2p-telemetry fleet: {error}", file=sys.stderr)
                return 2
            node.ready = message["ready"]
        for node, dials in zip(nodes, plan, strict=True):
            remotes = [{"peer_id": nodes[j].ready["peer_id"], "port": nodes[j].ready["port"]}  # type: ignore[index]
                       for j in dials]
            _tell(node, json.dumps({"dial": remotes}))
        write_file_sd(options.file_sd, nodes)
        wrote_file_sd = True
        first, last = nodes[0].ready["metrics"], nodes[-1].ready["metrics"]  # type: ignore[index]
        header += f"\nPrometheus: {first} ... {last}; Ctrl-C stops the fleet"
        if screen is not None:
            screen.header = header
            screen.start()
        else:
            out.write(header + "\n")
            out.flush()
        await _watch(options, nodes, screen, stop)
        return 0
    finally:
        last_frame = summary(nodes) if any(n.status for n in nodes) else []
        if screen is not None:
            screen.stop()
        await _stop_all(nodes)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        if wrote_file_sd:
            with contextlib.suppress(OSError):
                os.remove(options.file_sd)
        if screen is not None and not screen.tty and last_frame:
            out.write("\n".join(last_frame) + "\n")  # the last figures (a terminal still shows its last frame)
        out.write(f"p2p-telemetry fleet: stopped {len(nodes)} nodes\n")
        out.flush()


async def _until(stop: asyncio.Event, awaitable: Any) -> Any:
    """``awaitable``'s result, or None as soon as ``stop`` is set."""
    task = asyncio.ensure_future(awaitable)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        return None
    with contextlib.suppress(asyncio.TimeoutError):
        return task.result()
    return None


async def _watch(options: FleetOptions, nodes: list[_Node], screen: Screen | None, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if options.duration is None else loop.time() + options.duration
    every = 1.0 if screen is None or screen.tty else PIPE_FRAME_EVERY
    next_frame = loop.time() + (1.0 if every > 1 else 0)
    while not stop.is_set():
        now = loop.time()
        if screen is not None and now >= next_frame:
            screen.draw(summary(nodes))
            next_frame = now + every
        if deadline is not None and now >= deadline:
            return
        wait = min(1.0, next_frame - now, (deadline - now) if deadline is not None else 1.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.05, wait))


def _tell(node: _Node, line: str) -> None:
    process = node.process
    if process is not None and process.stdin is not None and not process.stdin.is_closing():
        with contextlib.suppress(OSError, RuntimeError):
            process.stdin.write(line.encode() + b"\n")


async def _stop_all(nodes: list[_Node]) -> None:
    """Tell every node to stop, wait (bounded), kill the ones still running, and reap them all."""
    running = [n for n in nodes if n.process is not None]
    for node in running:
        _tell(node, "stop")
        assert node.process is not None and node.process.stdin is not None
        with contextlib.suppress(OSError, RuntimeError):
            node.process.stdin.close()

    async def reap(node: _Node) -> None:
        assert node.process is not None
        try:
            await asyncio.wait_for(node.process.wait(), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                node.process.kill()
            await node.process.wait()

    await asyncio.shield(asyncio.gather(*(reap(n) for n in running)))


def run(options: FleetOptions, out: TextIO = sys.stdout) -> int:
    """Run the fleet until ``options.duration`` passes, or Ctrl-C / SIGTERM; 0 on a clean stop."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await _run(options, out, stop)

    return asyncio.run(main())
