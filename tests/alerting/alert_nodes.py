"""Nodes for the alerting tests: SDK providers with a known identity, and clocks the tests move by hand."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

SERVICE = "p2p-node"
T0 = 1_700_000_000.0


def identity(instance: str) -> dict[str, str]:
    """The labels every alert of the node ``instance`` carries."""
    return {"service_name": SERVICE, "service_instance_id": instance}


def node_resource(instance: str = "node-1") -> Resource:
    """The Resource of the node ``instance``, as configure(service_instance_id=...) makes it."""
    return Resource.create({"service.name": SERVICE, "service.instance.id": instance})


def node_provider(instance: str = "node-1", *readers: MetricReader) -> MeterProvider:
    """A provider whose Resource says which node it is."""
    return MeterProvider(metric_readers=list(readers), resource=node_resource(instance))


class Clock:
    """A clock the test moves by hand (wall or monotonic)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
