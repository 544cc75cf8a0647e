"""One scenario, minute by minute, on two nodes, through Prometheus's engine (promtool) and the in-process evaluator.

Node ``node-a`` goes through trouble; node ``node-b`` stays calm. The series are what each node
exports (Prometheus names, with the scope labels the exporter adds), scraped under its own
``instance``, with its ``target_info``. ``EXPECTED`` is the firing alerts at each evaluation time:
only node-a's, with its identity, and the fleet's. ``promtool_test()`` writes them as a
``promtool test rules`` file; the Python test records the same values through the public API on
two providers and evaluates at the same times.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2p_telemetry import AlertRule, default_rules, fleet_rules

MINUTES = 16
GIB2 = 2 << 30
SERVICE = "p2p-node"


@dataclass(frozen=True)
class Node:
    instance_id: str
    target: str  # the scrape target (Prometheus's instance label)
    cpu: list[float]
    memory: list[int]
    unhealthy: list[int]
    failures: list[int]  # timeouts, cumulative; the series exists (at 0) from minute 0

    @property
    def identity(self) -> dict[str, str]:
        return {"service_name": SERVICE, "service_instance_id": self.instance_id}


TROUBLED = Node(
    "node-a", "10.0.0.1:9464",
    cpu=[0.5] * 3 + [0.95] * 4 + [0.5] * 9,  # above 0.9 at minutes 3..6
    memory=[500_000_000] * 5 + [GIB2] * 4 + [500_000_000] * 7,  # above 1 GiB at 5..8
    unhealthy=[0] * 6 + [2] * 3 + [0] * 7,  # two unhealthy peers at 6..8
    failures=[0] * 8 + [5, 10, 15, 20] + [20] * 4)
# One failure a minute: 5 in any 5 minutes, below 10 on its own; summed with node-a's over the fleet it would
# be above (at minute 9: 10 + 5), so a rule that sums the fleet fails this scenario.
CALM = Node("node-b", "10.0.0.2:9464", cpu=[0.5] * MINUTES, memory=[500_000_000] * MINUTES,
            unhealthy=[0] * MINUTES, failures=list(range(MINUTES)))
NODES = (TROUBLED, CALM)
assert all(len(s) == MINUTES for n in NODES for s in (n.cpu, n.memory, n.unhealthy, n.failures))

_SCOPE = 'otel_scope_name="p2p_telemetry",otel_scope_version="0.1.0"'


def series(node: Node) -> dict[str, list[float]]:
    """The node's series as Prometheus stores them after scraping it, its target_info included."""
    target = f'job="p2p-node",instance="{node.target}"'
    return {
        f'target_info{{{target},service_name="{SERVICE}",service_instance_id="{node.instance_id}",'
        'telemetry_sdk_language="python"}': [1] * MINUTES,
        f"p2p_node_cpu_utilization{{{target},{_SCOPE}}}": node.cpu,
        f"p2p_node_memory_usage_bytes{{{target},{_SCOPE}}}": node.memory,
        **{f'p2p_peers{{{target},{_SCOPE},p2p_peer_health="{health}"}}': values for health, values in (
            ("unhealthy", node.unhealthy), ("healthy", [2 - u for u in node.unhealthy]), ("degraded", [0] * MINUTES))},
        f'p2p_connection_failures_total{{{target},{_SCOPE},p2p_connection_direction="outbound",'
        'network_transport="tcp",p2p_transport="tcp",error_type="timeout"}': node.failures,
    }


def rules() -> list[AlertRule]:
    """The default rules and one with ``for`` and ``keep_firing_for``."""
    return default_rules() + [AlertRule(
        "SustainedHighCpu", "p2p.node.cpu.utilization", op=">", threshold=0.9, for_=120, keep_firing_for=120,
        severity="page", summary="CPU {value} for 2m")]


FLEET_NAMES = [r.name for r in fleet_rules()]


def _alerts(name: str, minutes: range, summary: str | dict[int, str], **labels: str) -> dict:
    return {(m, name): [(labels, summary[m] if isinstance(summary, dict) else summary)] for m in minutes}


A = TROUBLED.identity
# (minute, alertname) -> [(labels without alertname, summary)]; absent = nothing firing.
EXPECTED: dict[tuple[int, str], list[tuple[dict[str, str], str]]] = {
    **_alerts("HighCpuUsage", range(3, 7), "CPU utilization 0.95 is above 0.9", severity="warning", **A),
    # pending at 3, firing from 5 (2m later), kept firing 2m after the condition cleared at 7.
    **_alerts("SustainedHighCpu", range(5, 9), "CPU 0.95 for 2m", severity="page", **A),
    **_alerts("HighMemoryUsage", range(5, 9), "Memory usage 2.147483648e+09 bytes is above 1 GiB",
              severity="warning", **A),
    **_alerts("UnhealthyPeers", range(6, 9), "2 unhealthy peers", severity="warning", p2p_peer_health="unhealthy",
              **A),
    # increase over [t-5m, t]: 15 at 10, 20 at 11 and 12, 15 at 13, then 10 (not above 10).
    **_alerts("HighConnectionFailures", range(10, 14),
              {10: "15 connection failures in 5m", 11: "20 connection failures in 5m",
               12: "20 connection failures in 5m", 13: "15 connection failures in 5m"}, severity="critical", **A),
    # One node of two (0.5 > 0.25) for 2m: pending at 6, firing at 8; pending at 10, firing at 12 and 13.
    **_alerts("FleetUnhealthyPeers", range(8, 9), "0.5 of the nodes have unhealthy peers", severity="warning"),
    **_alerts("FleetConnectionFailures", range(12, 14),
              "0.5 of the nodes have more than 10 connection failures in 5m", severity="critical"),
}


def promtool_test(rule_file: str) -> dict:
    """The scenario as a ``promtool test rules`` document."""
    names = [r.name for r in rules()] + FLEET_NAMES
    tests = []
    for minute in range(MINUTES):
        for name in names:
            tests.append({"eval_time": f"{minute}m", "alertname": name, "exp_alerts": [
                {"exp_labels": labels, "exp_annotations": {"summary": summary}}
                for labels, summary in EXPECTED.get((minute, name), [])]})
    input_series = [{"series": s, "values": " ".join(str(v) for v in values)}
                    for node in NODES for s, values in series(node).items()]
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": input_series, "alert_rule_test": tests}]}
