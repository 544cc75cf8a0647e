"""Alert rules: the AlertRule record, its validation, the seed's four rules and loading rules from YAML."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import catalogue as c
from ..bounds import SettingTypeError, duration

__all__ = ["AlertType", "AlertRule", "FleetRule", "default_rules", "fleet_rules", "load_rules", "label_name",
           "format_value", "render", "OPS", "GIB", "SERVICE_NAME", "SERVICE_INSTANCE_ID", "NODE_LABELS",
           "RESERVED_LABELS"]

GIB = 1 << 30
OPS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
       "==": float.__eq__, "!=": float.__ne__}
AGGREGATIONS = ("value", "increase", "rate")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# The node's identity as alert labels: Prometheus's names of the resource's service.name and service.instance.id.
SERVICE_NAME, SERVICE_INSTANCE_ID = c.SERVICE_NAME_LABEL, c.SERVICE_INSTANCE_ID_LABEL
NODE_LABELS = (SERVICE_NAME, SERVICE_INSTANCE_ID)
RESERVED_LABELS = ("alertname", "severity", *NODE_LABELS)  # set by the rule and the node, never by rule labels


class AlertType(str, enum.Enum):
    """The seed's four alerts; the value is the rule's name."""

    HIGH_CPU_USAGE = "HighCpuUsage"
    HIGH_MEMORY_USAGE = "HighMemoryUsage"
    UNHEALTHY_PEERS = "UnhealthyPeers"
    HIGH_CONNECTION_FAILURES = "HighConnectionFailures"


def label_name(key: str) -> str:
    """An attribute key as a Prometheus label name (``p2p.peer.health`` -> ``p2p_peer_health``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return f"_{name}" if name[:1].isdigit() else name


def format_value(value: float) -> str:
    """``value`` as Prometheus templates print ``{{ $value }}`` (Go's ``%v`` of a float64)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # position of the decimal point in the digit string
    x = point - 1
    if x < -4 or x >= 6:  # Go: shortest %g switches to %e at exponent 6
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + text
    elif point >= len(text):
        out = text + "0" * (point - len(text))
    else:
        out = text[:point] + "." + text[point:]
    return ("-" if sign else "") + out


@dataclass(frozen=True)
class AlertRule:
    """One alert condition over a catalogue metric, with Prometheus's ``for`` and ``keep_firing_for``."""

    name: str
    metric: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    aggregation: str = "value"
    window: float = 300.0
    op: str = ">"
    threshold: float = 0.0
    for_: float = 0.0
    keep_firing_for: float = 0.0
    severity: str = "warning"
    summary: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    group_by: tuple[str, ...] | None = None  # None: one alert per series; a tuple: sum by these attributes

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"rule {name!r}: field 'name' must be a Prometheus alert name ([A-Za-z_][A-Za-z0-9_]*)")
        spec = c.BY_NAME.get(self.metric) if isinstance(self.metric, str) else None
        if spec is None or spec.kind is c.Kind.HISTOGRAM:
            raise ValueError(f"rule {name!r}: field 'metric' must name a non-histogram metric of the catalogue, "
                             f"got {self.metric!r}")
        self._set("attributes", self._attribute_map("attributes", self.attributes, spec))
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"rule {name!r}: field 'aggregation' must be one of {AGGREGATIONS}, "
                             f"got {self.aggregation!r}")
        if self.aggregation != "value" and spec.kind is not c.Kind.COUNTER:
            raise ValueError(f"rule {name!r}: field 'aggregation' {self.aggregation!r} needs a counter; "
                             f"{self.metric} is a {spec.kind.value}")
        for setting in ("window", "for_", "keep_firing_for"):
            self._set(setting, _duration(name, setting, getattr(self, setting)))
        if self.aggregation != "value" and self.window <= 0:
            raise ValueError(f"rule {name!r}: field 'window' must be > 0 for {self.aggregation}")
        if self.op not in OPS:
            raise ValueError(f"rule {name!r}: field 'op' must be one of {tuple(OPS)}, got {self.op!r}")
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise ValueError(f"rule {name!r}: field 'threshold' must be a finite number, got {threshold!r}")
        self._set("threshold", float(threshold))
        if not isinstance(self.severity, str) or not self.severity:
            raise ValueError(f"rule {name!r}: field 'severity' must be a non-empty str, got {self.severity!r}")
        self._set("labels", self._labels(self.labels))
        if self.group_by is not None:
            given: Any = self.group_by  # a str or a list from YAML too
            keys = (given,) if isinstance(given, str) else given
            if not isinstance(keys, (list, tuple)) or any(k not in spec.attributes for k in keys):
                raise ValueError(f"rule {name!r}: field 'group_by' must list attributes of {self.metric} "
                                 f"{spec.attributes}, got {self.group_by!r}")
            self._set("group_by", tuple(keys))
        if not isinstance(self.summary, str):
            raise ValueError(f"rule {name!r}: field 'summary' must be a str, got {self.summary!r}")
        known = {"value", *self.label_keys()}
        unknown = [p for p in _PLACEHOLDER.findall(self.summary) if p not in known]
        if unknown:
            raise ValueError(f"rule {name!r}: field 'summary' uses unknown placeholder(s) {unknown}; "
                             f"use {{value}} or one of {sorted(known - {'value'})}")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _attribute_map(self, field_name: str, value: Any, spec: c.MetricSpec) -> dict[str, str]:
        if not isinstance(value, Mapping) or any(k not in spec.attributes for k in value):
            raise ValueError(f"rule {self.name!r}: field {field_name!r} must map attributes of {spec.name} "
                             f"{spec.attributes} to values, got {value!r}")
        return {k: str(v) for k, v in value.items()}

    def _labels(self, value: Any) -> dict[str, str]:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and _NAME.match(k) for k in value):
            raise ValueError(f"rule {self.name!r}: field 'labels' must map label names to values, got {value!r}")
        reserved = sorted(set(RESERVED_LABELS) & set(value))
        if reserved:
            raise ValueError(f"rule {self.name!r}: field 'labels' must not set {', '.join(reserved)} "
                             f"(set by the rule and the node's identity)")
        return {k: str(v) for k, v in value.items()}

    def label_keys(self) -> tuple[str, ...]:
        """The attribute keys that identify one alert of this rule."""
        return c.BY_NAME[self.metric].attributes if self.group_by is None else self.group_by

    @property
    def spec(self) -> c.MetricSpec:
        """The catalogue entry of ``metric``."""
        return c.BY_NAME[self.metric]


