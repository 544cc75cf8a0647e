"""The alert state machine: rules over collected readings, with Prometheus's semantics of for and keep_firing_for.

Two clocks: the wall clock stamps alerts (``active_since``, ``fired_at``, ``resolved_at``, what
Alertmanager and people read); a monotonic clock measures every duration (``for``,
``keep_firing_for``, the windows of ``increase``/``rate``), so that a wall clock stepped back or
forward neither blinds a rule nor fires a pending alert early.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .rules import OPS, AlertRule, label_name, render

__all__ = ["Alert", "Evaluator", "Readings", "RuleErrorHandler", "extrapolated_increase", "PENDING", "FIRING",
           "RESOLVED", "INACTIVE"]

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
INACTIVE = "inactive"  # a pending alert whose condition cleared before it fired

# What one collection read: metric name -> [(attributes, value)] (each list is instruments.Points of that metric).
Readings = Mapping[str, Sequence[tuple[Mapping[str, Any], float]]]
RuleErrorHandler = Callable[[AlertRule, Exception], None]
LabelKey = tuple[tuple[str, str], ...]


@dataclass
class Alert:
    """One alert of a rule and matched attribute set (or a manual one), as sinks and callers see it.

    Times are wall-clock seconds (``time.time()``).
    """

    name: str
    state: str
    labels: dict[str, str]
    value: float
    active_since: float
    resolved_at: float | None = None
    fired_at: float | None = None
    severity: str = "warning"
    summary: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    keep_firing_since: float | None = field(default=None, repr=False)  # when its condition stopped holding

    @property
    def key(self) -> LabelKey:
        """The alert's identity: its sorted labels."""
        return tuple(sorted(self.labels.items()))

    def snapshot(self) -> Alert:
        """A copy that later state changes do not touch."""
        return replace(self, labels=dict(self.labels), attributes=dict(self.attributes))


def extrapolated_increase(samples: Sequence[tuple[float, float]], start: float, end: float) -> float | None:
    """PromQL's ``increase()`` over ``[start, end]`` from ``(time, value)`` samples (Prometheus 2.x)."""
    if len(samples) < 2:
        return None
    first_t, first_v = samples[0]
    last_t = samples[-1][0]
    sampled = last_t - first_t
    if sampled <= 0:
        return None
    result, previous = 0.0, 0.0
    for _, value in samples:
        if value < previous:  # a counter reset: what was counted before it still counts
            result += previous
        previous = value
    result += previous - first_v
    to_start, to_end = first_t - start, end - last_t
    average = sampled / (len(samples) - 1)
    if result > 0 and first_v >= 0:  # a counter does not extrapolate below zero
        to_start = min(to_start, sampled * (first_v / result))
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2) + (
        to_end if to_end < threshold else average / 2)
    return result * (interval / sampled)


@dataclass
class _Tracked:
    """An alert of a rule and the monotonic times its durations are measured from."""

    alert: Alert
    active_since: float
    quiet_since: float | None = None  # the condition stopped holding (keep_firing_for counts from here)


class _RuleState:
    """What the evaluator keeps for one rule: counter samples per series (monotonic time) and the rule's alerts."""

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.samples: dict[LabelKey, deque[tuple[float, float]]] = {}
        self.alerts: dict[LabelKey, _Tracked] = {}
        self.last_eval: float | None = None


