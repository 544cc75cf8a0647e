"""The host's resource manager (``libp2p.rcmgr``, made by default by ``new_host``): what it holds, what it refused.

Read at collection: its system-scope counts of connections and streams, and the memory reserved
through it (py-libp2p 0.8 keeps no transient scope and no file descriptor count). Counted as they
happen: requests it blocked, by resource (its ``_record_blocked_resource``, wrapped on the
instance). A host without a resource manager reports none of these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .host import HostInstrumentation

__all__ = ["attach_host"]

_RESOURCES = {"connection": "connections", "stream": "streams", "memory": "memory"}
_USAGE = (("connections", "_current_connections"), ("streams", "_current_streams"), ("memory", "_current_memory"))


def attach_host(owner: HostInstrumentation) -> list[Callable[[], None]]:
    """Read the host's resource manager, if it has one; returns the functions that let go of it."""
    manager = getattr(owner.swarm, "_resource_manager", None)
    if manager is None or not all(hasattr(manager, attribute) for _, attribute in _USAGE):
        return []
    group = owner.collector.rcmgr
    group.enable()

    def usage() -> Iterable[tuple[str, str, int]]:
        return [(resource, "system", int(getattr(manager, attribute))) for resource, attribute in _USAGE]

    removers = [group.managers.add(usage)]
    record = getattr(manager, "_record_blocked_resource", None)
    if record is not None:
        blocked = {kind: group.blocked(resource) for kind, resource in _RESOURCES.items()}

        def record_blocked_resource(resource_type: Any, *args: Any, **kwargs: Any) -> Any:
            counter = blocked.get(resource_type)
            if counter is not None and not owner.closed:
                counter.add(1)
            return record(resource_type, *args, **kwargs)

        manager._record_blocked_resource = record_blocked_resource

        def unwrap() -> None:
            if manager.__dict__.get("_record_blocked_resource") is record_blocked_resource:
                del manager.__dict__["_record_blocked_resource"]
        removers.append(unwrap)
    return removers
