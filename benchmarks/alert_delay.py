"""End to end: from a node's condition to the alert in a real Alertmanager, by each path.

    python -m benchmarks.alert_delay [--trials 5] [--interval 1]

- **node**: the node's own evaluator (every ``--interval`` seconds) and its ``AlertmanagerSink``;
- **prometheus**: a real Prometheus scraping the node and evaluating the shipped rule file
  (``collector-config/p2p-alerts.rules.yml``) every ``--interval`` seconds, sending to Alertmanager.

The condition is ``UnhealthyPeers`` (one peer turns unhealthy, at a random phase of the intervals;
the rule has no ``for``): the delay runs from that call to the alert, with the node's
``service_instance_id``, in Alertmanager's ``/api/v2/alerts`` (polled every 10 ms). Each trial
starts its own Alertmanager (and Prometheus), all on 127.0.0.1, stopped by PID. Expect about half
an interval on the node's path (the next tick), and scrape plus evaluation phases on Prometheus's
(up to two intervals).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the real-stack helpers the tests use

from benchmarks._timing import table  # noqa: E402
from p2p_telemetry import (  # noqa: E402
    AlertConfig,
    AlertmanagerSink,
    MonitoringConfig,
    MonitoringSystem,
    configure,
    default_rules,
    setup_info,
)
from p2p_telemetry.alerting.promql import prometheus_duration  # noqa: E402
from realstack import Alertmanager, Prometheus, wait_for  # noqa: E402

RULES = ROOT / "collector-config" / "p2p-alerts.rules.yml"
NODE = "delay-node"


def _prometheus_config(target: str, alertmanager: str, interval: float) -> str:
    every = prometheus_duration(interval)
    return f"""global: {{scrape_interval: {every}, evaluation_interval: {every}}}
rule_files: ["{RULES}"]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["{alertmanager}"]}}]}}]
scrape_configs:
  - job_name: p2p-node
    static_configs: [{{targets: ["{target}"]}}]
"""


def trial(path: str, interval: float, workdir: Path) -> float:
    """Seconds from the condition to the alert in Alertmanager, by ``path`` ("node" or "prometheus")."""
    (workdir / "am").mkdir()
    alertmanager = Alertmanager(workdir / "am")
    provider = configure(prometheus_port=0, service_instance_id=NODE, set_global=False)
    assert isinstance(provider, MeterProvider)
    sinks = [AlertmanagerSink(alertmanager.url, resend_interval=60.0)] if path == "node" else []
    monitoring = MonitoringSystem(MonitoringConfig(alert_check_interval=interval, sample_resources=False,
                                                   alert_config=AlertConfig(rules=default_rules(), sinks=sinks)),
                                  meter_provider=provider)
    prometheus = None
    try:
        monitoring.start()
        if path == "prometheus":
            url = setup_info(provider).prometheus_url  # type: ignore[union-attr]
            target = url.split("//", 1)[1].split("/", 1)[0]
            prometheus = Prometheus(workdir / "prom", _prometheus_config(target, f"127.0.0.1:{alertmanager.port}",
                                                                         interval))
            wait_for(lambda: prometheus.value(f'up{{instance="{target}"}}') == 1, 60, "the node scraped")
            wait_for(lambda: prometheus.query("target_info"), 60, "target_info")
        time.sleep(random.uniform(0, interval))  # the condition arrives at a random phase of the intervals
        started = time.monotonic()
        monitoring.metrics.peers.update("peer-1", health="unhealthy")
        wait_for(lambda: alertmanager.alerts(alertname="UnhealthyPeers", service_instance_id=NODE), 120,
                 "the alert in Alertmanager", every=0.01)
        return time.monotonic() - started
    finally:
        monitoring.stop()
        provider.shutdown()
        if prometheus is not None:
            prometheus.stop()
        alertmanager.stop()


def rows(trials: int, interval: float) -> list[tuple[str, str, str]]:
    found = []
    for path in ("node", "prometheus"):
        delays = []
        for number in range(trials):
            with tempfile.TemporaryDirectory(prefix=f"p2p-alert-delay-{path}-{number}-") as workdir:
                delays.append(trial(path, interval, Path(workdir)))
        found.append((f"condition -> Alertmanager via the {path}", f"{statistics.median(delays):.2f} s median",
                      f"max {max(delays):.2f} s over {trials} trials; evaluation every {interval:g} s"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="evaluation (and scrape) interval, seconds")
    args = parser.parse_args()
    print(table(rows(args.trials, args.interval), ("measurement", "figure", "context")))


if __name__ == "__main__":
    main()
