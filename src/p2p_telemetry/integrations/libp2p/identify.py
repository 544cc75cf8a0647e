"""Identify: the exchanges of each instrumented host, and how many of its connected peers speak its protocols.

Events, from py-libp2p's identify functions (hooked process-wide, routed to the host they name):

- ``received``: an identify answer this node asked for was applied to its peerstore
  (``update_peerstore_from_identify`` as ``BasicHost._identify_peer`` calls it);
- ``push_received``: an identify push from a peer was applied (the same function, from the push
  handler);
- ``sent``: this node answered a peer's identify request (``_mk_identify_protobuf`` as the
  identify handler calls it);
- ``push_sent``: a push to a peer succeeded (``push_identify_to_peer`` returned True);
- ``error``: any of these failed, or this node asked a connected peer and got no usable answer.

``p2p.peer.protocols``: for each protocol this host has a handler for, the connected peers whose
protocols (as identify announced them, in the peerstore) include it; read at collection.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .patches import HOSTS, PEERSTORES, Patch, instrumentation_of

if TYPE_CHECKING:
    from .host import HostInstrumentation

__all__ = ["PATCHES", "peer_protocols"]

_ANSWERED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("p2p_telemetry_identify",
                                                                            default=None)


def _count(registry: Any, key: Any, event: str) -> None:
    owner = instrumentation_of(registry, key)
    if owner is not None:
        owner.collector.identify.event(event).add(1)


def _applied(event: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        async def update_peerstore_from_identify(peerstore: Any, *args: Any, **kwargs: Any) -> Any:
            answered = _ANSWERED.get()
            if answered is not None:
                answered[0] = True  # counted here, whatever the outcome
            try:
                result = await original(peerstore, *args, **kwargs)
            except Exception:
                _count(PEERSTORES, peerstore, "error")
                raise
            _count(PEERSTORES, peerstore, event)
            return result
        return update_peerstore_from_identify
    return make


def _answering(original: Callable[..., Any]) -> Callable[..., Any]:
    def _mk_identify_protobuf(host: Any, *args: Any, **kwargs: Any) -> Any:
        message = original(host, *args, **kwargs)
        _count(HOSTS, host, "sent")
        return message
    return _mk_identify_protobuf


def _pushing(original: Callable[..., Any]) -> Callable[..., Any]:
    async def push_identify_to_peer(host: Any, *args: Any, **kwargs: Any) -> Any:
        pushed = await original(host, *args, **kwargs)
        _count(HOSTS, host, "push_sent" if pushed else "error")
        return pushed
    return push_identify_to_peer


def _asking(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _identify_peer(self: Any, peer_id: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            connected = bool(self.get_network().get_connections(peer_id))
        except Exception:
            connected = False
        answered = [False]
        token = _ANSWERED.set(answered)
        try:
            return await original(self, peer_id, *args, **kwargs)
        finally:
            _ANSWERED.reset(token)
            if connected and not answered[0]:
                _count(HOSTS, self, "error")
    return _identify_peer


PATCHES = (Patch("libp2p.host.basic_host", "update_peerstore_from_identify", _applied("received")),
           Patch("libp2p.identity.identify_push.identify_push", "update_peerstore_from_identify",
                 _applied("push_received")),
           Patch("libp2p.identity.identify.identify", "_mk_identify_protobuf", _answering),
           Patch("libp2p.identity.identify_push.identify_push", "push_identify_to_peer", _pushing),
           Patch("libp2p.host.basic_host:BasicHost", "_identify_peer", _asking))


def attach_host(owner: HostInstrumentation) -> list[Callable[[], None]]:
    """Report ``p2p.peer.protocols`` for the host; returns the function that lets go of it."""
    owner.collector.identify.enable()
    return [owner.collector.identify.peer_protocols.add(peer_protocols(owner))]


def peer_protocols(owner: HostInstrumentation) -> Callable[[], Iterable[tuple[str, int]]]:
    """The view of ``p2p.peer.protocols`` for one host (read at collection, from any thread)."""
    host, connected = owner.host, owner.connections.peers

    def counts() -> Iterable[tuple[str, int]]:
        own = {str(protocol): 0 for protocol in list(host.get_mux().handlers) if protocol is not None}
        peerstore = host.get_peerstore()
        for peer_id in list(connected):
            try:
                announced = set(peerstore.get_protocols(peer_id))
            except Exception:
                continue  # not in the peerstore (yet)
            for protocol in announced:
                if protocol in own:
                    own[protocol] += 1
        return own.items()
    return counts
