"""Alerting: rules over the catalogue's metrics, evaluated in-process, delivered to sinks."""

from __future__ import annotations

from .evaluator import Alert
from .manager import AlertConfig, AlertManager
from .promql import rules_to_prometheus
from .rules import AlertRule, AlertType, FleetRule, default_rules, fleet_rules, load_rules
from .sinks import AlertmanagerSink, CallbackSink, LogSink

__all__ = ["Alert", "AlertConfig", "AlertManager", "AlertRule", "AlertType", "AlertmanagerSink", "CallbackSink",
           "FleetRule", "LogSink", "default_rules", "fleet_rules", "load_rules", "rules_to_prometheus"]
