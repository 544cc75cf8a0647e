"""fork() while other threads record and collect: the child never deadlocks on an inherited lock."""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from p2p_telemetry import HealthStatus, MetricsCollector, MonitoringConfig, MonitoringSystem

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

CHILDREN = 20


def _busy(collector: MetricsCollector, reader: InMemoryMetricReader, stop: threading.Event) -> list[threading.Thread]:
    def record(worker: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            collector.network.bytes_sent(10, protocol="task")
            collector.network.connection_setup(0.01, "outbound", "tcp")  # the SDK's own histogram locks
            collector.network.sent(f"/new/{i % 50}").add(1)  # new cells: the family's lock
            collector.network.bytes_sent(-1)  # rejections: their lock
            collector.peers.update(f"peer-{worker}-{i % 100}", health=HealthStatus.DEGRADED, latency=0.01,
                                   reputation=0.5)
            collector.protocols.increment("task", f"event-{i % 40}")

    def scrape() -> None:
        while not stop.is_set():
            reader.get_metrics_data()  # the SDK's collection lock, and the peer table's

    threads = [threading.Thread(target=record, args=(w,), daemon=True) for w in range(3)]
    threads.append(threading.Thread(target=scrape, daemon=True))
    for thread in threads:
        thread.start()
    return threads


def _child(collector: MetricsCollector, reader: InMemoryMetricReader, stacks: str) -> None:
    try:
        # Where a child hangs, if one does: the parent asks with SIGUSR1 before killing it.
        faulthandler.register(signal.SIGUSR1, file=open(f"{stacks}.{os.getpid()}", "w"),  # noqa: SIM115
                              all_threads=True)  # the child exits with os._exit: the file stays open till then
        collector.network.bytes_sent(1, protocol="task")
        collector.network.sent("/child/new").add(1)
        collector.network.bytes_sent(-5)
        collector.network.connection_setup(0.02, "outbound", "tcp")
        collector.peers.update("child-peer", latency=0.02)
        collector.protocols.increment("task", "child-event")
        data = reader.get_metrics_data()
        os._exit(0 if data is not None else 3)
    except BaseException:
        os._exit(2)


def _stacks_of(hung: list[int], stacks: str) -> str:
    for pid in hung:
        os.kill(pid, signal.SIGUSR1)
    time.sleep(0.5)  # the child writes its stacks as it handles the signal
    return "\n".join(Path(f"{stacks}.{pid}").read_text() for pid in hung if Path(f"{stacks}.{pid}").exists())


def _reap(pids: list[int], timeout: float, stacks: str | None = None) -> tuple[dict[int, int], list[int]]:
    deadline = time.monotonic() + timeout
    codes: dict[int, int] = {}
    while len(codes) < len(pids) and time.monotonic() < deadline:
        for pid in pids:
            if pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    hung = [pid for pid in pids if pid not in codes]
    if hung and stacks is not None:
        print(f"stacks of the {len(hung)} hung children:\n{_stacks_of(hung, stacks)}")
    for pid in hung:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return codes, hung


def test_children_forked_while_threads_record_never_deadlock(tmp_path):
    stacks = str(tmp_path / "stacks")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    collector = MetricsCollector(provider, sample_resources=False)
    stop = threading.Event()
    threads = _busy(collector, reader, stop)
    pids = []
    try:
        for _ in range(CHILDREN):
            time.sleep(0.005)
            pid = os.fork()
            if pid == 0:
                _child(collector, reader, stacks)
            pids.append(pid)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        codes, hung = _reap(pids, timeout=20.0, stacks=stacks)
        provider.shutdown()
    assert hung == [], f"{len(hung)} of {CHILDREN} children hung"
    assert set(codes.values()) == {0}


def test_a_forked_child_reports_its_monitoring_stopped_and_can_restart_it():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    config = MonitoringConfig(metrics_interval=0.05, alert_check_interval=60.0, sample_resources=False)
    with MonitoringSystem(config, meter_provider=provider) as monitoring:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                report = [monitoring.running]
                monitoring.start()
                report.append(monitoring.running)
                monitoring.stop()
                report.append(monitoring.running)
                os.write(write, repr(report).encode())
            finally:
                os._exit(0)
        os.close(write)
        codes, hung = _reap([pid], timeout=20.0)
        with os.fdopen(read) as pipe:
            report = pipe.read()
        assert monitoring.running  # the parent's is untouched
    provider.shutdown()
    assert hung == [] and codes[pid] == 0
    assert report == "[False, True, False]"
