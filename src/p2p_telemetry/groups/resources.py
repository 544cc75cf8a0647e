"""Resource group: the node process's CPU, memory, bandwidth and storage, read with psutil."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import psutil
from opentelemetry.semconv._incubating.metrics import process_metrics

from .._fork import after_fork_in_child
from ..attributes import IO_DIRECTION
from ..bounds import count_problem, seconds_problem
from ..instruments import Points
from ..metric import Kind, MetricSpec
from ..model import ResourceMetrics
from .base import GroupContext, MetricGroup
from .network import NetworkGroup

__all__ = ["ResourceGroup", "Reading", "SPECS", "CPU_UTILIZATION", "MEMORY_USAGE", "BANDWIDTH", "STORAGE_USAGE",
           "PROCESS_CPU_UTILIZATION", "PROCESS_MEMORY_USAGE", "RESOURCE_NAMES", "SAME_FIGURE"]

CPU_UTILIZATION = MetricSpec(
    "p2p.node.cpu.utilization", Kind.GAUGE, "1", "CPU time of the node process over wall time, per CPU (0..1).",
    (), "p2p_node_cpu_utilization")
MEMORY_USAGE = MetricSpec(
    "p2p.node.memory.usage", Kind.UP_DOWN_COUNTER, "By", "Resident set size of the node process.",
    (), "p2p_node_memory_usage_bytes")
BANDWIDTH = MetricSpec(
    "p2p.node.bandwidth", Kind.GAUGE, "By/s", "Bytes per second this node moved over the recent past.",
    (IO_DIRECTION,), "p2p_node_bandwidth_bytes_per_second")
STORAGE_USAGE = MetricSpec(
    "p2p.node.storage.usage", Kind.UP_DOWN_COUNTER, "By", "Bytes used by the node's data directory.",
    (), "p2p_node_storage_usage_bytes")
# The same two figures under the semantic-convention names that opentelemetry-instrumentation-system-metrics
# also uses, for nodes that pick them (``resource_names="semconv"`` or ``"both"``).
PROCESS_CPU_UTILIZATION = MetricSpec(
    process_metrics.PROCESS_CPU_UTILIZATION, Kind.GAUGE, "1",
    "CPU time of the process over wall time, per CPU (0..1) (as p2p.node.cpu.utilization).",
    (), "process_cpu_utilization")
PROCESS_MEMORY_USAGE = MetricSpec(
    process_metrics.PROCESS_MEMORY_USAGE, Kind.UP_DOWN_COUNTER, "By",
    "Resident set size of the process (as p2p.node.memory.usage).", (), "process_memory_usage_bytes")
SPECS = (CPU_UTILIZATION, MEMORY_USAGE, BANDWIDTH, STORAGE_USAGE, PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE)
#: The semantic-convention name of a figure -> its catalogue name (alert rules name the latter).
SAME_FIGURE = {PROCESS_CPU_UTILIZATION.name: CPU_UTILIZATION.name, PROCESS_MEMORY_USAGE.name: MEMORY_USAGE.name}
#: Which names the CPU and memory figures are reported under.
RESOURCE_NAMES = {"p2p": ((CPU_UTILIZATION, MEMORY_USAGE),),
                  "semconv": ((PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE),),
                  "both": ((CPU_UTILIZATION, MEMORY_USAGE), (PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE))}

logger = logging.getLogger("p2p_telemetry")

_MAX_AGE = 0.25  # seconds a reading is shared: every callback of one collection sees the same one
_CPU_WINDOW = 0.5  # shortest wall time a CPU figure is computed over
_BANDWIDTH_WINDOW = 10.0
_STORAGE_EVERY = 30.0
Clock = Callable[[], float]
_TRANSMIT = {IO_DIRECTION: "transmit"}
_RECEIVE = {IO_DIRECTION: "receive"}


@dataclass(frozen=True)
class Reading:
    """What the resource gauges report; None leaves a metric out of the collection."""

    cpu: float | None = None  # utilization, 0..1
    memory: int | None = None
    transmit: float | None = None  # bytes/s
    receive: float | None = None
    storage: int | None = None


class _Cpu:
    """Process CPU time over wall time per CPU, primed at creation so the first figure is real."""

    def __init__(self, process: psutil.Process, clock: Clock) -> None:
        self._clock = clock
        self._process = process
        self._cpus = psutil.cpu_count() or 1
        self._last = self._times()
        self._value: float | None = None

    def _times(self) -> tuple[float, float]:
        times = self._process.cpu_times()
        return self._clock(), times.user + times.system

    def read(self) -> float:
        now, used = self._times()
        wall = now - self._last[0]
        if wall >= _CPU_WINDOW or self._value is None:
            if wall >= 0.05:
                value = (used - self._last[1]) / wall / self._cpus
            else:  # read right after start: the process's lifetime average is the real figure
                value = used / max(time.time() - self._process.create_time(), 1e-3) / self._cpus
            self._value = min(max(value, 0.0), 1.0)
            if wall >= 0.05:
                self._last = (now, used)
        return self._value


class _Bandwidth:
    """Bytes per second from the node's own ``p2p.network.io`` totals over the recent past."""

    def __init__(self, totals: Callable[[], tuple[int, int]], clock: Clock) -> None:
        self._clock = clock
        self._totals = totals
        self._samples: deque[tuple[float, int, int]] = deque([(clock(), *totals())])

    def read(self) -> tuple[float, float]:
        now = self._clock()
        transmit, receive = self._totals()
        samples = self._samples
        while len(samples) > 1 and now - samples[1][0] >= _BANDWIDTH_WINDOW:
            samples.popleft()
        then, transmit_then, receive_then = samples[0]
        if now - samples[-1][0] >= 0.1:
            samples.append((now, transmit, receive))
        wall = max(now - then, 1e-3)
        return (transmit - transmit_then) / wall, (receive - receive_then) / wall


