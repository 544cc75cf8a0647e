"""MetricsCollector: binds the four metric groups to a MeterProvider, and the seed's ``record_*`` API."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider

from . import catalogue as c
from .bounds import NameSet, Rejections
from .instruments import InstrumentHub, Points
from .model import NetworkMetrics, PeerStats, ResourceMetrics
from .network import NetworkGroup
from .peers import PeerGroup
from .protocols import ProtocolGroup
from .resources import ResourceGroup

__all__ = ["MetricsCollector"]


def _check_int(name: str, value: object, minimum: int) -> int:
    if value.__class__ is not int or value < minimum:  # type: ignore[operator]
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value  # type: ignore[return-value]


class MetricsCollector:
    """The node's telemetry: ``network``, ``protocols``, ``peers`` and ``resources`` on one MeterProvider.

    With ``meter_provider=None`` it uses the global provider, so it can be dropped into a node
    that set up OpenTelemetry itself. Every record method is safe from any thread and never
    raises: an invalid measurement is dropped and counted in ``p2p.telemetry.rejected``.
    """

    def __init__(self, meter_provider: MeterProvider | None = None, sample_resources: bool = True,
                 protocols: Iterable[str] = (), peer_series_limit: int = 10,
                 data_dir: str | os.PathLike[str] | None = None, *, max_event_names: int = 32,
                 max_peers: int = 1_000_000) -> None:
        if not isinstance(sample_resources, bool):
            raise ValueError(f"sample_resources must be a bool, got {sample_resources!r}")
        if isinstance(protocols, (str, bytes)) or not isinstance(protocols, Iterable):
            raise ValueError(f"protocols must be an iterable of protocol names, got {protocols!r}")
        _check_int("peer_series_limit", peer_series_limit, 0)
        _check_int("max_event_names", max_event_names, 1)
        _check_int("max_peers", max_peers, 1)
        if meter_provider is not None and not callable(getattr(meter_provider, "get_meter", None)):
            raise ValueError(f"meter_provider must be an OpenTelemetry MeterProvider, got {meter_provider!r}")
        if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
            raise ValueError(f"data_dir must be a path, got {data_dir!r}")
        registry = NameSet("protocols", (*c.DEFAULT_PROTOCOLS, c.OTHER))
        for protocol in protocols:
            try:
                registry.register(protocol)
            except ValueError as error:
                raise ValueError(f"protocols: {error}") from None

        self.meter_provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        hub = self._hub = InstrumentHub.for_provider(self.meter_provider)
        self.rejections = Rejections()
        self.network = NetworkGroup(hub, self.rejections, registry)
        self.protocols = ProtocolGroup(hub, self.rejections, registry, max_event_names)
        self.peers = PeerGroup(hub, self.rejections, peer_series_limit, max_peers)
        self.resources = ResourceGroup(hub, self.rejections, self._io_totals, sample_resources, data_dir)
        hub.observe(c.TELEMETRY_REJECTED, self, self._observe_rejected)

    @property
    def hub(self) -> InstrumentHub:
        """The provider's instruments (for components that export more catalogue metrics)."""
        return self._hub

    # -- the seed's API -------------------------------------------------------------------------

    def record_network_metrics(self, m: NetworkMetrics) -> None:
        """Add the seed's aggregate figures (under protocol/transport ``other``, direction ``unknown``)."""
        try:
            network = self.network
            network.sent(c.OTHER, c.OTHER).add(m.bytes_sent)
            network.received(c.OTHER, c.OTHER).add(m.bytes_received)
            network.set_active(m.active_connections, c.UNKNOWN, c.OTHER)
            network.attempts(c.UNKNOWN, c.OTHER).add(m.connection_attempts)
            network.failures(c.OTHER, c.UNKNOWN, c.OTHER).add(m.connection_failures)
            if m.avg_connection_latency is not None:
                network.connection_setup(m.avg_connection_latency, c.UNKNOWN, c.OTHER)
        except Exception:
            self.rejections.reject("type", "record_network_metrics")

    def record_protocol_metrics(self, protocol: str, events: Mapping[str, int]) -> None:
        """Count events of one protocol: ``{"submitted": 3, "completed": 2}``."""
        self.protocols.record(protocol, events)

    def record_peer_metrics(self, peer_id: str, stats: PeerStats) -> None:
        """Add or update one peer of the peer table."""
        self.peers.record(peer_id, stats)

    def record_resource_metrics(self, m: ResourceMetrics) -> None:
        """Set resource figures by hand (replaced by the next reading when ``sample_resources``)."""
        self.resources.record(m)

    def network_snapshot(self) -> NetworkMetrics:
        """Running totals and current levels."""
        return NetworkMetrics(**self.network.totals())

    def peer_counts(self) -> dict[str, int]:
        """``{"total", "healthy", "degraded", "unhealthy"}``."""
        return self.peers.counts()

    def resource_snapshot(self) -> ResourceMetrics:
        """What the resource gauges report now."""
        return self.resources.snapshot()

    def close(self) -> None:
        """Stop reporting this collector's figures on the provider."""
        self._hub.detach(self.network)
        self._hub.detach(self.protocols)
        self._hub.detach(self.peers)
        self._hub.detach(self.resources)
        self._hub.detach(self)

    def _io_totals(self) -> tuple[int, int]:
        totals = self.network.totals()
        return totals["bytes_sent"], totals["bytes_received"]

    def _observe_rejected(self) -> Points:
        return [({c.REASON: reason}, n) for reason, n in self.rejections.counts().items()]

    def __repr__(self) -> str:
        return f"<MetricsCollector peers={len(self.peers)} provider={type(self.meter_provider).__name__}>"