def _duration(rule: str, name: str, value: Any) -> float:
    """A rule's duration field: seconds, a timedelta or a Prometheus duration (``"1m30s"``), >= 0."""
    return duration(f"rule {rule!r}: field {name!r}", value, allow_zero=True)


def render(summary: str, value: float, attributes: Mapping[str, str]) -> str:
    """The summary with ``{value}`` and ``{attribute.key}`` filled in."""
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        return format_value(value) if key == "value" else str(attributes.get(key, ""))
    return _PLACEHOLDER.sub(fill, summary)


def default_rules() -> list[AlertRule]:
    """The seed's four alerts."""
    return [
        AlertRule(AlertType.HIGH_CPU_USAGE.value, c.CPU_UTILIZATION.name, op=">", threshold=0.9, severity="warning",
                  summary="CPU utilization {value} is above 0.9"),
        AlertRule(AlertType.HIGH_MEMORY_USAGE.value, c.MEMORY_USAGE.name, op=">", threshold=GIB, severity="warning",
                  summary="Memory usage {value} bytes is above 1 GiB"),
        AlertRule(AlertType.UNHEALTHY_PEERS.value, c.PEERS.name, attributes={c.HEALTH: "unhealthy"}, op=">",
                  threshold=0, severity="warning", summary="{value} unhealthy peers"),
        # group_by=(): the sum of the node's failure series (each node's own; never the fleet's)
        AlertRule(AlertType.HIGH_CONNECTION_FAILURES.value, c.CONNECTION_FAILURES.name, aggregation="increase",
                  window=300.0, op=">", threshold=10, group_by=(), severity="critical",
                  summary="{value} connection failures in 5m"),
    ]


