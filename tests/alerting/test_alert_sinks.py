"""Sinks: the log, a callback, and the Alertmanager sink's payload, resends, auth, retries, refusals, clock steps,
bounded queue, and the jittered backoff."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from datetime import datetime

import pytest

from p2p_telemetry import Alert, AlertmanagerSink, CallbackSink, LogSink
from p2p_telemetry.alerting.backoff import Backoff
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
    wait_for(lambda: parse(alerts_of(receiver)[-1]["endsAt"]) <= time.time(), 5, "the resolution")
    resolved_at = len(alerts_of(receiver))
    sink.notify(alert(name="StillFiring"))
    wait_for(lambda: [a["labels"]["alertname"] for a in alerts_of(receiver)[resolved_at:]].count("StillFiring") >= 3,
             5, "two resends of the alert still firing")
    sink.close()
    ends = [parse(a["endsAt"]) for a in alerts_of(receiver)[:resolved_at - 1]]
    assert ends == sorted(ends) and ends[-1] > ends[0]
    later = [a["labels"]["alertname"] for a in alerts_of(receiver)[resolved_at:]]
    assert set(later) == {"StillFiring"}  # the resolved alert is resent no more


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
    for i in range(100):
        sink.notify(alert(peer=str(i)))
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


def test_notify_never_waits_for_an_alertmanager_that_hangs():
    with socket.socket() as hole:  # accepts connections (the kernel's backlog) and never answers
        hole.bind((LOOPBACK, 0))
        hole.listen(8)
        sink = AlertmanagerSink(f"http://{LOOPBACK}:{hole.getsockname()[1]}", timeout=60, queue_size=5)
        sink.notify(alert(peer="first"))
        wait_for(lambda: sink.pending() == 1 and sink.sent == 0, 5, "the first POST, hanging")
        notifier = threading.Thread(target=lambda: [sink.notify(alert(peer=str(i))) for i in range(100)])
        notifier.start()
        notifier.join(10)  # a notify that waited for the network would wait 60 s
        assert not notifier.is_alive()
        assert sink.dropped >= 100 - 5
    sink.close(timeout=0)


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


# -- refused batches, clock steps, the HTTP client ----------------------------------------------------

def named(body, name: str) -> bool:
    return any(a["labels"]["alertname"] == name for a in body)


def test_a_refused_batch_is_dropped_counted_logged_once_and_the_next_ones_go_on(caplog):
    receiver = Receiver(status=lambda body: 400 if named(body, "Refused") else 200)
    sink = AlertmanagerSink(receiver.url, batch_size=1, min_backoff=0.05, max_backoff=0.1)
    try:
        with caplog.at_level(logging.INFO, logger="p2p_telemetry"):
            sink.notify(alert(name="Refused"))
            sink.notify(alert(name="Next"))
            wait_for(lambda: sink.sent == 1, 5, "the alert after the refused one")
            sink.notify(alert("resolved", name="Refused"))
            sink.notify(alert(name="Later"))
            wait_for(lambda: sink.sent == 2, 5, "the alert after the second refusal")
    finally:
        sink.close()
        receiver.close()
    sent = [a["labels"]["alertname"] for body in receiver.bodies() for a in body]
    assert sent == ["Refused", "Next", "Refused", "Later"]  # each refused batch was sent once, never retried
    assert (sink.rejected, sink.failures, sink.dropped) == (2, 0, 0)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "HTTP 400" in refusals[0]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_too_many_requests_and_server_errors_are_retried(status):
    answers = [status, status]
    receiver = Receiver(status=lambda body: answers.pop() if answers else 200)
    sink = AlertmanagerSink(receiver.url, min_backoff=0.01, max_backoff=0.02)
    try:
        sink.notify(alert())
        wait_for(lambda: sink.sent == 1, 5, "the alert, after two retries")
    finally:
        sink.close()
        receiver.close()
    assert (len(receiver.requests), sink.failures, sink.rejected) == (3, 2, 0)


def test_resends_keep_their_schedule_when_the_wall_clock_steps_back(receiver):
    offset = [0.0]
    sink = AlertmanagerSink(receiver.url, resend_interval=0.2, clock=lambda: time.time() + offset[0])
    try:
        sink.notify(alert())
        wait_for(lambda: len(alerts_of(receiver)) == 1, 5, "the firing alert")
        offset[0] = -3600.0  # NTP steps the wall clock back an hour
        wait_for(lambda: len(alerts_of(receiver)) >= 3, 5, "resends after the step")
    finally:
        sink.close()
    for sent in alerts_of(receiver):
        assert parse(sent["startsAt"]) <= parse(sent["endsAt"])


def test_ends_at_is_never_before_starts_at_after_a_step_back(receiver):
    started = time.time()
    wall = [started - 3600]  # the clock was stepped back an hour after the alert started
    sink = AlertmanagerSink(receiver.url, clock=lambda: wall[0])
    firing = alert(t=started)
    resolved = alert("resolved", t=started)
    resolved.resolved_at = wall[0]  # stamped by the evaluator after the step
    sink.notify(firing)
    sink.notify(resolved)
    sink.close()
    (first, second) = alerts_of(receiver)
    assert parse(first["startsAt"]) <= wall[0] < parse(first["endsAt"])
    assert parse(second["startsAt"]) <= parse(second["endsAt"]) == pytest.approx(wall[0], abs=0.001)


def test_a_resolution_is_never_sent_ending_in_the_future(receiver):
    now = time.time()
    sink = AlertmanagerSink(receiver.url, clock=lambda: now)
    resolved = alert("resolved", t=now + 3600)  # resolved before the clock stepped back an hour
    sink.notify(resolved)
    sink.close()
    (sent,) = alerts_of(receiver)
    assert parse(sent["startsAt"]) <= parse(sent["endsAt"]) == pytest.approx(now, abs=0.001)


def test_posts_with_requests_and_keeps_no_netrc_credentials_over_the_given_ones(receiver, monkeypatch, tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine {LOOPBACK} login intruder password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    sink = AlertmanagerSink(receiver.url, bearer_token="given-token")
    sink.notify(alert())
    sink.close()
    headers = {k.lower(): v for k, v in receiver.requests[0][1].items()}
    assert headers["authorization"] == "Bearer given-token"
    assert headers["user-agent"].startswith("python-requests/")


def test_url_credentials_become_the_authorization_header_and_are_never_shown(receiver, caplog):
    user_url = receiver.url.replace("http://", "http://am-user:s3cret%40token@")
    with caplog.at_level(logging.DEBUG, logger="p2p_telemetry"):
        sink = AlertmanagerSink(user_url)
        sink.notify(alert())
        sink.close()
        down = AlertmanagerSink(f"http://am-user:s3cret@{LOOPBACK}:{free_port()}", min_backoff=0.05)
        down.notify(alert())
        wait_for(lambda: down.failures, 5, "a failed send")
        down.close()
    headers = {k.lower(): v for k, v in receiver.requests[0][1].items()}
    assert headers["authorization"] == "Basic " + base64.b64encode(b"am-user:s3cret@token").decode()
    assert "s3cret" not in caplog.text + repr(sink) + repr(down) + sink.url
    with pytest.raises(ValueError) as error:
        AlertmanagerSink("ftp://am-user:s3cret@host/")
    assert "s3cret" not in str(error.value)


def test_bad_headers_are_refused_naming_the_header_never_its_value():
    with pytest.raises(ValueError, match="X-Token") as error:
        AlertmanagerSink("http://127.0.0.1:9093", headers={"X-Token": "s3cret\r\nX-Injected: 1"})
    assert "s3cret" not in str(error.value)
    with pytest.raises(TypeError, match="X-Token"):
        AlertmanagerSink("http://127.0.0.1:9093", headers={"X-Token": 42})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="max_backoff"):
        AlertmanagerSink("http://127.0.0.1:9093", min_backoff=2, max_backoff=1)
    with pytest.raises(ValueError, match="verify"):
        AlertmanagerSink("https://127.0.0.1:9093", verify="/nonexistent/ca.pem")
    with pytest.raises(TypeError, match="verify"):
        AlertmanagerSink("https://127.0.0.1:9093", verify=1)  # type: ignore[arg-type]


# -- jittered exponential backoff ------------------------------------------------------------------------

def test_backoff_grows_exponentially_within_jittered_bounds_and_resets():
    backoff = Backoff(0.5, 30.0)
    caps = [0.5, 1, 2, 4, 8, 16, 30, 30]
    for cap in caps:
        assert cap / 2 <= backoff.next() <= cap
    backoff.reset()
    assert 0.25 <= backoff.next() <= 0.5
    lowest = Backoff(1.0, 8.0, uniform=lambda low, high: low)
    assert [lowest.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_nodes_that_fail_together_do_not_retry_in_step():
    fleet = [Backoff(0.5, 30.0) for _ in range(200)]
    for _ in range(3):
        delays = [b.next() for b in fleet]
    assert len({round(d, 3) for d in delays}) > 150  # spread over [1, 2] s, not one instant
    assert max(delays) - min(delays) > 0.5
