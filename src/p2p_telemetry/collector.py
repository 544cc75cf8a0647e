"""MetricsCollector: builds every registered metric group on a MeterProvider, and the seed's ``record_*`` API."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider

from .attributes import DEFAULT_PROTOCOLS, IO_DIRECTIONS, OTHER, PUBSUB_EVENTS, TRANSPORTS, UNKNOWN
from .bounds import NameSet, Rejections, SettingTypeError
from .groups import REGISTRY, CollectorOptions, GroupContext, MetricGroup
from .groups.base import G
from .groups.identify import IdentifyGroup
from .groups.kad import KadGroup
from .groups.network import NetworkGroup
from .groups.peers import PeerGroup
from .groups.protocols import ProtocolGroup
from .groups.pubsub import PubsubGroup
from .groups.rcmgr import RcmgrGroup
from .groups.relay import RelayGroup
from .groups.resources import RESOURCE_NAMES, ResourceGroup
from .groups.telemetry import TelemetryGroup
from .instruments import InstrumentHub
from .model import NetworkMetrics, PeerStats, ResourceMetrics

__all__ = ["MetricsCollector", "protocol_capacity"]


def _check_int(name: str, value: object, minimum: int) -> int:
    if value.__class__ is not int or isinstance(value, bool):
        raise SettingTypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    assert isinstance(value, int)
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def protocol_capacity(series_limit: int, max_event_names: int) -> int:
    """How many protocol names (``other`` included) keep every metric keyed by protocol within ``series_limit``.

    ``p2p.network.io`` has a series per direction, protocol and transport; ``p2p.protocol.events``
    one per protocol and event name (``max_event_names`` of them, plus ``other``). The SDK exports
    ``series_limit`` attribute sets of a metric before it folds the rest into ``otel.metric.overflow``.
    """
    usable = series_limit - 1  # keep clear of the overflow point, whatever the SDK version's off-by-one
    return min(usable // (len(IO_DIRECTIONS) * len(TRANSPORTS)), usable // (max_event_names + 1))


class MetricsCollector:
    """The node's telemetry: ``network``, ``protocols``, ``peers`` and ``resources`` on one MeterProvider.

    ``resource_names`` picks the names of the process's CPU and memory figures: ``"p2p"``
    (``p2p.node.cpu.utilization``, ``p2p.node.memory.usage``; the default), ``"semconv"`` (the
    semantic conventions' ``process.cpu.utilization`` and ``process.memory.usage``, as
    opentelemetry-instrumentation-system-metrics reports them) or ``"both"`` (while dashboards move).
    ``clock`` is the monotonic clock resource readings are timed with (tests pass a fake one).
    ``max_topics`` bounds the pubsub topics reported by name (a py-libp2p host's own; the rest count
    under ``other``).

    With ``meter_provider=None`` it uses the global provider, so it can be dropped into a node
    that set up OpenTelemetry itself. Every record method is safe from any thread and never
    raises: an invalid measurement is dropped and counted in ``p2p.telemetry.rejected``.
    The groups are those of ``p2p_telemetry.groups.REGISTRY``, each an attribute named after it.
    """

    network: NetworkGroup
    protocols: ProtocolGroup
    peers: PeerGroup
    resources: ResourceGroup
    telemetry: TelemetryGroup
    pubsub: PubsubGroup
    kad: KadGroup
    identify: IdentifyGroup
    relay: RelayGroup
    rcmgr: RcmgrGroup

    def __init__(self, meter_provider: MeterProvider | None = None, sample_resources: bool = True,
                 protocols: Iterable[str] = (), peer_series_limit: int = 10,
                 data_dir: str | os.PathLike[str] | None = None, *, max_event_names: int = 32,
                 max_peers: int = 1_000_000, max_topics: int = 64, resource_names: str = "p2p",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(sample_resources, bool):
            raise SettingTypeError(f"sample_resources must be a bool, got {sample_resources!r}")
        if isinstance(protocols, (str, bytes)) or not isinstance(protocols, Iterable):
            raise SettingTypeError(f"protocols must be an iterable of protocol names, got {protocols!r}")
        _check_int("peer_series_limit", peer_series_limit, 0)
        _check_int("max_event_names", max_event_names, 1)
        _check_int("max_peers", max_peers, 1)
        _check_int("max_topics", max_topics, 0)
        if meter_provider is not None and not callable(getattr(meter_provider, "get_meter", None)):
            raise SettingTypeError(f"meter_provider must be an OpenTelemetry MeterProvider, got {meter_provider!r}")
        if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
            raise SettingTypeError(f"data_dir must be a path, got {data_dir!r}")
        if not isinstance(resource_names, str):
            raise SettingTypeError(f"resource_names must be a str, got {resource_names!r}")
        if resource_names not in RESOURCE_NAMES:
            raise ValueError(f"resource_names must be one of {tuple(RESOURCE_NAMES)}, got {resource_names!r}")
        if not callable(clock):
            raise SettingTypeError(f"clock must be a callable returning monotonic seconds, got {clock!r}")
        protocols = list(protocols)

        self.meter_provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        hub = self._hub = InstrumentHub.for_provider(self.meter_provider)
        if peer_series_limit >= hub.series_limit:
            raise ValueError(f"peer_series_limit must be below the provider's cardinality limit "
                             f"({hub.series_limit}), got {peer_series_limit!r}")
        if (max_topics + 1) * len(PUBSUB_EVENTS) >= hub.series_limit:
            raise ValueError(f"max_topics must keep p2p.pubsub.messages within the provider's cardinality limit "
                             f"({hub.series_limit}): at most {hub.series_limit // len(PUBSUB_EVENTS) - 2}, "
                             f"got {max_topics!r}")
        capacity = protocol_capacity(hub.series_limit, max_event_names)
        if capacity < len(DEFAULT_PROTOCOLS) + 1:
            raise ValueError(f"max_event_names {max_event_names!r} leaves room for too few protocols under the "
                             f"provider's cardinality limit ({hub.series_limit})")
        registry = NameSet("protocols", (*DEFAULT_PROTOCOLS, OTHER), capacity=capacity)
        for protocol in protocols:
            try:
                registry.register(protocol)
            except ValueError as error:
                raise ValueError(f"protocols: {error}") from None

        self.rejections = Rejections()
        options = CollectorOptions(sample_resources=sample_resources, peer_series_limit=peer_series_limit,
                                   data_dir=data_dir, max_event_names=max_event_names, max_peers=max_peers,
                                   max_topics=max_topics,
                                   resource_names=resource_names, clock=clock)
        context = GroupContext(hub, self.rejections, registry, options)
        self._groups: list[MetricGroup] = []
        for group_class in REGISTRY:
            group = group_class(context)
            context.add(group)
            self._groups.append(group)
            setattr(self, group_class.name, group)

    @property
    def hub(self) -> InstrumentHub:
        """The provider's instruments (for components that export more catalogue metrics)."""
        return self._hub

    def group(self, cls: type[G]) -> G:
        """The collector's group of class ``cls`` (typed access to any registered group)."""
        for group in self._groups:
            if isinstance(group, cls):
                return group
        raise LookupError(f"{cls.__name__} is not a registered metric group")

    @property
    def groups(self) -> tuple[MetricGroup, ...]:
        """The collector's metric groups, in registry order."""
        return tuple(self._groups)

    # -- the seed's API -------------------------------------------------------------------------

    def record_network_metrics(self, m: NetworkMetrics) -> None:
        """Add the seed's aggregate figures (under protocol/transport ``other``, direction ``unknown``)."""
        try:
            network = self.network
            network.sent(OTHER, OTHER).add(m.bytes_sent)
            network.received(OTHER, OTHER).add(m.bytes_received)
            network.set_active(m.active_connections, UNKNOWN, OTHER)
            network.attempts(UNKNOWN, OTHER).add(m.connection_attempts)
            network.failures(OTHER, UNKNOWN, OTHER).add(m.connection_failures)
            if m.avg_connection_latency is not None:
                network.connection_setup(m.avg_connection_latency, UNKNOWN, OTHER)
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

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return all(group.closed for group in self._groups)

    def close(self) -> None:
        """Stop reporting this collector's figures on the provider (idempotent); ``reopen()`` undoes it."""
        for group in reversed(self._groups):
            group.close()

    def reopen(self) -> None:
        """Report this collector's figures again after ``close()`` (idempotent)."""
        for group in self._groups:
            group.reopen()

    def __repr__(self) -> str:
        return f"<MetricsCollector peers={len(self.peers)} provider={type(self.meter_provider).__name__}>"
