"""AlertManager: reads the catalogue's metrics through its own reader, evaluates rules on a thread, notifies sinks."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource

from .. import catalogue as c
from .._fork import after_fork_in_child
from ..bounds import SettingTypeError, duration
from ..instruments import METER_NAME, InstrumentHub, Points
from . import rules
from .evaluator import FIRING, PENDING, Alert, Evaluator, Readings
from .rules import NODE_LABELS, AlertRule, AlertType, default_rules
from .sinks import LogSink, Sink

__all__ = ["AlertConfig", "AlertManager"]

logger = logging.getLogger("p2p_telemetry")
# Resource attribute -> alert label: the node's identity on every alert.
_IDENTITY = {SERVICE_NAME: rules.SERVICE_NAME, SERVICE_INSTANCE_ID: rules.SERVICE_INSTANCE_ID}


def _default_sinks() -> list[Sink]:
    return [LogSink()]


@dataclass
class AlertConfig:
    """Rules and sinks; ``AlertConfig()`` is the default rules and a ``LogSink()``."""

    rules: list[AlertRule] = field(default_factory=default_rules)
    sinks: list[Any] = field(default_factory=_default_sinks)

    def __post_init__(self) -> None:
        self.rules, self.sinks = list(self.rules), list(self.sinks)
        bad = [r for r in self.rules if not isinstance(r, AlertRule)]
        if bad:
            raise ValueError(f"AlertConfig rules must be AlertRule objects, got {bad[0]!r}")
        names = [r.name for r in self.rules]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"AlertConfig rules: more than one rule is named {duplicate!r}")
        bad = [s for s in self.sinks if not callable(getattr(s, "notify", None))]
        if bad:
            raise ValueError(f"AlertConfig sinks must have a notify(alert) method, got {bad[0]!r}")


def _name(alert: AlertType | str) -> str:
    if isinstance(alert, AlertType):
        return alert.value
    if isinstance(alert, str):
        return AlertType[alert].value if alert in AlertType.__members__ else alert
    raise ValueError(f"an alert is named by an AlertType or a str, got {alert!r}")


def _gauge_attributes(alert: Alert) -> dict[str, str]:
    """An alert's attributes on p2p.alert.active: as Prometheus's ALERTS series, plus the node's identity."""
    attributes = {c.ALERTNAME: alert.name, c.ALERTSTATE: alert.state, c.SEVERITY: alert.severity}
    attributes.update((label, alert.labels[label]) for label in NODE_LABELS if label in alert.labels)
    return attributes


