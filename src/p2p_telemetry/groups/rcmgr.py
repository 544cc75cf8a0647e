"""Resource manager group: what a node's resource manager holds now, and the requests it refused."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from ..attributes import RCMGR_RESOURCE, RCMGR_RESOURCES, RCMGR_SCOPE, RCMGR_SCOPES
from ..bounds import choices, fold
from ..cells import Counter, Family, counter_points, new_counter
from ..instruments import Points
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup
from .views import Views

__all__ = ["RcmgrGroup", "SPECS", "RCMGR_USAGE", "RCMGR_MEMORY", "RCMGR_BLOCKED", "Usage"]

RCMGR_USAGE = MetricSpec(
    "p2p.rcmgr.usage", Kind.UP_DOWN_COUNTER, "{resource}", "Connections and streams the resource manager holds now.",
    (RCMGR_RESOURCE, RCMGR_SCOPE), "p2p_rcmgr_usage")
RCMGR_MEMORY = MetricSpec(
    "p2p.rcmgr.memory", Kind.UP_DOWN_COUNTER, "By", "Memory reserved through the resource manager now.",
    (RCMGR_SCOPE,), "p2p_rcmgr_memory_bytes")
RCMGR_BLOCKED = MetricSpec(
    "p2p.rcmgr.blocked", Kind.COUNTER, "{request}", "Requests for a resource that the resource manager refused.",
    (RCMGR_RESOURCE,), "p2p_rcmgr_blocked_total")
SPECS = (RCMGR_USAGE, RCMGR_MEMORY, RCMGR_BLOCKED)

#: ``(resource, scope, amount)`` triples one resource manager holds now (``resource`` ``memory`` in bytes).
Usage = Callable[[], Iterable[tuple[str, str, int]]]

_RESOURCES = choices(*RCMGR_RESOURCES)
_SCOPES = choices(*RCMGR_SCOPES)


class RcmgrGroup(MetricGroup):
    """Reads the resource managers attached to it; counts the requests they blocked."""

    name: ClassVar[str] = "rcmgr"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS
    title: ClassVar[str] = "Resource manager (py-libp2p)"
    attribute_docs: ClassVar[dict[str, str]] = {
        RCMGR_RESOURCE: f"{', '.join(f'`{r}`' for r in RCMGR_RESOURCES)} (`fds` where the manager tracks them; "
                        "py-libp2p 0.8 does not).",
        RCMGR_SCOPE: f"{', '.join(f'`{s}`' for s in RCMGR_SCOPES)} (`transient` where the manager has one; "
                     "py-libp2p 0.8 keeps system-level counts only).",
    }
    metric_notes: ClassVar[dict[str, str]] = {
        RCMGR_USAGE.name: "Read at collection from the host's resource manager (`new_host` makes one by default); "
                          "not reported for a host without one.",
        RCMGR_BLOCKED.name: "The same counts as the resource manager's own blocked counters.",
    }

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        self._blocked: Family[Counter] = Family(RCMGR_BLOCKED.attributes,
                                                new_counter(context.rejections, RCMGR_BLOCKED.name))
        #: Callables returning ``(resource, scope, amount)`` for one resource manager.
        self.managers: Views[Usage] = Views("a resource manager")
        self.observe(RCMGR_USAGE, lambda: self._observe_usage(memory=False))
        self.observe(RCMGR_MEMORY, lambda: self._observe_usage(memory=True))
        self.observe(RCMGR_BLOCKED, lambda: counter_points(self._blocked))

    def blocked(self, resource: str) -> Counter:
        """A bound handle counting refused requests for ``resource`` (``connections``, ``streams``, ``memory``...)."""
        return self._blocked.get((fold(resource, _RESOURCES),))

    def enable(self, resources: Iterable[str] = ("connections", "streams", "memory")) -> None:
        """Start the blocked series of ``resources`` at zero (a resource manager was attached)."""
        for resource in resources:
            self.blocked(resource)

    def _observe_usage(self, memory: bool) -> Points:
        if not self.managers:
            return []
        totals: dict[tuple[str, str], int] = {}

        def add(usage: Usage) -> None:
            for resource, scope, amount in usage():
                key = (fold(resource, _RESOURCES), fold(scope, _SCOPES, "system"))
                totals[key] = totals.get(key, 0) + amount
        self.managers.read(add)
        if memory:
            return [({RCMGR_SCOPE: scope}, amount) for (resource, scope), amount in totals.items()
                    if resource == "memory"]
        return [({RCMGR_RESOURCE: resource, RCMGR_SCOPE: scope}, amount) for (resource, scope), amount in totals.items()
                if resource != "memory"]
