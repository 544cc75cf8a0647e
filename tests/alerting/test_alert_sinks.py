"""Sinks: the log, a callback, and the Alertmanager sink's payload, resends, auth, retries and bounded queue."""

from __future__ import annotations

import logging
import time
from datetime import datetime

import pytest

from p2p_telemetry import Alert, AlertmanagerSink, CallbackSink, LogSink
from realstack import LOOPBACK, Receiver, free_port, wait_for


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def alerts_of(receiver: Receiver) -> list[dict]:
    return [a for body in receiver.bodies() for a in body]


def alert(state="firing", name="HighCpuUsage", t=None, **labels) -> Alert:
    now = time.time() if t is None else t
    return Alert(name, state, {"alertname": name, "severity": "warning", **labels}, 0.95, now - 5,
                 fired_at=now - 5 if state != "pending" else None, resolved_at=now if state == "resolved" else None,
                 summary="CPU utilization 0.95 is above 0.9")


def parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_log_and_callback_sinks(caplog):
    got = []
    CallbackSink(got.append).notify(alert())
    assert got[0].name == "HighCpuUsage"
    with caplog.at_level(logging.INFO, logger="p2p_telemetry"):
        LogSink().notify(alert())
    assert "HighCpuUsage firing: CPU utilization 0.95 is above 0.9" in caplog.text
    with pytest.raises(ValueError, match="callable"):
        CallbackSink(42)  # type: ignore[arg-type]


def test_posts_firing_then_resolved_in_alertmanager_format(receiver):
    sink = AlertmanagerSink(receiver.url, resend_interval=60, generator_url="http://node-1/alerts/{alertname}")
    sink.notify(alert("pending"))  # Alertmanager never hears of pending alerts
    firing = alert(instance="node-1")
    sink.notify(firing)
    wait_for(lambda: alerts_of(receiver), 5, "the firing alert")
    resolved = alert("resolved", instance="node-1")
    sink.notify(resolved)
    wait_for(lambda: len(alerts_of(receiver)) == 2, 5, "the resolution")
    sink.close()
    (path, _, _), _ = receiver.requests
    assert path == "/api/v2/alerts"
    first, second = alerts_of(receiver)
    assert first["labels"] == {"alertname": "HighCpuUsage", "severity": "warning", "instance": "node-1"}
    assert first["annotations"] == {"summary": "CPU utilization 0.95 is above 0.9"}
    assert first["generatorURL"] == "http://node-1/alerts/HighCpuUsage"
    assert parse(first["startsAt"]) == pytest.approx(firing.fired_at, abs=0.001)
    assert parse(first["endsAt"]) > time.time() + 200  # ahead of now: 4 resend intervals
    assert parse(second["endsAt"]) == pytest.approx(resolved.resolved_at, abs=0.001)


def test_resends_firing_alerts_with_endsat_moving_ahead(receiver):
    sink = AlertmanagerSink(receiver.url + "/api/v2/alerts", resend_interval=0.2)
    sink.notify(alert())
    wait_for(lambda: len(alerts_of(receiver)) >= 3, 5, "two resends")
    sink.notify(alert("resolved"))
    time.sleep(0.5)
    sink.close()
    ends = [parse(a["endsAt"]) for a in alerts_of(receiver)]
    firing_ends = ends[:-1] if ends[-1] < time.time() - 0.3 else ends
    assert firing_ends == sorted(firing_ends) and firing_ends[-1] > firing_ends[0]
    resolved_at = [a for a in alerts_of(receiver) if parse(a["endsAt"]) < time.time()]
    assert resolved_at, "the resolution was sent"
    count = len(alerts_of(receiver))
    time.sleep(0.5)
    assert len(alerts_of(receiver)) == count  # nothing firing: nothing resent, and the sender is stopped


@pytest.mark.parametrize("kwargs, header", [
    ({"bearer_token": "s3cret-token"}, "Bearer s3cret-token"),
    ({"basic_auth": ("am-user", "s3cret-token")}, "Basic YW0tdXNlcjpzM2NyZXQtdG9rZW4="),
    ({"headers": {"X-Scope-OrgID": "s3cret-token"}}, None),
])
def test_credentials_are_sent_and_never_logged(receiver, caplog, kwargs, header):
    down = f"http://{LOOPBACK}:{free_port()}"
    with caplog.at_level(logging.DEBUG, logger="p2p_telemetry"):
        failing = AlertmanagerSink(down, min_backoff=0.05, max_backoff=0.05, **kwargs)
        failing.notify(alert())
        wait_for(lambda: failing.failures >= 2, 5, "retries")
        failing.close()
        sink = AlertmanagerSink(receiver.url, **kwargs)
        sink.notify(alert())
        wait_for(lambda: receiver.requests, 5, "the request")
        sink.close()
    headers = {k.lower(): v for k, v in receiver.requests[0][1].items()}
    if header:
        assert headers["authorization"] == header
    else:
        assert headers["x-scope-orgid"] == "s3cret-token"
    assert "cannot reach" in caplog.text and "s3cret" not in caplog.text and "s3cret" not in repr(sink)


def test_the_queue_is_bounded_while_alertmanager_is_down_and_notify_never_blocks():
    port = free_port()
    sink = AlertmanagerSink(f"http://{LOOPBACK}:{port}", queue_size=5, batch_size=2, min_backoff=0.05,
                            max_backoff=0.1, resend_interval=0.3)
    started = time.perf_counter()
    for i in range(100):
        sink.notify(alert(peer=str(i)))
    assert time.perf_counter() - started < 0.1  # 100 notifications: no network in the caller
    wait_for(lambda: sink.failures >= 3, 5, "retries with backoff")
    assert sink.pending() <= 5 + 2 and sink.dropped >= 100 - 7
    receiver = Receiver(port)  # it comes back
    try:
        wait_for(lambda: {a["labels"]["peer"] for a in alerts_of(receiver)} == {str(i) for i in range(100)}, 10,
                 "every firing alert, by resend")
    finally:
        sink.close()
        receiver.close()
    assert sink.sent >= 100


def test_bad_settings_name_the_setting():
    with pytest.raises(ValueError, match="url"):
        AlertmanagerSink("127.0.0.1:9093")
    with pytest.raises(ValueError, match="resend_interval"):
        AlertmanagerSink("http://127.0.0.1:9093", resend_interval=0)
    with pytest.raises(ValueError, match="queue_size"):
        AlertmanagerSink("http://127.0.0.1:9093", queue_size=0)


def test_close_sends_what_is_queued_first(receiver):
    sink = AlertmanagerSink(receiver.url)
    sink.notify(alert())
    sink.notify(alert("resolved"))
    sink.close()  # as MonitoringSystem.stop() does: the resolution still goes out
    assert len(alerts_of(receiver)) == 2 and parse(alerts_of(receiver)[-1]["endsAt"]) <= time.time()


def test_close_does_not_wait_for_an_alertmanager_that_is_down():
    sink = AlertmanagerSink(f"http://{LOOPBACK}:{free_port()}", min_backoff=0.05, timeout=2.0)
    sink.notify(alert())
    wait_for(lambda: sink.failures, 5, "a failed send")
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 0.5
