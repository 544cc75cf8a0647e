"""Stream books: one small object per stream that counts its bytes under its protocol, and stands in for the
stream's metric channel.

A py-libp2p stream sends py-libp2p's own metric events (a gossipsub RPC received, a Kademlia
request handled, a ping) to ``stream.metric_send_channel``: the host's channel when it was made
with ``enable_metrics=True``, else nothing. The books take that place: ``await books.send(event)``
records what the event says through the host's copy of ``EVENT_TABLE`` (``{event class: recorder}``,
emptied when its instrumentation closes) and passes the event on to the host's channel unchanged,
so ``libp2p.metrics.Metrics`` reads every event it would read without p2p-telemetry, and the swarm
blocks exactly when it would have.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...attributes import OTHER
from ...cells import Counter

if TYPE_CHECKING:
    from .host import HostInstrumentation

__all__ = ["StreamBooks", "EVENT_TABLE", "SENT_TABLE", "event_table"]

logger = logging.getLogger("p2p_telemetry")

Recorder = Callable[["StreamBooks", Any], None]
SentRecorder = Callable[["StreamBooks", Counter], Callable[[int], None]]
#: ``{py-libp2p event class: recorder(books, event)}``, filled by ``event_table()`` at the first instrumented host.
EVENT_TABLE: dict[type, Recorder] = {}
#: ``{protocol id: make(books, counter)}``: the bytes-sent recorder of a stream of that protocol (default
#: ``counter.add``), filled by ``event_table()`` too.
SENT_TABLE: dict[str, SentRecorder] = {}


class StreamBooks:
    """The books of one stream; ``send`` is what py-libp2p awaits as the stream's metric channel."""

    __slots__ = ("owner", "recorders", "transport", "sent", "received", "protocol", "channel", "kad_type",
                 "__weakref__")

    def __init__(self, owner: HostInstrumentation, transport: str, channel: Any) -> None:
        network = owner.collector.network
        self.owner = owner
        self.recorders = owner.event_recorders  # emptied when the owner closes
        self.transport = transport
        self.sent: Callable[[int], None] = network.sent(OTHER, transport).add
        self.received: Callable[[int], None] = network.received(OTHER, transport).add
        self.protocol: str | None = None
        self.channel = channel  # the host's own metric channel, or None
        self.kad_type = -1  # 5 (PING) once py-libp2p answered a Kademlia PING on this stream, until its event

    def rebind(self, protocol: str) -> None:
        """Count the stream's bytes under ``protocol`` from now on."""
        network = self.owner.collector.network
        sent = network.sent(protocol, self.transport)
        make = SENT_TABLE.get(protocol)
        self.sent = sent.add if make is None else make(self, sent)
        self.received = network.received(protocol, self.transport).add

    async def send(self, event: Any) -> None:
        """Record what ``event`` says, then hand it to the host's metric channel as py-libp2p would have."""
        recorder = self.recorders.get(event.__class__)
        if recorder is not None:
            try:
                recorder(self, event)
            except Exception:
                logger.debug("p2p-telemetry: a libp2p metric event was not recorded", exc_info=True)
        channel = self.channel
        if channel is not None:
            await channel.send(event)

    def __getattr__(self, name: str) -> Any:
        # Anything else py-libp2p may ask of a channel (send_nowait, clone...) is the host channel's.
        channel = object.__getattribute__(self, "channel")
        if channel is None:
            raise AttributeError(name)
        return getattr(channel, name)


def event_table() -> dict[type, Recorder]:
    """Fill ``EVENT_TABLE`` with py-libp2p's event classes, and ``SENT_TABLE`` (imported on first use only)."""
    if not EVENT_TABLE:
        from .protocols import events, sent_recorders

        SENT_TABLE.update(sent_recorders())
        EVENT_TABLE.update(events())
    return EVENT_TABLE
