"""``p2p-telemetry fleet`` for real: node processes that are peers of each other, a real Prometheus reading the
fleet's file_sd file, two Prometheus agents remote-writing to a central Prometheus (the shipped configs), the
dashboards' queries against them, and no process left behind however the fleet ends."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_collector_config import as_query, dashboard_panels

from realstack import Alertmanager, Prometheus, free_port, http_get, http_json, port_open, wait_for

CONFIG = Path(__file__).resolve().parents[2] / "collector-config"
COMMAND = str(Path(sys.executable).parent / "p2p-telemetry")
pytestmark = pytest.mark.integration


def hashmod(address: str, modulus: int) -> int:
    """Prometheus's ``hashmod`` relabelling of one value: the last 8 bytes of its MD5, big-endian, modulo."""
    return int.from_bytes(hashlib.md5(address.encode()).digest()[8:], "big") % modulus


def base_port_split_in_two(nodes: int) -> int:
    """A base port whose ``nodes`` consecutive ports are free and hash to both of two shards.

    Taken below the kernel's ephemeral range (32768+), where no free_port() of another test lands.
    """
    for base in range(20000, 32000 - nodes, nodes):
        addresses = [f"127.0.0.1:{port}" for port in range(base, base + nodes)]
        if {hashmod(a, 2) for a in addresses} == {0, 1} and not any(port_open(base + i) for i in range(nodes)):
            try:
                for port in range(base, base + nodes):
                    with socket.socket() as probe:
                        probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise AssertionError("no free range of ports")