class AlertManager:
    """Evaluates ``config.rules`` every interval over what its InMemoryMetricReader collects.

    Given an SDK MeterProvider it attaches its reader with ``add_metric_reader`` and removes
    it (which shuts it down) on ``stop()``; or it reads a ``reader`` that ``configure(extra_readers=...)``
    put in. Nothing here raises into the node: a failing rule or sink is logged once and counted.

    ``clock`` is the wall clock that stamps alerts (``active_since``, ``fired_at``, ``resolved_at``);
    ``monotonic`` the clock every duration is measured on (``for``, ``keep_firing_for``, the windows
    of ``increase`` and ``rate``). Tests inject both; a node leaves them alone.
    Every alert carries the node's identity, ``service_name`` and ``service_instance_id``, read
    from the Resource of the collected metrics.
    """

    def __init__(self, config: AlertConfig | None = None, meter_provider: Any = None, *,
                 reader: MetricReader | None = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config if config is not None else AlertConfig()
        if not isinstance(self.config, AlertConfig):
            raise SettingTypeError(f"config must be an AlertConfig, got {config!r}")
        for name, value in (("clock", clock), ("monotonic", monotonic)):
            if not callable(value):
                raise SettingTypeError(f"AlertManager {name} must be a callable returning seconds, got {value!r}")
        self.meter_provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self.evaluator = Evaluator(self.config.rules)
        self.clock = clock
        self.monotonic = monotonic
        self.rule_errors = self.sink_errors = self.collect_errors = self.evaluations = 0
        self._given_reader = reader
        self._reader: MetricReader | None = reader
        self._attached_to: SDKMeterProvider | None = None
        self._gauge = False
        self._identity_known = False
        self._wanted = {rule.metric for rule in self.config.rules}
        self._warned: set[Any] = set()
        self._new_locks()
        after_fork_in_child(self)

    def _new_locks(self) -> None:
        # one evaluation at a time; reentrant so that a sink called by an evaluation may trigger_alert()
        self._tick_lock = threading.RLock()
        self._state_lock = threading.Lock()  # the alerts; never held while collecting
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _after_fork_in_child(self) -> None:
        # The evaluation thread did not follow into the child and its locks may be held forever
        # there: fresh ones, and an honest running == False until start() is called again.
        self._new_locks()

    # -- running ----------------------------------------------------------------------------------

    def start(self, interval: float | timedelta | str = 1.0) -> AlertManager:
        """Evaluate now and then every ``interval`` (seconds, a timedelta or "30s") on a daemon thread (idempotent)."""
        seconds = duration("alert_check_interval", interval)
        with self._run_lock:
            if self.running:
                return self
            self._attach()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(seconds,), name="p2p-telemetry-alerts",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (within one interval), remove the reader, close the sinks (idempotent)."""
        with self._run_lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            if thread is not None and thread is not threading.current_thread():
                thread.join()
            with self._tick_lock:
                self._detach()
            for sink in self.config.sinks:
                try:
                    close = getattr(sink, "close", None)
                    if close is not None:
                        close()
                except Exception:
                    logger.exception("p2p-telemetry: closing alert sink %r failed", sink)

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()`` while the evaluation thread lives (False in a forked child)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self, interval: float) -> None:
        while True:
            started = time.monotonic()
            self.evaluate()
            if self._stop.wait(max(0.0, interval - (time.monotonic() - started))):
                return

    # -- evaluating -------------------------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> list[Alert]:
        """Collect and evaluate every rule once (stamped ``now``, default the clock); returns the state changes."""
        with self._tick_lock:
            try:
                self._attach()
                readings = self._collect()
            except Exception:
                self.collect_errors += 1
                self._once("collect", "p2p-telemetry: collecting metrics for the alert evaluator failed")
                return []
            with self._state_lock:
                changes = self.evaluator.evaluate(self.clock() if now is None else now, readings,
                                                  monotonic=self.monotonic(), on_error=self._rule_failed)
                self.evaluations += 1
            self._notify(changes)
            return changes

    def _rule_failed(self, rule: AlertRule, error: Exception) -> None:
        self.rule_errors += 1
        self._once(("rule", rule.name), f"p2p-telemetry: alert rule {rule.name} failed", error=error)

    def _collect(self) -> Readings:
        reader = self._reader
        if reader is None:
            return {}
        data = reader.get_metrics_data()  # type: ignore[attr-defined]
        readings: dict[str, list[tuple[Any, float]]] = {}
        same_figure: dict[str, list[tuple[Any, float]]] = {}  # reported under its semantic-convention name
        for resource_metrics in (data.resource_metrics if data is not None else ()):
            self._learn_identity(resource_metrics.resource)
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name != METER_NAME:
                    continue
                for metric in scope_metrics.metrics:
                    name = c.SAME_FIGURE.get(metric.name, metric.name)
                    if name in self._wanted:
                        into = same_figure if name != metric.name else readings
                        into.setdefault(name, []).extend((p.attributes, p.value) for p in metric.data.data_points)
        for name, points in same_figure.items():
            readings.setdefault(name, points)
        return readings

    def _learn_identity(self, resource: Resource) -> None:
        """The node's identity from the provider's Resource (one provider, one Resource: learnt once)."""
        if self._identity_known:
            return
        attributes = resource.attributes
        labels = {label: str(attributes[key]) for key, label in _IDENTITY.items() if key in attributes}
        with self._state_lock:
            self.evaluator.node_labels = labels
            self._identity_known = True

    def _ensure_identity(self) -> None:
        """Collect once if no collection has told the node's identity yet (for a manual alert)."""
        if self._identity_known:
            return
        with self._tick_lock:
            try:
                self._attach()
                self._collect()
            except Exception:
                self.collect_errors += 1
                self._once("collect", "p2p-telemetry: collecting metrics for the alert evaluator failed")

    def _attach(self) -> None:
        if not self._gauge:
            InstrumentHub.for_provider(self.meter_provider).observe(c.ALERT_ACTIVE, self, self._observe_active)
            self._gauge = True
        if self._reader is not None:
            return
        provider = self.meter_provider
        if type(provider).__name__ == "_ProxyMeterProvider":
            provider = metrics.get_meter_provider()  # the proxy forwards to the SDK provider installed since
        if isinstance(provider, SDKMeterProvider):
            reader = InMemoryMetricReader()
            provider.add_metric_reader(reader)
            self._reader, self._attached_to = reader, provider
        else:
            self._once("no-sdk", f"p2p-telemetry: the alert evaluator has nothing to read: the MeterProvider is "
                       f"{type(provider).__name__}, not an OpenTelemetry SDK MeterProvider (no SDK installed?). "
                       "Call p2p_telemetry.configure() or pass an SDK MeterProvider; until then no rule is "
                       "evaluated (trigger_alert still works)", exc=False)

    def _detach(self) -> None:
        if self._gauge:
            InstrumentHub.for_provider(self.meter_provider).detach(self)
            self._gauge = False
        if self._attached_to is not None and self._reader is not None:
            try:
                self._attached_to.remove_metric_reader(self._reader)  # also shuts the reader down
            except Exception:
                logger.exception("p2p-telemetry: removing the alert evaluator's reader failed")
        if self._given_reader is None:
            self._reader, self._attached_to = None, None

    def _notify(self, changes: list[Alert]) -> None:
        for alert in changes:
            for sink in self.config.sinks:
                try:
                    sink.notify(alert)
                except Exception as error:
                    self.sink_errors += 1
                    self._once(("sink", id(sink)), f"p2p-telemetry: alert sink {sink!r} failed", error=error)

    def _once(self, key: Any, message: str, exc: bool = True, error: BaseException | None = None) -> None:
        if key not in self._warned:
            self._warned.add(key)
            if error is not None:
                logger.error(message, exc_info=error)
            elif exc:
                logger.exception(message)
            else:
                logger.warning(message)

    def _observe_active(self) -> Points:
        with self._state_lock:
            active = [a for a in self.evaluator.alerts() if a.state in (PENDING, FIRING)]
        counts = Counter(tuple(sorted(_gauge_attributes(a).items())) for a in active)
        return [(dict(key), n) for key, n in sorted(counts.items())]

    # -- the seed's API ---------------------------------------------------------------------------

    def has_alert(self, alert: AlertType | str) -> bool:
        """True while an alert of that name is firing."""
        name = _name(alert)
        return any(a.name == name and a.state == FIRING for a in self.active_alerts())

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (copies)."""
        with self._state_lock:
            return self.evaluator.alerts()

    def trigger_alert(self, alert: AlertType | str, value: float = 1.0, labels: dict[str, str] | None = None,
                      summary: str = "", severity: str | None = None) -> Alert:
        """Fire an alert by hand, as the seed does; it stays firing until ``resolve_alert``."""
        name = _name(alert)
        rule = next((r for r in self.config.rules if r.name == name), None)
        self._ensure_identity()
        with self._state_lock:
            fired = self.evaluator.trigger(name, self.clock(), severity or (rule.severity if rule else "warning"),
                                           labels, value, summary)
        self._notify([fired])
        return fired

    def resolve_alert(self, alert: AlertType | str) -> list[Alert]:
        """Resolve the alerts of that name that ``trigger_alert`` fired."""
        with self._state_lock:
            resolved = self.evaluator.resolve(_name(alert), self.clock())
        self._notify(resolved)
        return resolved

    def __repr__(self) -> str:
        return f"<AlertManager rules={len(self.config.rules)} running={self.running}>"
