"""The seam every metric group is built on: the shared pieces a group receives, and what a group is.

A metric group is one module that declares its ``MetricSpec``s (``specs``) and a
``MetricGroup`` subclass whose methods record into in-process aggregates; it reports them
through the hub (``observe``), records rare events on the hub's histograms, and is closed by
the collector. ``groups/__init__.py`` registers every group in one tuple; the catalogue gathers
their specs from there and ``MetricsCollector`` builds them from there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from opentelemetry.metrics import Histogram

from ..bounds import NameSet, Rejections
from ..instruments import AfterCollect, Combine, InstrumentHub, Registration, Source
from ..metric import MetricSpec

__all__ = ["MetricGroup", "GroupContext", "CollectorOptions"]

G = TypeVar("G", bound="MetricGroup")


@dataclass(frozen=True)
class CollectorOptions:
    """The bounds and switches a collector's groups are built with (checked by ``MetricsCollector``)."""

    sample_resources: bool = True
    peer_series_limit: int = 10
    data_dir: str | os.PathLike[str] | None = None
    max_event_names: int = 32
    max_peers: int = 1_000_000
    max_topics: int = 64
    resource_names: str = "p2p"  # "p2p", "semconv" or "both": see groups.resources.RESOURCE_NAMES
    clock: Callable[[], float] = time.monotonic  # times resource readings; a test passes a fake one


class GroupContext:
    """The shared pieces a group is built from: hub, rejections, the node's protocols, options, other groups."""

    def __init__(self, hub: InstrumentHub, rejections: Rejections, protocols: NameSet,
                 options: CollectorOptions) -> None:
        self.hub = hub
        self.rejections = rejections
        self.protocols = protocols
        self.options = options
        self._groups: dict[type[MetricGroup], MetricGroup] = {}

    def add(self, group: MetricGroup) -> None:
        """Make ``group`` reachable by the groups built after it."""
        self._groups[type(group)] = group

    def group(self, cls: type[G]) -> G:
        """The group of class ``cls`` built before this one (registry order)."""
        group = self._groups[cls]
        assert isinstance(group, cls)
        return group


class MetricGroup:
    """Base of a metric group: owns its specs; reports through the hub; ``close()`` stops all of it."""

    #: The attribute under which ``MetricsCollector`` exposes the group (``collector.network``).
    name: ClassVar[str]
    #: The metrics this group reports, as the catalogue lists them.
    specs: ClassVar[tuple[MetricSpec, ...]]
    #: For the reference documentation: the group's section title, what each attribute key it
    #: introduces means (and its bounded values), and facts about a metric its description cannot hold.
    title: ClassVar[str] = ""
    attribute_docs: ClassVar[Mapping[str, str]] = {}
    metric_notes: ClassVar[Mapping[str, str]] = {}

    def __init__(self, context: GroupContext) -> None:
        self._hub = context.hub
        self._rejections = context.rejections
        self._attachments: list[Callable[[], Registration]] = []
        self._registrations: list[Registration] = []
        self._closed = False

    def _attach(self, attach: Callable[[], Registration]) -> None:
        self._attachments.append(attach)
        if not self._closed:
            self._registrations.append(attach())

    def observe(self, spec: MetricSpec, source: Source, *, combine: Combine | None = None,
                after: AfterCollect | None = None) -> Any:
        """Report ``source``'s points on ``spec`` at each collection; returns the instrument."""
        self._attach(lambda: self._hub.observe(spec, self, source, combine=combine, after=after))
        return self._hub.instrument(spec)

    def histogram(self, spec: MetricSpec) -> Histogram:
        """``spec``'s synchronous histogram on this provider."""
        return self._hub.histogram(spec)

    def before_collect(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` at every collection, before any metric is read."""
        self._attach(lambda: self._hub.before_collect(self, hook))

    @property
    def closed(self) -> bool:
        """True after ``close()``: nothing of this group is reported any more."""
        return self._closed

    def close(self) -> None:
        """Stop reporting this group's figures (idempotent); subclasses flush pending work first."""
        self._closed = True
        for registration in self._registrations:
            registration.cancel()
        self._registrations.clear()

    def reopen(self) -> None:
        """Report this group's figures again after ``close()`` (idempotent)."""
        if self._closed:
            self._closed = False
            self._registrations = [attach() for attach in self._attachments]
