"""The py-libp2p protocols instrumented, in one tuple: adding one is a module and a line here.

Each module offers what it needs of:

- ``PATCHES``: process-wide hooks, installed at the first instrumented host (``patches.Patch``);
- ``attachable()``: ``{py-libp2p class: part}``, a part instrumenting one object of that class
  (found by the stream handlers it registers, or by its constructor);
- ``events()``: ``((py-libp2p metric event class, recorder), ...)``, for the events a stream hands
  to the host's metric channel (read on their way there, never taken);
- ``sent_recorders()``: ``((protocol id, make(books, counter)), ...)``: what counts the bytes sent on
  a stream of that protocol, when more than the counter's ``add`` is needed;
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
    from .streams import Recorder, SentRecorder

__all__ = ["PROTOCOLS", "patches", "attachable", "events", "sent_recorders", "attach_host"]

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


def sent_recorders() -> dict[str, SentRecorder]:
    """``{protocol id: make(books, counter)}`` (imports py-libp2p: call on first use)."""
    return {protocol: make for module in PROTOCOLS if hasattr(module, "sent_recorders")
            for protocol, make in module.sent_recorders()}


def attach_host(owner: HostInstrumentation) -> list[Callable[[], None]]:
    """Every module's per-host set-up; the functions that let go of it."""
    return [remove for module in PROTOCOLS if hasattr(module, "attach_host") for remove in module.attach_host(owner)]
