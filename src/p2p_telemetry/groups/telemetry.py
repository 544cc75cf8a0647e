"""Self-observation: what p2p-telemetry dropped, and which alerts its evaluator holds."""

from __future__ import annotations

from typing import ClassVar

from ..attributes import ALERTNAME, ALERTSTATE, REASON, SERVICE_INSTANCE_ID_LABEL, SERVICE_NAME_LABEL, SEVERITY
from ..instruments import Points
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup

__all__ = ["TelemetryGroup", "SPECS", "TELEMETRY_REJECTED", "ALERT_ACTIVE"]

TELEMETRY_REJECTED = MetricSpec(
    "p2p.telemetry.rejected", Kind.COUNTER, "{measurement}", "Measurements dropped as invalid, by reason.",
    (REASON,), "p2p_telemetry_rejected_total")
# Reported by the alert evaluator (alerting.AlertManager), which reads metrics by their catalogue names.
# service_name and service_instance_id name the node (from its Resource), as on every alert it sends.
ALERT_ACTIVE = MetricSpec(
    "p2p.alert.active", Kind.GAUGE, "{alert}", "Alerts pending or firing in the in-process evaluator (1 each).",
    (ALERTNAME, ALERTSTATE, SEVERITY, SERVICE_NAME_LABEL, SERVICE_INSTANCE_ID_LABEL), "p2p_alert_active")
SPECS = (ALERT_ACTIVE, TELEMETRY_REJECTED)


class TelemetryGroup(MetricGroup):
    """Reports ``p2p.telemetry.rejected`` from the collector's rejection counts."""

    name: ClassVar[str] = "telemetry"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS
    attribute_docs: ClassVar[dict[str, str]] = {
        SERVICE_NAME_LABEL: "the node's `service.name` (its Resource), as on every alert it sends.",
        SERVICE_INSTANCE_ID_LABEL: "the node's `service.instance.id` (its Resource), as on every alert it sends.",
    }

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        self.observe(TELEMETRY_REJECTED, self._observe_rejected)

    def _observe_rejected(self) -> Points:
        return [({REASON: reason}, n) for reason, n in self._rejections.counts().items()]