class Fleet:
    """``p2p-telemetry fleet`` as a child process, with its output in a file and its nodes' PIDs."""

    def __init__(self, tmp_path: Path, nodes: int, *args: str, base_port: int = 0) -> None:
        self.targets_file = tmp_path / "fleet" / "targets.json"
        self.log = tmp_path / "fleet.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([COMMAND, "fleet", "--nodes", str(nodes), "--base-port", str(base_port),
                                          "--file-sd", str(self.targets_file), *args],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes = nodes
        wait_for(lambda: self.targets_file.exists() or self.proc.poll() is not None, 120, "the fleet's target file")
        assert self.proc.poll() is None, self.output()
        self.node_pids = [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        assert len(self.node_pids) == nodes, self.node_pids

    def targets(self) -> list[str]:
        (group,) = json.loads(self.targets_file.read_text())
        return list(group["targets"])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(60)

    def kill_all(self) -> None:
        """Clean-up after a failed test: the fleet and its nodes, by PID."""
        for pid in [self.proc.pid, *self.node_pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def survivors(self) -> list[int]:
        def alive(pid: int) -> bool:
            try:
                return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False
        return [pid for pid in self.node_pids if alive(pid)]


def scrape_counters(address: str) -> dict[tuple[str, frozenset], float]:
    """Every counter-like sample a node serves (totals, histogram buckets, counts and sums), by name and labels."""
    text = http_get(f"http://{address}/metrics").decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        if family.type in ("counter", "histogram"):
            for sample in family.samples:
                if sample.name.endswith(("_total", "_bucket", "_count", "_sum")):
                    labels = {k: v for k, v in sample.labels.items() if v}  # to Prometheus, "" is no label
                    samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples


def prometheus_config(shipped: str, targets_file: Path, **changes: object) -> dict:
    config = yaml.safe_load((CONFIG / shipped).read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    for job in config.get("scrape_configs", []):
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [str(targets_file)]
    config.update(changes)
    return config


def wait_nonempty(prometheus: Prometheus, title: str, expr: str, timeout: float = 45) -> list[dict]:
    return wait_for(lambda: prometheus.query(as_query(expr)), timeout, f"panel {title!r} to answer", every=0.5)


def test_fleet_help_documents_every_option():
    result = subprocess.run([COMMAND, "fleet", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--nodes", "--base-port", "--file-sd", "--duration", "--peers-per-node", "--flaky-every",
                   "--message-interval", "--idle", "--traffic-seconds", "--alertmanager", "--no-view", "--seed"):
        assert option in result.stdout, option
    assert "file_sd" in result.stdout and "service.instance.id" in result.stdout


@pytest.mark.slow
def test_ten_nodes_are_peers_and_prometheus_sees_each_through_file_sd(tmp_path):
    fleet = Fleet(tmp_path, 10, "--seed", "3")
    prometheus = None
    try:
        targets = fleet.targets()
        assert len(set(targets)) == 10 and all(t.startswith("127.0.0.1:") for t in targets)
        # The shipped prometheus.yml's node job, reading the fleet's file (its other targets left out).
        config = prometheus_config("prometheus.yml", fleet.targets_file)
        config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == "p2p-node"]
        del config["scrape_configs"][0]["static_configs"], config["rule_files"], config["alerting"]
        prometheus = Prometheus(tmp_path / "prometheus", yaml.safe_dump(config))

        wait_for(lambda: prometheus.value('count(up{job="p2p-node"} == 1)') == 10, 40, "10 targets up", every=0.5)
        ids = {r["metric"]["service_instance_id"] for r in prometheus.query("target_info")}
        assert ids == {f"node-{i}" for i in range(1, 11)}
        # Every node has its 4 ring neighbours as peers, each both dialled and dialling in.
        wait_for(lambda: {r["value"][1] for r in prometheus.query("sum by (instance) (p2p_peers)")} == {"4"}, 20,
                 "4 peers on every node", every=0.5)
        for direction in ("inbound", "outbound"):
            wait_for(lambda d=direction: prometheus.value(
                f'count(sum by (instance) (p2p_connection_active{{p2p_connection_direction="{d}"}}) > 0)') == 10,
                20, f"{direction} connections on every node", every=0.5)

        # The fleet dashboard: every query answers. Its alert panels need the flaky node-10's neighbours to
        # see it unhealthy, which the flaky cycle brings within 20 s.
        for panel in dashboard_panels("grafana-fleet-dashboard.json"):
            for target in panel["targets"]:
                wait_nonempty(prometheus, panel["title"], target["expr"])
        reporting = prometheus.value(as_query(next(t["expr"] for p in dashboard_panels("grafana-fleet-dashboard.json")
                                                   if p["title"] == "Nodes reporting" for t in p["targets"])))
        assert reporting == 10

        # The node dashboard no longer sums alerts over nodes: node-10's neighbours each have their own row.
        (alerts_expr,) = [t["expr"] for p in dashboard_panels("grafana-dashboard.json")
                          if p["title"] == "Active alerts by node" for t in p["targets"]]

        def unhealthy_rows() -> list[dict]:
            rows = [r for r in prometheus.query(as_query(alerts_expr)) if r["metric"]["alertname"] == "UnhealthyPeers"]
            return rows if len({r["metric"]["service_instance_id"] for r in rows}) >= 2 else []

        rows = wait_for(unhealthy_rows, 45, "UnhealthyPeers on two nodes, one row each", every=0.5)
        assert all(float(r["value"][1]) == 1 for r in rows)
        assert {r["metric"]["service_instance_id"] for r in rows} <= {"node-8", "node-9", "node-1", "node-2"}
        (worst_expr,) = [t["expr"] for p in dashboard_panels("grafana-dashboard.json")
                         if p["title"].startswith("Worst peer reputations") for t in p["targets"]]
        worst = prometheus.query(as_query(worst_expr))
        assert len(worst) == 10 and all(r["metric"]["service_instance_id"].startswith("node-") for r in worst)

        assert fleet.stop(signal.SIGTERM) == 0, fleet.output()
        assert not fleet.survivors()
        assert not fleet.targets_file.exists()
        out = fleet.output()
        assert out.count("p2p-telemetry fleet: 10 nodes on 127.0.0.1, 4 peers each") == 1  # the header once
        assert "node-10" in out and "p2p-telemetry fleet: stopped 10 nodes" in out and "Traceback" not in out
    finally:
        fleet.kill_all()
        if prometheus is not None:
            prometheus.stop()


@pytest.mark.slow
def test_two_agents_remote_write_every_node_exactly_to_the_central_prometheus(tmp_path):
    alertmanager = Alertmanager(tmp_path)
    shutil.copy(CONFIG / "p2p-alerts.rules.yml", tmp_path / "p2p-alerts.rules.yml")
    central_port = free_port()
    central_config = prometheus_config("prometheus-central.yml", Path("unused"))
    central_config["rule_files"] = [str(tmp_path / "p2p-alerts.rules.yml")]
    central_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{alertmanager.port}"]
    central_config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{central_port}"]
    central = Prometheus(tmp_path / "central", yaml.safe_dump(central_config), central_port,
                         args=("--web.enable-remote-write-receiver",))
    # Traffic stops after 8 s; from then on every node's counters stay as they are, and can be compared exactly.
    fleet = Fleet(tmp_path, 6, "--seed", "5", "--traffic-seconds", "8", "--message-interval", "0.1",
                  base_port=base_port_split_in_two(6))
    agents: list[Prometheus] = []
    try:
        for shard in ("0", "1"):
            config = prometheus_config("prometheus-agent.yml", fleet.targets_file)
            del config["global"]["evaluation_interval"]
            config["scrape_configs"][0]["relabel_configs"][1]["regex"] = shard
            config["remote_write"][0]["url"] = f"{central.url}/api/v1/write"
            config["remote_write"][0]["queue_config"]["batch_send_deadline"] = "1s"
            agents.append(Prometheus(tmp_path / f"agent-{shard}", yaml.safe_dump(config), agent=True))

        # The agents split the fleet: each scrapes the nodes whose address hashes to its shard, every node once.
        def shares_up() -> list[list[str]] | None:
            shares = [sorted(t["labels"]["instance"] for t in a.targets() if t["health"] == "up") for a in agents]
            return shares if sum(map(len, shares)) == 6 else None

        shares = wait_for(shares_up, 40, "the agents to scrape the 6 nodes", every=0.5)
        assert shares == [sorted(t for t in fleet.targets() if hashmod(t, 2) == shard) for shard in (0, 1)]
        assert all(shares), shares
        wait_for(lambda: central.value("count(count by (service_instance_id) (target_info))") == 6, 40,
                 "every node's target_info at the central Prometheus", every=0.5)

        # Once traffic has stopped, each node's counters are frozen: read them until two reads a second or
        # more apart (longer than a health ping's interval) agree.
        reads: list[dict[str, dict]] = []

        def frozen() -> dict[str, dict]:
            reads.append({a: scrape_counters(a) for a in fleet.targets()})
            return reads[-1] if len(reads) > 1 and reads[-1] == reads[-2] else {}

        own = wait_for(frozen, 40, "every node's counters to stop moving", every=1.0)
        assert all(own.values())

        def central_counters() -> dict[str, dict]:
            found: dict[str, dict] = {address: {} for address in own}
            for r in central.query('{__name__=~"p2p_.+_(total|bucket|count|sum)", job="p2p-node"}'):
                labels = dict(r["metric"])
                name, instance = labels.pop("__name__"), labels.pop("instance")
                labels.pop("job")
                found[instance][(name, frozenset(labels.items()))] = float(r["value"][1])
            return found

        def same() -> bool:
            return central_counters() == own

        try:
            wait_for(same, 30, "the central Prometheus's counters to equal the nodes' own", every=1.0)
        except AssertionError:
            seen = central_counters()
            diff = {a: {k: (v, seen[a].get(k)) for k, v in own[a].items() if seen[a].get(k) != v} for a in own}
            extra = {a: sorted(set(seen[a]) - set(own[a]))[:3] for a in own}
            raise AssertionError(f"series (node, central): {[(len(own[a]), len(seen[a])) for a in own]}; "
                                 f"differences (node, central): {str(diff)[:3000]}; only central: {extra}") from None
        totals = central_counters()
        events = sum(v for counters in totals.values() for (name, _), v in counters.items()
                     if name == "p2p_protocol_events_total")
        assert events > 100 and not any(math.isnan(v) for c in totals.values() for v in c.values())

        # The central Prometheus evaluates the shipped rules over what the agents sent, without error.
        def rules_evaluated() -> list[dict]:
            groups = http_json(f"{central.url}/api/v1/rules")["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20")
                                          for r in rules) else []

        wait_for(rules_evaluated, 20, "the rules evaluated at the central Prometheus", every=0.5)
        # The fleet dashboard's panels answer there too (the alert panels: see the test above, they need a
        # firing alert, which frozen nodes may or may not hold).
        for panel in dashboard_panels("grafana-fleet-dashboard.json"):
            if "alert" not in panel["title"].lower():
                for target in panel["targets"]:
                    wait_nonempty(central, panel["title"], target["expr"], timeout=20)

        assert fleet.stop(signal.SIGINT) == 0, fleet.output()
        assert not fleet.survivors()
    finally:
        fleet.kill_all()
        for agent in agents:
            agent.stop()
        central.stop()
        alertmanager.stop()


def test_nodes_stop_by_themselves_when_the_fleet_is_killed(tmp_path):
    fleet = Fleet(tmp_path, 3, "--idle")
    try:
        ports = [int(t.rsplit(":", 1)[1]) for t in fleet.targets()]
        fleet.stop(signal.SIGKILL)  # no clean-up code of the fleet runs: the nodes see their stdin close
        wait_for(lambda: not fleet.survivors(), 30, "every node to exit")
        for port in ports:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))  # the node's Prometheus port is free again
    finally:
        fleet.kill_all()