@dataclass(frozen=True)
class FleetRule:
    """A condition over the whole fleet, for Prometheus only (a node sees itself, not the fleet).

    It fires when more than ``share`` (0..1) of the nodes meet ``node_rule``'s condition, out of
    the nodes that report to Prometheus (every node exports ``p2p.peers``). Its alerts carry no
    node labels. ``summary`` may use ``{value}``, the share of nodes (0..1).
    """

    name: str
    node_rule: AlertRule
    share: float
    for_: float = 0.0
    severity: str = "warning"
    summary: str = ""

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"fleet rule {name!r}: field 'name' must be a Prometheus alert name "
                             "([A-Za-z_][A-Za-z0-9_]*)")
        if not isinstance(self.node_rule, AlertRule):
            raise SettingTypeError(f"fleet rule {name!r}: field 'node_rule' must be an AlertRule, "
                                   f"got {self.node_rule!r}")
        share = self.share
        if isinstance(share, bool) or not isinstance(share, (int, float)):
            raise SettingTypeError(f"fleet rule {name!r}: field 'share' must be a number, got {share!r}")
        if not 0 <= share < 1:
            raise ValueError(f"fleet rule {name!r}: field 'share' must be in [0, 1), got {share!r}")
        object.__setattr__(self, "share", float(share))
        object.__setattr__(self, "for_", duration(f"fleet rule {name!r}: field 'for_'", self.for_, allow_zero=True))
        if not isinstance(self.severity, str) or not self.severity:
            raise ValueError(f"fleet rule {name!r}: field 'severity' must be a non-empty str, got {self.severity!r}")
        if not isinstance(self.summary, str) or any(p != "value" for p in _PLACEHOLDER.findall(self.summary)):
            raise ValueError(f"fleet rule {name!r}: field 'summary' must be a str using no placeholder but {{value}}, "
                             f"got {self.summary!r}")


def fleet_rules() -> list[FleetRule]:
    """Rules over the fleet for the Prometheus rule file: shares of nodes in trouble, beside each node's alerts."""
    node = {rule.name: rule for rule in default_rules()}
    return [
        FleetRule("FleetUnhealthyPeers", node[AlertType.UNHEALTHY_PEERS.value], share=0.25, for_=120.0,
                  severity="warning", summary="{value} of the nodes have unhealthy peers"),
        FleetRule("FleetConnectionFailures", node[AlertType.HIGH_CONNECTION_FAILURES.value], share=0.25, for_=120.0,
                  severity="critical", summary="{value} of the nodes have more than 10 connection failures in 5m"),
    ]


_FIELDS = {f.name for f in fields(AlertRule)}


def load_rules(path: str | Path) -> list[AlertRule]:
    """Rules from a YAML file: a list of rules, or ``{rules: [...]}``; ``for`` may stand for ``for_``."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read rules: {error}") from None
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of rules (or a mapping with 'rules'), got {type(data).__name__}")
    rules = []
    for index, item in enumerate(items):
        where = f"{path}: rule #{index + 1}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping of fields, got {item!r}")
        name = item.get("name", f"#{index + 1}")
        item = {("for_" if k == "for" else k): v for k, v in item.items()}
        unknown = sorted(set(item) - _FIELDS, key=str)
        if unknown:
            raise ValueError(f"{path}: rule {name!r}: unknown field {unknown[0]!r}; fields are {sorted(_FIELDS)}")
        for needed in ("name", "metric"):
            if needed not in item:
                raise ValueError(f"{path}: rule {name!r}: field {needed!r} is missing")
        try:
            rules.append(AlertRule(**item))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ValueError(f"{path}: rule {duplicate!r}: field 'name' is used by more than one rule")
    return rules
