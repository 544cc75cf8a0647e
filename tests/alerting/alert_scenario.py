"""One scenario, minute by minute, run through Prometheus's engine (promtool) and the in-process evaluator.

The series are what a node exports (Prometheus names); ``EXPECTED`` is the firing alerts at each
evaluation time. ``promtool_test()`` writes them as a ``promtool test rules`` file, and the Python
test records the same values through the public API and evaluates at the same times.
"""

from __future__ import annotations

from p2p_telemetry import AlertRule, default_rules

MINUTES = 16
GIB2 = 2 << 30

CPU = [0.5] * 3 + [0.95] * 4 + [0.5] * 9  # above 0.9 at minutes 3..6
MEMORY = [500_000_000] * 5 + [GIB2] * 4 + [500_000_000] * 7  # above 1 GiB at 5..8
UNHEALTHY = [0] * 6 + [2] * 3 + [0] * 7  # two unhealthy peers at 6..8
FAILURES = [0] * 8 + [5, 10, 15, 20] + [20] * 4  # timeouts, cumulative; the series exists (at 0) from minute 0
assert all(len(s) == MINUTES for s in (CPU, MEMORY, UNHEALTHY, FAILURES))

SERIES = {
    "p2p_node_cpu_utilization": CPU,
    "p2p_node_memory_usage_bytes": MEMORY,
    'p2p_peers{p2p_peer_health="unhealthy"}': UNHEALTHY,
    'p2p_connection_failures_total{p2p_connection_direction="outbound",network_transport="tcp",'
    'error_type="timeout"}': FAILURES,
}


def rules() -> list[AlertRule]:
    """The default rules and one with ``for`` and ``keep_firing_for``."""
    return default_rules() + [AlertRule(
        "SustainedHighCpu", "p2p.node.cpu.utilization", op=">", threshold=0.9, for_=120, keep_firing_for=120,
        severity="page", summary="CPU {value} for 2m")]


def _alerts(name: str, minutes: range, summary: str | dict[int, str], **labels: str) -> dict:
    return {(m, name): [(labels, summary[m] if isinstance(summary, dict) else summary)] for m in minutes}


# (minute, alertname) -> [(labels without alertname, summary)]; absent = nothing firing.
EXPECTED: dict[tuple[int, str], list[tuple[dict[str, str], str]]] = {
    **_alerts("HighCpuUsage", range(3, 7), "CPU utilization 0.95 is above 0.9", severity="warning"),
    # pending at 3, firing from 5 (2m later), kept firing 2m after the condition cleared at 7.
    **_alerts("SustainedHighCpu", range(5, 9), "CPU 0.95 for 2m", severity="page"),
    **_alerts("HighMemoryUsage", range(5, 9), "Memory usage 2.147483648e+09 bytes is above 1 GiB",
              severity="warning"),
    **_alerts("UnhealthyPeers", range(6, 9), "2 unhealthy peers", severity="warning", p2p_peer_health="unhealthy"),
    # increase over [t-5m, t]: 15 at 10, 20 at 11 and 12, 15 at 13, then 10 (not above 10).
    **_alerts("HighConnectionFailures", range(10, 14),
              {10: "15 connection failures in 5m", 11: "20 connection failures in 5m",
               12: "20 connection failures in 5m", 13: "15 connection failures in 5m"}, severity="critical"),
}


def promtool_test(rule_file: str) -> dict:
    """The scenario as a ``promtool test rules`` document."""
    names = [r.name for r in rules()]
    tests = []
    for minute in range(MINUTES):
        for name in names:
            tests.append({"eval_time": f"{minute}m", "alertname": name, "exp_alerts": [
                {"exp_labels": labels, "exp_annotations": {"summary": summary}}
                for labels, summary in EXPECTED.get((minute, name), [])]})
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": s, "values": " ".join(str(v) for v in values)} for s, values in SERIES.items()],
        "alert_rule_test": tests}]}
