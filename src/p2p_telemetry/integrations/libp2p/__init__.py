"""py-libp2p hosts, instrumented from outside: ``handle = instrument_host(host, collector)``; ``handle.close()``.

What is counted, and where it comes from, module by module:

- ``connections``: connection attempts, set-up times, failures, open connections and lifetimes,
  each with ``network.transport`` and ``p2p.transport`` (``transports``); the peer table.
- ``streams``: bytes per protocol, ``stream_opened``/``stream_closed`` events, and py-libp2p's own
  metric events, read on their way to the host's metric channel (never taken from it: a host made
  with ``enable_metrics=True`` reports through ``libp2p.metrics.Metrics`` exactly what it reports
  without p2p-telemetry).
- ``pubsub``, ``kad``, ``relay``, ``identify``, ``rcmgr``, ``ping``: one module per protocol
  (gossipsub/floodsub, Kademlia, circuit relay v2, identify, the resource manager, ping RTTs).

No peer id ever becomes an attribute, and no value a remote peer chooses does: protocols are the
node's own handlers, topics the node's own subscriptions and publications.

Importing this package does not import py-libp2p.
"""

from .host import HostInstrumentation, instrument_host
from .ping import PING_PROTOCOL, Libp2pPingProbe

__all__ = ["instrument_host", "HostInstrumentation", "PING_PROTOCOL", "Libp2pPingProbe"]
