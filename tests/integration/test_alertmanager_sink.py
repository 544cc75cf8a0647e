"""A real Alertmanager receives the node's alerts from AlertmanagerSink: firing, resolved, after an outage, after
a wall clock stepped back, and past a batch it refuses."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from p2p_telemetry import (
    Alert,
    AlertConfig,
    AlertManager,
    AlertmanagerSink,
    MetricsCollector,
    ResourceMetrics,
    default_rules,
)
from realstack import Alertmanager, Receiver, wait_for

pytestmark = pytest.mark.integration
INTERVAL = 0.2
NODE = {"service_name": "p2p-node", "service_instance_id": "node-1"}


def am_alert(am: Alertmanager, name: str) -> dict | None:
    found = am.alerts(alertname=name)
    return found[0] if found else None


@pytest.fixture
def stack(tmp_path):
    webhook = Receiver()
    am = Alertmanager(tmp_path, f"""
route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
receivers:
  - name: hook
    webhook_configs: [{{url: "{webhook.url}/hook", send_resolved: true}}]
""")
    provider = MeterProvider(resource=Resource.create({"service.name": "p2p-node", "service.instance.id": "node-1"}))
    collector = MetricsCollector(provider, sample_resources=False)
    wall_offset = [0.0]
    sink = AlertmanagerSink(am.url, resend_interval=1.0, timeout=2.0, min_backoff=0.1, max_backoff=0.5,
                            queue_size=8, batch_size=4, generator_url="http://node-1.test/alerts/{alertname}",
                            clock=lambda: time.time() + wall_offset[0])
    manager = AlertManager(AlertConfig(default_rules(), [sink]), provider,
                           clock=lambda: time.time() + wall_offset[0]).start(INTERVAL)
    state = {"am": am, "wall_offset": wall_offset}
    yield state, collector, manager, sink, webhook, tmp_path
    manager.stop()
    state["am"].stop()
    webhook.close()
    provider.shutdown()


def test_firing_then_resolved_in_alertmanager(stack):
    state, collector, manager, _, webhook, _ = stack
    am = state["am"]
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))
    alert = wait_for(lambda: am_alert(am, "HighCpuUsage"), 10, "HighCpuUsage in Alertmanager")
    assert alert["labels"] == {"alertname": "HighCpuUsage", "severity": "warning", **NODE}
    assert alert["annotations"] == {"summary": "CPU utilization 0.95 is above 0.9"}
    assert alert["status"]["state"] == "active" and alert["generatorURL"] == "http://node-1.test/alerts/HighCpuUsage"
    listed = am.amtool("alert", "query", "alertname=HighCpuUsage")
    assert "HighCpuUsage" in listed and "CPU utilization 0.95 is above 0.9" in listed

    collector.record_resource_metrics(ResourceMetrics(cpu_usage=10.0))
    wait_for(lambda: am_alert(am, "HighCpuUsage") is None, 10, "HighCpuUsage to leave the active list")
    assert "HighCpuUsage" not in am.amtool("alert", "query", "alertname=HighCpuUsage")
    # Alertmanager itself reports it resolved to its receivers (endsAt in the past).
    resolved = wait_for(lambda: [a for body in webhook.bodies() for a in body["alerts"]
                                 if a["labels"]["alertname"] == "HighCpuUsage" and a["status"] == "resolved"],
                        10, "the resolved notification from Alertmanager")
    assert resolved[0]["endsAt"] < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1))


def test_alertmanager_down_then_back(stack):
    state, collector, manager, sink, _, tmp_path = stack
    am = state["am"]
    port = am.port
    am.stop()
    collector.record_resource_metrics(ResourceMetrics(memory_usage=3 << 30))
    for i in range(20):  # more changes than the queue holds
        manager.trigger_alert(f"Manual{i}")
    wait_for(lambda: sink.failures >= 3, 10, "the sink to retry")
    before = manager.evaluations
    wait_for(lambda: manager.evaluations >= before + 3, 10, "evaluations going on while Alertmanager is down")
    assert manager.has_alert("HighMemoryUsage")
    assert sink.pending() <= 8 + 4 and sink.dropped > 0  # bounded: oldest dropped, counted

    state["am"] = back = Alertmanager(tmp_path, port=port)
    alert = wait_for(lambda: am_alert(back, "HighMemoryUsage"), 15, "HighMemoryUsage after Alertmanager came back")
    assert alert["annotations"]["summary"] == "Memory usage 3.221225472e+09 bytes is above 1 GiB"
    # Firing alerts are re-sent on the resend interval, so the ones dropped from the queue arrive too.
    wait_for(lambda: len([a for a in back.alerts() if a["labels"]["alertname"].startswith("Manual")]) == 20, 15,
             "every manual alert, by resend")


def test_a_wall_clock_stepped_back_still_resolves_and_later_alerts_arrive(stack):
    state, _, manager, sink, _, _ = stack
    am = state["am"]
    state["wall_offset"][0] = 3600.0  # the node's clock runs an hour ahead...
    manager.trigger_alert("Manual")
    wait_for(lambda: am_alert(am, "Manual"), 10, "the manual alert in Alertmanager")
    state["wall_offset"][0] = 0.0  # ...until NTP steps it back an hour
    manager.resolve_alert("Manual")  # resolved_at is an hour before startsAt by the node's clock
    manager.trigger_alert("After")
    wait_for(lambda: am_alert(am, "After"), 10, "the alert after the resolution")
    assert am_alert(am, "Manual") is None  # the resolution was accepted, not refused with a 400
    assert sink.rejected == 0


def test_a_batch_alertmanager_refuses_is_dropped_and_the_next_alerts_arrive(stack):
    state, _, _, sink, _, _ = stack
    am = state["am"]
    now = time.time()
    refused = Alert("Refused", "firing", {"alertname": "Refused", "not-a-label-name": "x"}, 1.0, now, fired_at=now)
    sink.notify(refused)  # Alertmanager 0.25 answers 400: invalid label name
    wait_for(lambda: sink.rejected >= 1, 10, "the refusal")
    later = Alert("Later", "firing", {"alertname": "Later", **NODE}, 1.0, now, fired_at=now)
    sink.notify(later)
    wait_for(lambda: am_alert(am, "Later"), 10, "the alert after the refused batch")
    assert am_alert(am, "Refused") is None
