"""The alert state machine: rules over collected points, with Prometheus's semantics of for and keep_firing_for."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .rules import OPS, AlertRule, label_name, render

__all__ = ["Alert", "Evaluator", "Points", "extrapolated_increase", "PENDING", "FIRING", "RESOLVED", "INACTIVE"]

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
INACTIVE = "inactive"  # a pending alert whose condition cleared before it fired
Points = Mapping[str, Sequence[tuple[Mapping[str, Any], float]]]  # metric name -> [(attributes, value)]
LabelKey = tuple[tuple[str, str], ...]


@dataclass
class Alert:
    """One alert of a rule and matched attribute set (or a manual one), as sinks and callers see it."""

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
    keep_firing_since: float | None = field(default=None, repr=False)

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


class _RuleState:
    """What the evaluator keeps for one rule: counter samples per series and the rule's alerts."""

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.samples: dict[LabelKey, deque[tuple[float, float]]] = {}
        self.alerts: dict[LabelKey, Alert] = {}
        self.last_eval: float | None = None


class Evaluator:
    """Evaluates rules at given times over given points; keeps the alerts. Not thread-safe by itself."""

    def __init__(self, rules: Iterable[AlertRule]) -> None:
        self.rules = list(rules)
        self._states = [_RuleState(rule) for rule in self.rules]
        self._manual: dict[LabelKey, Alert] = {}

    def evaluate(self, now: float, points: Points) -> list[Alert]:
        """One evaluation at ``now``; returns the alerts whose state changed (snapshots)."""
        changes: list[Alert] = []
        for state in self._states:
            changes.extend(self.evaluate_rule(state, now, points.get(state.rule.metric, ())))
        return changes

    def evaluate_rule(self, state: _RuleState, now: float, points: Sequence[tuple[Mapping[str, Any], float]]
                      ) -> list[Alert]:
        """Evaluate one rule (raises on a broken rule; the caller isolates it)."""
        rule = state.rule
        values = self._aggregate(state, self._series(state, now, points))
        compare = OPS[rule.op]
        results = {}
        for attributes, value in values:
            if compare(float(value), rule.threshold):
                alert_labels = {**{label_name(k): v for k, v in attributes.items()}, **rule.labels,
                                "severity": rule.severity, "alertname": rule.name}
                results[tuple(sorted(alert_labels.items()))] = (alert_labels, attributes, float(value))
        state.last_eval = now
        return self._transition(state, now, results)

    def _series(self, state: _RuleState, now: float, points: Sequence[tuple[Mapping[str, Any], float]]
                ) -> list[tuple[dict[str, str], float]]:
        rule = state.rule
        wanted = rule.attributes.items()
        matched = [({k: str(v) for k, v in a.items()}, float(v)) for a, v in points
                   if all(str(a.get(k)) == want for k, want in wanted)]
        if rule.aggregation == "value":
            return matched
        start = now - rule.window
        out = []
        for attributes, value in matched:
            key = tuple(sorted(attributes.items()))
            samples = state.samples.get(key)
            if samples is None:
                samples = state.samples[key] = deque()
                if state.last_eval is not None:  # absent at the last evaluation: it was 0 there
                    samples.append((state.last_eval, 0.0))
            samples.append((now, value))
            increase = extrapolated_increase(self._prune(samples, start), start, now)
            if increase is not None:
                out.append((attributes, increase / rule.window if rule.aggregation == "rate" else increase))
        for key in [k for k, s in state.samples.items() if not self._prune(s, start)]:
            del state.samples[key]
        return out

    @staticmethod
    def _prune(samples: deque[tuple[float, float]], start: float) -> deque[tuple[float, float]]:
        while samples and samples[0][0] < start:
            samples.popleft()
        return samples

    @staticmethod
    def _aggregate(state: _RuleState, series: list[tuple[dict[str, str], float]]
                   ) -> list[tuple[dict[str, str], float]]:
        keys = state.rule.group_by
        if keys is None:
            return series
        sums: dict[tuple, list] = {}
        for attributes, value in series:
            group = {k: attributes[k] for k in keys if k in attributes}
            entry = sums.setdefault(tuple(group.items()), [group, 0.0])
            entry[1] += value
        return [(group, total) for group, total in sums.values()]

    @staticmethod
    def _transition(state: _RuleState, now: float, results: dict[LabelKey, tuple[dict, dict, float]]
                    ) -> list[Alert]:
        rule, alerts, changes = state.rule, state.alerts, []
        for key, (alert_labels, attributes, value) in results.items():
            alert = alerts.get(key)
            if alert is None:
                alert = alerts[key] = Alert(rule.name, PENDING, alert_labels, value, now, severity=rule.severity,
                                            attributes=attributes)
                changes.append(alert)
            alert.value = value
            alert.summary = render(rule.summary, value, attributes)
            alert.keep_firing_since = None
        for key, alert in list(alerts.items()):
            if key not in results:
                if alert.state == FIRING and rule.keep_firing_for > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = now
                    if now - alert.keep_firing_since < rule.keep_firing_for:
                        continue
                del alerts[key]
                alert.state = INACTIVE if alert.state == PENDING else RESOLVED
                alert.resolved_at = now
                changes.append(alert)
                continue
            if alert.state == PENDING and now - alert.active_since >= rule.for_:
                alert.state, alert.fired_at = FIRING, now
                if not any(a is alert for a in changes):
                    changes.append(alert)
        return [a.snapshot() for a in changes]

    def trigger(self, name: str, now: float, severity: str = "warning", labels: Mapping[str, str] | None = None,
                value: float = 1.0, summary: str = "") -> Alert:
        """Fire a manual alert now (it stays firing until ``resolve``)."""
        alert_labels = {**{label_name(k): str(v) for k, v in (labels or {}).items()},
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
        found = [a for s in self._states for a in s.alerts.values()] + list(self._manual.values())
        return sorted((a.snapshot() for a in found), key=lambda a: (a.name, a.key))

    def states(self) -> list[_RuleState]:
        """Each rule's state, in rule order."""
        return self._states