class _Storage:
    """Bytes under a directory, walked at most every 30 s."""

    def __init__(self, path: str, clock: Clock) -> None:
        self._clock = clock
        self._path = path
        self._value: int | None = None
        self._at = float("-inf")

    def read(self) -> int | None:
        now = self._clock()
        if now - self._at >= _STORAGE_EVERY:
            self._at = now
            self._value = _du(self._path) if os.path.isdir(self._path) else None
        return self._value


def _du(path: str) -> int:
    total, stack = 0, [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        pass
        except OSError:
            pass
    return total


class ResourceGroup(MetricGroup):
    """Reads psutil once per collection and shares the reading among the four callbacks."""

    name: ClassVar[str] = "resources"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        options = context.options
        self._sample = options.sample_resources
        self._process = psutil.Process()
        self._clock: Clock = options.clock
        self._cpu = _guarded(lambda: _Cpu(self._process, self._now), "CPU")
        self._bandwidth = _Bandwidth(context.group(NetworkGroup).io_totals, self._now)
        self._storage = _Storage(os.fspath(options.data_dir), self._now) if options.data_dir is not None else None
        self._reading = Reading()
        self._read_at = float("-inf")
        self._lock = threading.Lock()
        after_fork_in_child(self)
        self._failed: set[str] = set()
        for cpu, memory in RESOURCE_NAMES[options.resource_names]:
            self.observe(cpu, self._observe_cpu)
            self.observe(memory, self._observe_memory)
        self.observe(BANDWIDTH, self._observe_bandwidth)
        self.observe(STORAGE_USAGE, self._observe_storage)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._process = psutil.Process()  # the child's own process, not the parent's
        if self._cpu is not None:
            self._cpu = _guarded(lambda: _Cpu(self._process, self._now), "CPU")

    def _now(self) -> float:
        return self._clock()

    def sample(self) -> Reading:
        """Read psutil now (what a MonitoringSystem does every ``metrics_interval``)."""
        with self._lock:
            if self._sample:
                self._reading = self._read()
            self._read_at = self._now()
            return self._reading

    def current(self) -> Reading:
        """The reading the gauges report now: shared for 0.25 s, then read again."""
        if self._sample and self._now() - self._read_at >= _MAX_AGE:
            return self.sample()
        return self._reading

    def record(self, metrics: ResourceMetrics) -> None:
        """The seed's ``record_resource_metrics``: CPU in percent, memory and storage in bytes, bandwidth in bytes/s."""
        try:
            changes: dict[str, Any] = {}
            if metrics.cpu_usage is not None and self._valid(metrics.cpu_usage, seconds_problem, 100):
                changes["cpu"] = metrics.cpu_usage / 100
            if metrics.memory_usage is not None and self._valid(metrics.memory_usage, count_problem):
                changes["memory"] = metrics.memory_usage
            if metrics.bandwidth_usage is not None and self._valid(metrics.bandwidth_usage, seconds_problem):
                # The seed's figure has no direction: split evenly, so the two series add up to it.
                changes["transmit"] = changes["receive"] = metrics.bandwidth_usage / 2
            if metrics.storage_usage is not None and self._valid(metrics.storage_usage, count_problem):
                changes["storage"] = metrics.storage_usage
            base = self.current()  # a reading to amend: the fields not given keep their live values
            with self._lock:
                self._reading = replace(base, **changes)
                self._read_at = self._now()
        except Exception:
            self._rejections.reject("type", "record_resource_metrics")

    def snapshot(self) -> ResourceMetrics:
        """The seed's view of what the gauges report now (CPU in percent)."""
        reading = self.current()
        bandwidth = None if reading.transmit is None else reading.transmit + (reading.receive or 0.0)
        return ResourceMetrics(
            cpu_usage=None if reading.cpu is None else reading.cpu * 100, memory_usage=reading.memory,
            bandwidth_usage=bandwidth, storage_usage=reading.storage)

    def _valid(self, value: object, problem_of: Callable[[object], str | None], upper: float | None = None) -> bool:
        problem = problem_of(value) or (
            "range" if upper is not None and value > upper else None)  # type: ignore[operator]
        if problem:
            self._rejections.reject(problem, "record_resource_metrics")
        return not problem

    def _read(self) -> Reading:
        cpu = self._try("cpu", lambda: self._cpu.read()) if self._cpu is not None else None
        memory = self._try("memory", lambda: self._process.memory_info().rss)
        bandwidth = self._try("bandwidth", self._bandwidth.read)
        storage = self._try("storage", self._storage.read) if self._storage is not None else self._reading.storage
        transmit, receive = bandwidth if bandwidth is not None else (None, None)
        return Reading(cpu, memory, transmit, receive, storage)

    def _try(self, what: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except Exception as error:  # one failing psutil call leaves its metric out, nothing else
            if what not in self._failed:
                self._failed.add(what)
                logger.warning("p2p-telemetry: reading %s failed, leaving it out: %r", what, error)
            return None

    def _observe_cpu(self) -> Points:
        return _single(self.current().cpu)

    def _observe_memory(self) -> Points:
        return _single(self.current().memory)

    def _observe_storage(self) -> Points:
        return _single(self.current().storage)

    def _observe_bandwidth(self) -> Points:
        reading = self.current()
        points = []
        if reading.transmit is not None:
            points.append((_TRANSMIT, reading.transmit))
        if reading.receive is not None:
            points.append((_RECEIVE, reading.receive))
        return points


def _single(value: float | None) -> Points:
    return [] if value is None else [({}, value)]


def _guarded(make: Callable[[], Any], what: str) -> Any:
    try:
        return make()
    except Exception as error:
        logger.warning("p2p-telemetry: %s readings unavailable on this platform: %r", what, error)
        return None
