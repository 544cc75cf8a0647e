"""Circuit relay v2: reservations and circuits, as a relay and as a client of one.

As a relay (a ``CircuitV2Protocol`` with hop enabled; wrapped on the instance):

- ``reservation_accepted``: its resource manager reserved or refreshed a peer's reservation;
- ``reservation_denied``: it could not accept one (its limits);
- ``circuit_opened``: a CONNECT request was answered OK (data flows from then on);
  ``circuit_closed`` when that circuit ends; ``circuit_failed``: a CONNECT request answered with
  an error status, or that ended without an answer.

As a client (hooked on the classes, for the hosts instrumented): a reservation the relay
accepted or refused (``CircuitV2Transport._make_reservation``, ``RelayDiscovery.make_reservation``);
a dial through a relay that failed (``CircuitV2Transport.dial``). The relayed connections of a
client (dialer or destination) count ``circuit_opened`` and ``circuit_closed`` where they open and
close (``connections.ConnectionBook``), like every connection with ``p2p.transport=circuit``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...groups.relay import RelayGroup
from .patches import HOSTS, Patch, attaching_init, instrumentation_of

if TYPE_CHECKING:
    from .host import HostInstrumentation

__all__ = ["RelayInstrumentation", "PATCHES", "attachable"]

_CIRCUIT: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("p2p_telemetry_circuit", default=None)


def attachable() -> dict[type, Callable[[HostInstrumentation, Any], RelayInstrumentation]]:
    """The protocol object class this module instruments."""
    from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol

    return {CircuitV2Protocol: RelayInstrumentation}


def _group_of(client: Any) -> RelayGroup | None:
    owner = instrumentation_of(HOSTS, getattr(client, "host", None))
    return None if owner is None else owner.collector.relay


def _reservation(original: Callable[..., Any]) -> Callable[..., Any]:
    async def make_reservation(self: Any, *args: Any, **kwargs: Any) -> Any:
        known = getattr(self, "_discovered_relays", None)
        asked = known is None or not args or args[0] in known  # RelayDiscovery refuses unknown relays unasked
        accepted = await original(self, *args, **kwargs)
        group = _group_of(self)
        if group is not None and asked:
            group.event("reservation_accepted" if accepted else "reservation_denied").add(1)
        return accepted
    return make_reservation


def _relayed_dial(original: Callable[..., Any]) -> Callable[..., Any]:
    async def dial(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except Exception:
            group = _group_of(self)
            if group is not None:
                group.event("circuit_failed").add(1)
            raise
    return dial


PATCHES = (Patch("libp2p.relay.circuit_v2.transport:CircuitV2Transport", "_make_reservation", _reservation),
           Patch("libp2p.relay.circuit_v2.transport:CircuitV2Transport", "dial", _relayed_dial),
           Patch("libp2p.relay.circuit_v2.discovery:RelayDiscovery", "make_reservation", _reservation),
           Patch("libp2p.relay.circuit_v2.protocol:CircuitV2Protocol", "__init__", attaching_init))


class RelayInstrumentation:
    """The wrappers on one ``CircuitV2Protocol`` and its resource manager; ``close()`` removes them."""

    def __init__(self, owner: HostInstrumentation, protocol: Any) -> None:
        from libp2p.relay.circuit_v2.protocol_buffer import StatusCode

        group: RelayGroup = owner.collector.relay
        group.enable()
        accepted, denied = group.event("reservation_accepted"), group.event("reservation_denied")
        opened, closed, failed = group.event("circuit_opened"), group.event("circuit_closed"), group.event(
            "circuit_failed")
        manager = protocol.resource_manager
        originals = {"reserve": manager.reserve, "refresh_reservation": manager.refresh_reservation,
                     "can_accept_reservation": manager.can_accept_reservation,
                     "_handle_connect": protocol._handle_connect, "_send_status": protocol._send_status}

        def reserve(*args: Any, **kwargs: Any) -> Any:
            result = originals["reserve"](*args, **kwargs)
            accepted.add(1)
            return result

        def refresh_reservation(*args: Any, **kwargs: Any) -> Any:
            result = originals["refresh_reservation"](*args, **kwargs)
            accepted.add(1)
            return result

        def can_accept_reservation(*args: Any, **kwargs: Any) -> Any:
            result = originals["can_accept_reservation"](*args, **kwargs)
            if not result:
                denied.add(1)
            return result

        async def handle_connect(*args: Any, **kwargs: Any) -> Any:
            circuit: list[str] = []  # "opened" or "failed", once the relay answered the request
            token = _CIRCUIT.set(circuit)
            try:
                return await originals["_handle_connect"](*args, **kwargs)
            finally:
                _CIRCUIT.reset(token)
                if circuit == ["opened"]:
                    closed.add(1)
                elif not circuit:
                    failed.add(1)

        async def send_status(stream: Any, code: Any, *args: Any, **kwargs: Any) -> Any:
            circuit = _CIRCUIT.get()
            if circuit is not None and not circuit:  # the answer to a CONNECT request: counted as it is sent
                circuit.append("opened" if code == StatusCode.OK else "failed")
                (opened if code == StatusCode.OK else failed).add(1)
            return await originals["_send_status"](stream, code, *args, **kwargs)

        self._wrapped = [(manager, "reserve", reserve), (manager, "refresh_reservation", refresh_reservation),
                         (manager, "can_accept_reservation", can_accept_reservation),
                         (protocol, "_handle_connect", handle_connect), (protocol, "_send_status", send_status)]
        for target, name, wrapper in self._wrapped:
            setattr(target, name, wrapper)

    def close(self) -> None:
        """Take the wrappers off (those still ours)."""
        for target, name, wrapper in self._wrapped:
            if target.__dict__.get(name) is wrapper:
                del target.__dict__[name]
        self._wrapped.clear()