class Evaluator:
    """Evaluates rules over readings; keeps the alerts. Not thread-safe by itself (AlertManager locks it).

    ``node_labels`` (``service_name``, ``service_instance_id``) go on every alert created from then on.
    """

    def __init__(self, rules: Iterable[AlertRule], node_labels: Mapping[str, str] | None = None) -> None:
        self.rules = list(rules)
        self.node_labels: dict[str, str] = dict(node_labels or {})
        self._states = [_RuleState(rule) for rule in self.rules]
        self._manual: dict[LabelKey, Alert] = {}

    def evaluate(self, now: float, readings: Readings, *, monotonic: float | None = None,
                 on_error: RuleErrorHandler | None = None) -> list[Alert]:
        """Evaluate every rule once; returns the alerts whose state changed (snapshots).

        ``now`` is the wall-clock time that stamps alerts; ``monotonic`` the time durations are
        measured on (default ``now``, for callers with one clock). A rule that raises is reported to
        ``on_error`` and the others are still evaluated; without ``on_error`` the error propagates.
        """
        at = now if monotonic is None else monotonic
        changes: list[Alert] = []
        for state in self._states:
            try:
                changes.extend(self._evaluate_rule(state, now, at, readings.get(state.rule.metric, ())))
            except Exception as error:
                if on_error is None:
                    raise
                on_error(state.rule, error)
        return changes

    def _evaluate_rule(self, state: _RuleState, now: float, at: float,
                       points: Sequence[tuple[Mapping[str, Any], float]]) -> list[Alert]:
        rule = state.rule
        values = self._aggregate(rule, self._series(state, at, points))
        compare = OPS[rule.op]
        results = {}
        for attributes, value in values:
            if compare(float(value), rule.threshold):
                alert_labels = {**{label_name(k): v for k, v in attributes.items()}, **rule.labels,
                                **self.node_labels, "severity": rule.severity, "alertname": rule.name}
                results[tuple(sorted(alert_labels.items()))] = (alert_labels, attributes, float(value))
        state.last_eval = at
        return self._transition(state, now, at, results)

    @staticmethod
    def _series(state: _RuleState, at: float, points: Sequence[tuple[Mapping[str, Any], float]]
                ) -> list[tuple[dict[str, str], float]]:
        rule = state.rule
        wanted = rule.attributes.items()
        matched = [({k: str(v) for k, v in a.items()}, float(v)) for a, v in points
                   if all(str(a.get(k)) == want for k, want in wanted)]
        if rule.aggregation == "value":
            return matched
        start = at - rule.window
        out = []
        for attributes, value in matched:
            key = tuple(sorted(attributes.items()))
            samples = state.samples.get(key)
            if samples is None:
                samples = state.samples[key] = deque()
                if state.last_eval is not None:  # absent at the last evaluation: it was 0 there
                    samples.append((state.last_eval, 0.0))
            samples.append((at, value))
            increase = extrapolated_increase(_prune(samples, start), start, at)
            if increase is not None:
                out.append((attributes, increase / rule.window if rule.aggregation == "rate" else increase))
        for key in [k for k, s in state.samples.items() if not _prune(s, start)]:
            del state.samples[key]
        return out

    @staticmethod
    def _aggregate(rule: AlertRule, series: list[tuple[dict[str, str], float]]
                   ) -> list[tuple[dict[str, str], float]]:
        keys = rule.group_by
        if keys is None:
            return series
        sums: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[float]]] = {}
        for attributes, value in series:
            group = {k: attributes[k] for k in keys if k in attributes}
            sums.setdefault(tuple(group.items()), (group, []))[1].append(value)
        return [(group, sum(values)) for group, values in sums.values()]

    @staticmethod
    def _transition(state: _RuleState, now: float, at: float,
                    results: dict[LabelKey, tuple[dict[str, str], dict[str, str], float]]) -> list[Alert]:
        rule, tracked, changes = state.rule, state.alerts, []
        for key, (alert_labels, attributes, value) in results.items():
            entry = tracked.get(key)
            if entry is None:
                entry = tracked[key] = _Tracked(Alert(rule.name, PENDING, alert_labels, value, now,
                                                      severity=rule.severity, attributes=attributes), at)
                changes.append(entry.alert)
            entry.alert.value = value
            entry.alert.summary = render(rule.summary, value, attributes)
            entry.quiet_since = entry.alert.keep_firing_since = None
        for key, entry in list(tracked.items()):
            alert = entry.alert
            if key not in results:
                if alert.state == FIRING and rule.keep_firing_for > 0:
                    if entry.quiet_since is None:
                        entry.quiet_since, alert.keep_firing_since = at, now
                    if at - entry.quiet_since < rule.keep_firing_for:
                        continue
                del tracked[key]
                alert.state = INACTIVE if alert.state == PENDING else RESOLVED
                alert.resolved_at = now
                changes.append(alert)
                continue
            if alert.state == PENDING and at - entry.active_since >= rule.for_:
                alert.state, alert.fired_at = FIRING, now
                if not any(a is alert for a in changes):
                    changes.append(alert)
        return [a.snapshot() for a in changes]

    def trigger(self, name: str, now: float, severity: str = "warning", labels: Mapping[str, str] | None = None,
                value: float = 1.0, summary: str = "") -> Alert:
        """Fire a manual alert now (it stays firing until ``resolve``); the node's labels override ``labels``."""
        alert_labels = {**{label_name(k): str(v) for k, v in (labels or {}).items()}, **self.node_labels,
                        "severity": severity, "alertname": name}
        key = tuple(sorted(alert_labels.items()))
        alert = self._manual.get(key)
        if alert is None:
            alert = self._manual[key] = Alert(name, FIRING, alert_labels, value, now, fired_at=now,
                                              severity=severity, summary=summary or f"{name} (triggered manually)")
        alert.value = value
        return alert.snapshot()

    def resolve(self, name: str, now: float) -> list[Alert]:
        """Resolve the manual alerts named ``name``."""
        resolved = []
        for key, alert in list(self._manual.items()):
            if alert.name == name:
                del self._manual[key]
                alert.state, alert.resolved_at = RESOLVED, now
                resolved.append(alert.snapshot())
        return resolved

    def alerts(self) -> list[Alert]:
        """Pending and firing alerts (snapshots), by name and labels."""
        found = [t.alert for s in self._states for t in s.alerts.values()] + list(self._manual.values())
        return sorted((a.snapshot() for a in found), key=lambda a: (a.name, a.key))


def _prune(samples: deque[tuple[float, float]], start: float) -> deque[tuple[float, float]]:
    while samples and samples[0][0] < start:
        samples.popleft()
    return samples
