"""The py-libp2p protocols instrumented, in one tuple: adding one is a module and a line here.

Each module offers what it needs of:

- ``PATCHES``: process-wide hooks, installed at the first instrumented host (``patches.Patch``);
- ``attachable()``: ``{py-libp2p class: part}``, a part instrumenting one object of that class
  (found by the stream handlers it registers, or by its constructor);
- ``events()``: ``((py-libp2p metric event class, recorder), ...)``, for the events a stream hands
  to the host's metric channel (read on their way there, never taken);
- ``attach_host(owner)``: per-host set-up; returns the functions that let go of it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import identify, kad, ping, pubsub, rcmgr, relay
from .patches import Patch

if TYPE_CHECKING:
    from .host import HostInstrumentation, Part
    from .streams import Recorder

__all__ = ["PROTOCOLS", "patches", "attachable", "events", "attach_host"]

PROTOCOLS: tuple[ModuleType, ...] = (ping, identify, pubsub, kad, relay, rcmgr)


def patches() -> tuple[Patch, ...]:
    """Every module's process-wide hooks."""
    return tuple(patch for module in PROTOCOLS for patch in getattr(module, "PATCHES", ()))


def attachable() -> dict[type, Callable[[HostInstrumentation, Any], Part]]:
    """``{protocol object class: part that instruments it}`` (imports py-libp2p: call on first use)."""
    table: dict[type, Callable[[HostInstrumentation, Any], Part]] = {}
    for module in PROTOCOLS:
        if hasattr(module, "attachable"):
            table.update(module.attachable())
    return table


def events() -> dict[type, Recorder]:
    """``{metric event class: recorder}`` (imports py-libp2p: call on first use)."""
    return {event: record for module in PROTOCOLS if hasattr(module, "events") for event, record in module.events()}


def attach_host(owner: HostInstrumentation) -> list[Callable[[], None]]:
    """Every module's per-host set-up; the functions that let go of it."""
    return [remove for module in PROTOCOLS if hasattr(module, "attach_host") for remove in module.attach_host(owner)]
