"""fork() after AlertManager.start(): the child never deadlocks on a lock another thread held, and says honestly
that its evaluation thread is gone (running is False; start() works again; the sink's sender restarts on notify)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable

import pytest
from alert_nodes import node_provider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from p2p_telemetry import AlertConfig, AlertManager, AlertmanagerSink, CallbackSink, MetricsCollector, ResourceMetrics
from p2p_telemetry.alerting.evaluator import Alert
from realstack import Receiver, wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
CHILD_TIMEOUT = 30.0  # a deadlocked child is killed after this; a healthy one exits in well under a second


def in_child(check: Callable[[], None]) -> None:
    """Fork; the child runs ``check`` and exits 0, or 1 with its traceback; fail unless the child passed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            check()
            code = 0
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + CHILD_TIMEOUT
    status = None
    while status is None and time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            status = None
            time.sleep(0.02)  # polling the child's exit, a bounded wait
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        pytest.fail(f"the forked child deadlocked: killed after {CHILD_TIMEOUT} s")
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode(errors="replace")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the child failed:\n{report}"


def test_a_child_forked_during_an_evaluation_evaluates_and_restarts():
    provider = node_provider("node-1", InMemoryMetricReader())
    collector = MetricsCollector(provider, sample_resources=False)
    parent = os.getpid()
    inside, release = threading.Event(), threading.Event()
    seen: list[Alert] = []

    def slow_sink(alert: Alert) -> None:  # a sink that takes its time, in the parent's evaluation thread
        seen.append(alert)
        if os.getpid() == parent:
            inside.set()
            release.wait(CHILD_TIMEOUT)

    manager = AlertManager(AlertConfig(sinks=[CallbackSink(slow_sink)]), provider).start(0.05)
    collector.record_resource_metrics(ResourceMetrics(cpu_usage=95.0))
    try:
        assert inside.wait(CHILD_TIMEOUT), "the evaluation never reached the sink"

        def child() -> None:
            assert not manager.running  # its thread did not follow into the child
            assert manager.has_alert("HighCpuUsage")  # the state it had at fork
            collector.record_resource_metrics(ResourceMetrics(cpu_usage=10.0))
            changes = manager.evaluate()  # the evaluation lock the parent's thread held is free here
            assert [(a.name, a.state) for a in changes] == [("HighCpuUsage", "resolved")]
            before = manager.evaluations
            assert manager.start(0.02).running
            wait_for(lambda: manager.evaluations >= before + 2, 10, "evaluations on the child's own thread")
            manager.stop()
            assert not manager.running

        in_child(child)
        release.set()
        assert manager.running and manager.has_alert("HighCpuUsage")  # the parent's own state, untouched
    finally:
        release.set()
        manager.stop()
        provider.shutdown()
    assert [(a.name, a.state) for a in seen] == [("HighCpuUsage", "firing")]


class _Blocking(logging.Handler):
    """A log handler that hangs in the parent on the sink's "queue full" warning (logged under the sink's lock)."""

    def __init__(self, parent: int) -> None:
        super().__init__(logging.WARNING)
        self.parent = parent
        self.entered, self.unblock = threading.Event(), threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if os.getpid() == self.parent and "queue full" in record.getMessage():
            self.entered.set()
            self.unblock.wait(CHILD_TIMEOUT)


def firing(name: str) -> Alert:
    now = time.time()
    return Alert(name, "firing", {"alertname": name, "severity": "warning"}, 1.0, now, fired_at=now)


def test_a_child_forked_while_the_sink_is_locked_notifies_and_sends_from_a_new_thread():
    gate = threading.Event()  # Alertmanager answers nothing until the child has forked

    def answer(body: object) -> int:
        gate.wait(CHILD_TIMEOUT)
        return 200

    receiver = Receiver(status=answer)
    sink = AlertmanagerSink(receiver.url, queue_size=1, batch_size=1, timeout=CHILD_TIMEOUT)
    blocking = _Blocking(os.getpid())
    logger = logging.getLogger("p2p_telemetry")
    logger.addHandler(blocking)
    try:
        sink.notify(firing("InFlight"))
        wait_for(lambda: receiver.requests, 10, "the first POST, held by Alertmanager")
        sink.notify(firing("Queued"))
        notifier = threading.Thread(target=sink.notify, args=(firing("Overflow"),), daemon=True)
        notifier.start()  # the queue is full: it logs a warning while holding the sink's lock, and hangs there
        assert blocking.entered.wait(CHILD_TIMEOUT)

        def child() -> None:
            sink.notify(firing("FromChild"))  # the lock held in the parent is a fresh one here
            wait_for(lambda: sink.sent >= 1, 10, "a send from the child's own sender thread")
            sink.close()

        threading.Timer(0.0, gate.set).start()
        in_child(child)
    finally:
        gate.set()
        blocking.unblock.set()
        logger.removeHandler(blocking)
        sink.close()
        receiver.close()
    names = {a["labels"]["alertname"] for body in receiver.bodies() for a in body}
    assert "FromChild" in names and "InFlight" in names
