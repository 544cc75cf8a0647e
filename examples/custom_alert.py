"""A custom alert rule beside the default ones, delivered to a log and to Prometheus Alertmanager.

    python examples/custom_alert.py [--alertmanager http://127.0.0.1:9093]

The rule fires when two or more peers are degraded. The example degrades three peers, waits
for the alert to fire (it is posted to Alertmanager's /api/v2/alerts), heals them, waits for
it to resolve (Alertmanager is told it ended), and stops. With no Alertmanager listening the
sink retries in the background, the node is unaffected, and the example still finishes.
"""

from __future__ import annotations

import argparse
import logging
import time

from opentelemetry.sdk.metrics import MeterProvider

from p2p_telemetry import (
    AlertConfig,
    AlertmanagerSink,
    AlertRule,
    LogSink,
    MonitoringConfig,
    MonitoringSystem,
    default_rules,
)

SLOW_PEERS = AlertRule(
    name="SlowPeers", metric="p2p.peers", attributes={"p2p.peer.health": "degraded"},
    aggregation="value", op=">=", threshold=2, for_=0.0, keep_firing_for=0.0,
    severity="warning", summary="{value} peers are degraded", labels={"team": "p2p"})


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alertmanager", default="http://127.0.0.1:9093", help="Alertmanager's base URL")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the peers stay degraded after it fires")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    config = MonitoringConfig(
        alert_check_interval=0.5, sample_resources=False,
        alert_config=AlertConfig(rules=default_rules() + [SLOW_PEERS],
                                 sinks=[LogSink(), AlertmanagerSink(args.alertmanager, resend_interval=5.0)]))
    with MonitoringSystem(config, meter_provider=MeterProvider()) as monitoring:
        peers, alerts = monitoring.metrics.peers, monitoring.alert_manager
        for i in range(3):
            peers.update(f"peer-{i}", health="degraded", latency=0.4, reason="slow pings")
        fired = wait_for(lambda: alerts.has_alert("SlowPeers"))
        print(f"custom_alert: SlowPeers {'fired' if fired else 'did NOT fire'}", flush=True)
        time.sleep(args.hold)
        for i in range(3):
            peers.update(f"peer-{i}", health="healthy", latency=0.02)
        resolved = wait_for(lambda: not alerts.has_alert("SlowPeers"))
        print(f"custom_alert: SlowPeers {'resolved' if resolved else 'did NOT resolve'}")
    if not (fired and resolved):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
