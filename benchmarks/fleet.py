"""A fleet of N nodes on this machine: series per node, one scrape's time, CPU and RSS per node idle and under the
demo's traffic, and the central Prometheus's series and ingestion with two agents remote-writing to it.

Run: python -m benchmarks.fleet [--nodes 50] [--seconds 60]   (about 3 minutes with 50 nodes; bounded)

Two runs of ``p2p-telemetry fleet --nodes N`` (as a user starts it, nodes as processes):

- idle (``--idle``): no messages, health pings of 4 peers each second, resource sampling and alert
  checks each second;
- the demo's traffic (``--message-interval 0.05``): a message every 50 ms on average to each of the 4
  peers, as the demo sends to each of its peers, so each node also answers 4 peers' messages; failed
  dials every 2-6 s; health pings as above.

In each run, after a warm-up, every node's CPU time (user + system, psutil) over the window and its RSS
at the end; every node's /metrics scraped 3 times (series = sample lines; time = the whole HTTP GET).
During the traffic run two Prometheus agents (collector-config/prometheus-agent.yml, shards 0 and 1,
scrape interval 15 s as shipped) remote-write to a central Prometheus (prometheus-central.yml, with the
rule file) whose own figures are read from its /metrics: ``prometheus_tsdb_head_series`` and the rate
of ``prometheus_tsdb_head_samples_appended_total``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

CONFIG = Path(__file__).resolve().parents[1] / "collector-config"
MiB = 1 << 20


@dataclass
class NodeFigures:
    """One fleet run's per-node figures."""

    label: str
    nodes: int
    cpu_share: list[float]  # of one core, per node
    rss: list[int]  # bytes, per node
    series: list[int]  # per node
    scrape_ms: list[float]  # every scrape of every node
    events_per_second: list[float]  # protocol events (messages sent and answered, pings, pongs) per node

    def summary(self) -> dict[str, float]:
        cpu = sorted(self.cpu_share)
        return {"cpu_mean": statistics.mean(cpu), "cpu_max": cpu[-1], "cpu_total": sum(cpu),
                "rss_mean": statistics.mean(self.rss) / MiB, "rss_max": max(self.rss) / MiB,
                "series_max": max(self.series), "series_min": min(self.series),
                "scrape_median": statistics.median(self.scrape_ms), "scrape_min": min(self.scrape_ms),
                "scrape_p99": sorted(self.scrape_ms)[int(0.99 * (len(self.scrape_ms) - 1))],
                "events_mean": statistics.mean(self.events_per_second)}


@dataclass
class CentralFigures:
    """The central Prometheus fed by two agents."""

    head_series: float
    samples_per_second: float
    node_series: float  # series of the p2p-node job among them
    nodes_seen: float


def _get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(address: str) -> tuple[int, float]:
    started = time.perf_counter()
    text = _get(f"http://{address}/metrics").decode()
    elapsed = time.perf_counter() - started
    return sum(1 for line in text.splitlines() if line and not line.startswith("#")), elapsed * 1000


def _events(address: str) -> float:
    text = _get(f"http://{address}/metrics").decode()
    lines = text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("p2p_protocol_events_total"))