def test_fleet_stops_after_its_duration_and_prints_each_node(tmp_path):
    targets_file = tmp_path / "targets.json"
    result = subprocess.run([COMMAND, "fleet", "--nodes", "3", "--base-port", "0", "--duration", "4",
                             "--file-sd", str(targets_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("p2p-telemetry fleet: 3 nodes on 127.0.0.1") == 1
    assert "\x1b" not in out  # nothing drawn for a terminal on a pipe
    assert "p2p-telemetry fleet: 3 nodes on 127.0.0.1, 2 peers each" in out
    last_frame = out[out.rindex("fleet: 3/3 nodes up"):].splitlines()
    assert last_frame[1].split() == ["node", "port", "peers", "ok", "deg", "unh", "out/s", "in/s", "conns", "fails",
                                     "tmout", "alerts"]
    for line, node in zip(last_frame[2:5], ("node-1", "node-2", "node-3"), strict=True):
        assert line.split()[0] == node and line.split()[2] == "2", line  # 2 peers each: a full mesh of 3
    assert out.rstrip().endswith("p2p-telemetry fleet: stopped 3 nodes")
    assert not targets_file.exists()


def test_a_taken_port_is_a_clear_error_and_no_node_is_left(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.Popen([COMMAND, "fleet", "--nodes", "2", "--base-port", str(port), "--no-view",
                                 "--file-sd", str(tmp_path / "t.json")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children: set[int] = set()
        try:
            while proc.poll() is None:  # note every node it starts, to check none outlives it
                try:
                    children |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.02)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 2, out + err
    assert "fleet: node-1: " in err and f"prometheus_port {port}" in err and "already in use" in err
    assert "Traceback" not in err
    assert not [pid for pid in children if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