class _Prometheus:
    """A Prometheus child process (agent or server) on a free loopback port, stopped by PID."""

    def __init__(self, workdir: Path, config: dict[str, Any], *, agent: bool = False, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        storage = ([f"--storage.agent.path={workdir / 'data'}", "--enable-feature=agent"] if agent
                   else [f"--storage.tsdb.path={workdir / 'data'}", "--web.enable-remote-write-receiver"])
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen([binary, f"--config.file={workdir / 'prometheus.yml'}", *storage,
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: _get(f"{self.url}/-/ready"), 30, "prometheus ready")

    def own(self, name: str) -> float:
        for line in _get(f"{self.url}/metrics").decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    def query(self, promql: str) -> float:
        reply = json.loads(_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
        result = reply["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _central_and_agents(workdir: Path, targets_file: Path) -> list[_Prometheus]:
    rules = workdir / "p2p-alerts.rules.yml"
    shutil.copy(CONFIG / "p2p-alerts.rules.yml", rules)
    port = _free_port()
    central_config = yaml.safe_load((CONFIG / "prometheus-central.yml").read_text())
    central_config["rule_files"] = [str(rules)]
    central_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{_free_port()}"]
    central_config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
    started = [_Prometheus(workdir / "central", central_config, port=port)]
    try:
        for shard in ("0", "1"):
            config = yaml.safe_load((CONFIG / "prometheus-agent.yml").read_text())
            config["scrape_configs"][0]["file_sd_configs"][0]["files"] = [str(targets_file)]
            config["scrape_configs"][0]["relabel_configs"][1]["regex"] = shard
            config["remote_write"][0]["url"] = f"{started[0].url}/api/v1/write"
            started.append(_Prometheus(workdir / f"agent-{shard}", config, agent=True))
    except BaseException:
        for prometheus in started:
            prometheus.stop()
        raise
    return started


def run_fleet(nodes: int, seconds: float, traffic: bool, with_central: bool = False
              ) -> tuple[NodeFigures, CentralFigures | None]:
    """One fleet run (idle or with the demo's traffic); ``with_central`` adds the agents and central Prometheus."""
    workdir = Path(tempfile.mkdtemp(prefix="p2p-fleet-bench-"))
    targets_file = workdir / "targets.json"
    command = [str(Path(sys.executable).parent / "p2p-telemetry"), "fleet", "--nodes", str(nodes), "--base-port", "0",
               "--file-sd", str(targets_file), "--no-view", "--seed", "1",
               *(["--message-interval", "0.05"] if traffic else ["--idle"])]
    fleet = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    prometheus: list[_Prometheus] = []
    try:
        _wait(lambda: targets_file.exists() or fleet.poll() is not None, 180, "the fleet's target file")
        if fleet.poll() is not None:
            raise RuntimeError(f"the fleet exited ({fleet.returncode})")
        (group,) = json.loads(targets_file.read_text())
        addresses = list(group["targets"])
        processes = [psutil.Process(p.pid) for p in psutil.Process(fleet.pid).children(recursive=True)]
        if with_central:
            prometheus = _central_and_agents(workdir, targets_file)
        time.sleep(15.0)  # warm-up: connections open, first health rounds, the flaky cycle under way
        events_before = [_events(a) for a in addresses]
        before = {p.pid: p.cpu_times() for p in processes}
        central_before = (time.monotonic(), prometheus[0].own("prometheus_tsdb_head_samples_appended_total")
                          ) if prometheus else None
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu = [(p.cpu_times().user + p.cpu_times().system - before[p.pid].user - before[p.pid].system) / elapsed
               for p in processes]
        rss = [p.memory_info().rss for p in processes]
        events = [(_events(a) - b) / elapsed for a, b in zip(addresses, events_before, strict=True)]
        central = None
        if prometheus and central_before is not None:
            appended = prometheus[0].own("prometheus_tsdb_head_samples_appended_total") - central_before[1]
            central = CentralFigures(
                head_series=prometheus[0].own("prometheus_tsdb_head_series"),
                samples_per_second=appended / (time.monotonic() - central_before[0]),
                node_series=prometheus[0].query('count({job="p2p-node"})'),
                nodes_seen=prometheus[0].query("count(count by (service_instance_id) (target_info))"))
        series: list[int] = []
        scrape_ms: list[float] = []
        for round_ in range(3):
            for address in addresses:
                count, ms = _scrape(address)
                scrape_ms.append(ms)
                if round_ == 0:
                    series.append(count)
        label = "demo's traffic" if traffic else "idle"
        return NodeFigures(label, nodes, cpu, rss, series, scrape_ms, events), central
    finally:
        for p in prometheus:
            p.stop()
        if fleet.poll() is None:
            os.kill(fleet.pid, signal.SIGTERM)
        fleet.wait(60)
        shutil.rmtree(workdir, ignore_errors=True)


def measure(nodes: int = 50, seconds: float = 60.0) -> tuple[NodeFigures, NodeFigures, CentralFigures]:
    """The idle run, then the traffic run with the agents and the central Prometheus."""
    idle, _ = run_fleet(nodes, seconds, traffic=False)
    busy, central = run_fleet(nodes, seconds, traffic=True, with_central=True)
    assert central is not None
    return idle, busy, central


def rows(idle: NodeFigures, busy: NodeFigures, central: CentralFigures) -> list[tuple[str, str, str]]:
    """The figures as rows of the benchmark table."""
    out = []
    for run in (idle, busy):
        s = run.summary()
        out.append((f"fleet of {run.nodes}, {run.label}: CPU per node", f"{s['cpu_mean']:.1%} of a core",
                    f"max {s['cpu_max']:.1%}; all nodes {s['cpu_total']:.2f} cores; {s['events_mean']:.0f} events/s"))
        out.append((f"fleet of {run.nodes}, {run.label}: RSS per node", f"{s['rss_mean']:.1f} MiB",
                    f"max {s['rss_max']:.1f} MiB"))
        out.append((f"fleet of {run.nodes}, {run.label}: one scrape", f"{s['scrape_median']:.1f} ms median",
                    f"min {s['scrape_min']:.1f} ms, p99 {s['scrape_p99']:.1f} ms"))
    s = busy.summary()
    out.append((f"fleet of {busy.nodes}: series per node", f"{s['series_max']:.0f} max",
                f"min {s['series_min']:.0f}; target <= 200"))
    out.append(("central Prometheus (2 agents, 15 s scrapes)", f"{central.head_series:.0f} series",
                f"{central.samples_per_second:.0f} samples/s; {central.node_series:.0f} node series "
                f"from {central.nodes_seen:.0f} nodes"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    idle, busy, central = measure(args.nodes, args.seconds)
    from benchmarks._timing import table
    figures: list[tuple[str, ...]] = list(rows(idle, busy, central))
    print(table(figures, ("measurement", "figure", "context")))


if __name__ == "__main__":
    main()
