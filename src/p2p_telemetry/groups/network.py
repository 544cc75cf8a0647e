"""Network group: bytes by direction/protocol/transport, connections, attempts, failures, set-up and lifetime."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from types import TracebackType
from typing import Any, ClassVar

from opentelemetry.metrics import Histogram

from ..attributes import (
    CONNECTION_DIRECTION,
    CONNECTION_DIRECTIONS,
    ERROR_TYPE,
    ERROR_TYPES,
    IO_DIRECTION,
    OTHER,
    P2P_TRANSPORT,
    P2P_TRANSPORTS,
    PROTOCOL,
    TRANSPORT,
    TRANSPORTS,
    UNKNOWN,
)
from ..bounds import choices, count_problem, fold, seconds_problem
from ..cells import Counter, Family, Level, counter_points, new_counter
from ..instruments import Points
from ..metric import Kind, MetricSpec
from .base import GroupContext, MetricGroup

__all__ = ["NetworkGroup", "error_type", "Connecting", "SPECS", "NETWORK_IO", "CONNECTION_ACTIVE",
           "CONNECTION_ATTEMPTS", "CONNECTION_FAILURES", "CONNECTION_SETUP", "CONNECTION_DURATION",
           "SETUP_BUCKETS", "LIFETIME_BUCKETS"]

# Histogram buckets, in seconds.
SETUP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LIFETIME_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 604800.0)

_CONNECTION = (CONNECTION_DIRECTION, TRANSPORT, P2P_TRANSPORT)

NETWORK_IO = MetricSpec(
    "p2p.network.io", Kind.COUNTER, "By", "Bytes this node sent and received over its peer connections.",
    (IO_DIRECTION, PROTOCOL, TRANSPORT), "p2p_network_io_bytes_total")
CONNECTION_ACTIVE = MetricSpec(
    "p2p.connection.active", Kind.UP_DOWN_COUNTER, "{connection}", "Peer connections open now.",
    _CONNECTION, "p2p_connection_active")
CONNECTION_ATTEMPTS = MetricSpec(
    "p2p.connection.attempts", Kind.COUNTER, "{attempt}", "Connections this node tried to set up.",
    _CONNECTION, "p2p_connection_attempts_total")
CONNECTION_FAILURES = MetricSpec(
    "p2p.connection.failures", Kind.COUNTER, "{failure}", "Connection set-ups that failed, by class of error.",
    (*_CONNECTION, ERROR_TYPE), "p2p_connection_failures_total")
CONNECTION_SETUP = MetricSpec(
    "p2p.connection.setup.duration", Kind.HISTOGRAM, "s", "Time from dial or accept to a usable connection.",
    _CONNECTION, "p2p_connection_setup_duration_seconds", SETUP_BUCKETS)
CONNECTION_DURATION = MetricSpec(
    "p2p.connection.duration", Kind.HISTOGRAM, "s", "How long a closed connection lived.",
    _CONNECTION, "p2p_connection_duration_seconds", LIFETIME_BUCKETS)
SPECS = (NETWORK_IO, CONNECTION_ACTIVE, CONNECTION_ATTEMPTS, CONNECTION_FAILURES, CONNECTION_SETUP,
         CONNECTION_DURATION)

_TRANSPORTS = choices(*TRANSPORTS)
_P2P_TRANSPORTS = choices(*P2P_TRANSPORTS)
_DIRECTIONS = choices(*CONNECTION_DIRECTIONS)
_ERROR_TYPES = choices(*ERROR_TYPES)
# The p2p.transport of a connection whose stack is not named: what its layer-4 transport implies.
_P2P_TRANSPORT_OF = {"tcp": "tcp", "quic": "quic"}

_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN,
                       errno.EHOSTDOWN}
_ERRNO_TYPES = {errno.ECONNREFUSED: "refused", errno.ECONNRESET: "reset", errno.EPIPE: "reset",
                errno.ECONNABORTED: "reset", errno.ETIMEDOUT: "timeout",
                **dict.fromkeys(_UNREACHABLE_ERRNOS, "unreachable")}
_CLASS_TYPES: tuple[tuple[type[BaseException], str], ...] = (
    (asyncio.CancelledError, "canceled"), (KeyboardInterrupt, "canceled"), (SystemExit, "canceled"),
    (GeneratorExit, "canceled"),
    (TimeoutError, "timeout"), (asyncio.TimeoutError, "timeout"),
    (ssl.SSLError, "tls"), (ssl.CertificateError, "tls"),
    (ConnectionRefusedError, "refused"),
    (ConnectionResetError, "reset"), (ConnectionAbortedError, "reset"), (BrokenPipeError, "reset"),
    (asyncio.IncompleteReadError, "reset"), (EOFError, "reset"),
    (socket.gaierror, "unreachable"),
)
# For libraries' own exception classes (py-libp2p's and others), by words in the class names.
_NAME_HINTS = (("timeout", "timeout"), ("refused", "refused"), ("reset", "reset"), ("eof", "reset"),
               ("closed", "reset"), ("ssl", "tls"), ("tls", "tls"), ("certificate", "tls"),
               ("unreachable", "unreachable"), ("noroute", "unreachable"), ("resolve", "unreachable"),
               ("dns", "unreachable"), ("protocol", "protocol"), ("handshake", "protocol"),
               ("negotiat", "protocol"), ("multiselect", "protocol"), ("security", "protocol"),
               ("decode", "protocol"), ("parse", "protocol"), ("cancel", "canceled"))


def _classify(error: BaseException | type[BaseException]) -> str:
    cls = error if isinstance(error, type) else type(error)
    for base, name in _CLASS_TYPES:
        if issubclass(cls, base):
            return name
    if isinstance(error, OSError) and error.errno in _ERRNO_TYPES:
        return _ERRNO_TYPES[error.errno]
    for klass in cls.__mro__:
        lowered = klass.__name__.lower()
        for hint, name in _NAME_HINTS:
            if hint in lowered:
                return name
    return OTHER


def error_type(error: object) -> str:
    """The bounded ``error.type`` for an exception, exception class or name; never its message."""
    try:
        if isinstance(error, BaseException) or (isinstance(error, type) and issubclass(error, BaseException)):
            name = _classify(error)
            cause = getattr(error, "__cause__", None) or getattr(error, "__context__", None)
            if name == OTHER and isinstance(cause, BaseException):
                return _classify(cause)
            return name
        return fold(error, _ERROR_TYPES)
    except Exception:
        return OTHER


ConnectionKey = tuple[str, str, str]  # (direction, network.transport, p2p.transport), folded


class Connecting:
    """Context manager (sync or async) around a connection set-up; see ``NetworkGroup.connecting``."""

    __slots__ = ("_group", "_key", "_start", "elapsed")

    def __init__(self, group: NetworkGroup, key: ConnectionKey) -> None:
        self._group = group
        self._key = key
        self._start = 0.0
        self.elapsed: float | None = None

    def __enter__(self) -> Connecting:
        self._group._attempts.get(self._key).add(1)
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.elapsed = time.perf_counter() - self._start
        group = self._group
        if exc_type is None:
            group._record_setup(self.elapsed, self._key)
            group._change_active(self._key, 1)
        else:
            group._failure(self._key, exc if exc is not None else exc_type).add(1)

    async def __aenter__(self) -> Connecting:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


class NetworkGroup(MetricGroup):
    """Records bytes and connection events; every method is safe from any thread and never raises.

    Connection methods take the connection's ``direction`` (``inbound``/``outbound``), its layer-4
    ``transport`` (``network.transport``: ``tcp``, ``quic``...) and, for stacks such as libp2p, its
    ``p2p_transport`` (``tcp``, ``quic``, ``ws``, ``circuit``...; by default what ``transport`` implies).
    """

    name: ClassVar[str] = "network"
    specs: ClassVar[tuple[MetricSpec, ...]] = SPECS

    def __init__(self, context: GroupContext) -> None:
        super().__init__(context)
        self._protocols = context.protocols
        rejections = context.rejections
        self._io: Family[Counter] = Family(NETWORK_IO.attributes, new_counter(rejections, NETWORK_IO.name))
        self._active: Family[Level] = Family(CONNECTION_ACTIVE.attributes, Level)
        self._attempts: Family[Counter] = Family(CONNECTION_ATTEMPTS.attributes,
                                                 new_counter(rejections, CONNECTION_ATTEMPTS.name))
        self._failures: Family[Counter] = Family(CONNECTION_FAILURES.attributes,
                                                 new_counter(rejections, CONNECTION_FAILURES.name))
        self._sent: dict[tuple[str, str], Counter] = {}
        self._received: dict[tuple[str, str], Counter] = {}
        self._setup = self.histogram(CONNECTION_SETUP)
        self._lifetime = self.histogram(CONNECTION_DURATION)
        self._setup_sum = 0.0
        self._setup_count = 0
        self.observe(NETWORK_IO, lambda: counter_points(self._io))
        self.observe(CONNECTION_ACTIVE, self._observe_active)
        self.observe(CONNECTION_ATTEMPTS, lambda: counter_points(self._attempts))
        self.observe(CONNECTION_FAILURES, lambda: counter_points(self._failures))

    # -- bytes ---------------------------------------------------------------------------------

    def bytes_sent(self, n: int, protocol: str = OTHER, transport: str = "tcp") -> None:
        """Count ``n`` bytes sent."""
        try:
            cell = self._sent[protocol, transport]
        except Exception:
            cell = self._io_handle(self._sent, "transmit", protocol, transport)
        cell.add(n)

    def bytes_received(self, n: int, protocol: str = OTHER, transport: str = "tcp") -> None:
        """Count ``n`` bytes received."""
        try:
            cell = self._received[protocol, transport]
        except Exception:
            cell = self._io_handle(self._received, "receive", protocol, transport)
        cell.add(n)

    def sent(self, protocol: str = OTHER, transport: str = "tcp") -> Counter:
        """A bound handle whose ``add(n)`` counts bytes sent: the cheapest record call."""
        return self._io_handle(self._sent, "transmit", protocol, transport)

    def received(self, protocol: str = OTHER, transport: str = "tcp") -> Counter:
        """A bound handle whose ``add(n)`` counts bytes received."""
        return self._io_handle(self._received, "receive", protocol, transport)

    def _io_handle(self, cache: dict[tuple[str, str], Counter], direction: str, protocol: object,
                   transport: object) -> Counter:
        folded_protocol = self._protocols.lookup(protocol)
        folded_transport = fold(transport, _TRANSPORTS)
        cell = self._io.get((direction, folded_protocol, folded_transport))
        if folded_protocol == protocol and folded_transport == transport:
            cache[folded_protocol, folded_transport] = cell  # only names we know: the cache stays bounded
        return cell

    # -- connections ---------------------------------------------------------------------------

    def connection_attempted(self, direction: str = "outbound", transport: str = "tcp",
                             p2p_transport: str | None = None) -> None:
        """Count one connection attempt."""
        self.attempts(direction, transport, p2p_transport).add(1)

    def connection_opened(self, direction: str = "outbound", transport: str = "tcp",
                          p2p_transport: str | None = None) -> None:
        """One more open connection."""
        self._change_active(self._key(direction, transport, p2p_transport), 1)

    def connection_closed(self, direction: str = "outbound", transport: str = "tcp", duration: float | None = None,
                          p2p_transport: str | None = None) -> None:
        """One fewer open connection; ``duration`` (seconds it lived) feeds ``p2p.connection.duration``."""
        key = self._key(direction, transport, p2p_transport)
        self._change_active(key, -1)
        if duration is not None:
            self._record_seconds(self._lifetime, duration, key, "connection_closed")

    def connection_failed(self, error_type: object = OTHER, direction: str = "outbound", transport: str = "tcp",
                          p2p_transport: str | None = None, *, error: object = None) -> None:
        """Count one failed set-up; ``error_type`` is an ``error.type`` name, an exception or its class.

        ``error=`` is an alias of ``error_type=``.
        """
        self.failures(error_type if error is None else error, direction, transport, p2p_transport).add(1)

    def connection_setup(self, duration: float, direction: str = "outbound", transport: str = "tcp",
                         p2p_transport: str | None = None) -> None:
        """Record how long one connection took to set up, in seconds."""
        self._record_setup(duration, self._key(direction, transport, p2p_transport))

    def connecting(self, direction: str = "outbound", transport: str = "tcp",
                   p2p_transport: str | None = None) -> Connecting:
        """``with``/``async with``: counts the attempt, times the set-up, counts the outcome."""
        return Connecting(self, self._key(direction, transport, p2p_transport))

    def attempts(self, direction: str = "outbound", transport: str = "tcp",
                 p2p_transport: str | None = None) -> Counter:
        """A bound handle counting connection attempts."""
        return self._attempts.get(self._key(direction, transport, p2p_transport))

    def failures(self, error_type: object = OTHER, direction: str = "outbound", transport: str = "tcp",
                 p2p_transport: str | None = None, *, error: object = None) -> Counter:
        """A bound handle counting failed set-ups of one ``error.type`` (``error=`` is an alias)."""
        return self._failure(self._key(direction, transport, p2p_transport),
                             error_type if error is None else error)

    def set_active(self, level: int, direction: str = UNKNOWN, transport: str = OTHER,
                   p2p_transport: str | None = None) -> None:
        """Replace the level of one ``p2p.connection.active`` series (the seed's aggregate figure)."""
        problem = count_problem(level)
        if problem:
            self._rejections.reject(problem, "set_active")
            return
        self._active.get(self._key(direction, transport, p2p_transport)).value = level

    def _key(self, direction: object, transport: object, p2p_transport: object) -> ConnectionKey:
        folded = fold(transport, _TRANSPORTS)
        stack = _P2P_TRANSPORT_OF.get(folded, OTHER) if p2p_transport is None else fold(p2p_transport,
                                                                                          _P2P_TRANSPORTS)
        key = (fold(direction, _DIRECTIONS, UNKNOWN), folded, stack)
        if key not in self._attempts.cells:
            # Every series of a connection kind exists from its first event, at zero: PromQL's increase()
            # ignores a series' first sample, so a failure must never be a series' first sample.
            self._attempts.get(key)
            for name in ERROR_TYPES:
                self._failures.get((*key, name))
        return key

    def _failure(self, key: ConnectionKey, error: object) -> Counter:
        return self._failures.get((*key, error_type(error)))

    def _change_active(self, key: ConnectionKey, delta: int) -> None:
        cell = self._active.get(key)
        with self._active.lock:
            if cell.value + delta < 0:
                self._rejections.reject("unbalanced", "connection_closed")
            else:
                cell.value += delta

    def _record_setup(self, duration: object, key: ConnectionKey) -> None:
        recorded = self._record_seconds(self._setup, duration, key, "connection_setup")
        if recorded is not None:
            with self._active.lock:
                self._setup_sum += recorded
                self._setup_count += 1

    def _record_seconds(self, histogram: Histogram, seconds: object, key: ConnectionKey, where: str) -> float | None:
        """Record a valid duration and return it; drop and count an invalid one (None)."""
        problem = seconds_problem(seconds)
        if problem or not isinstance(seconds, (int, float)):
            self._rejections.reject(problem or "type", where)
            return None
        try:
            histogram.record(seconds, dict(zip(_CONNECTION, key)))
        except Exception:
            self._rejections.reject("error", where)
            return None
        return seconds

    # -- reading -------------------------------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        """Running totals and current levels, summed over all attribute sets."""
        io = {"transmit": 0, "receive": 0}
        for cell in self._io:
            io[cell.attributes[IO_DIRECTION]] += cell.total
        return {
            "bytes_sent": io["transmit"], "bytes_received": io["receive"],
            "active_connections": sum(cell.value for cell in self._active),
            "connection_attempts": sum(cell.total for cell in self._attempts),
            "connection_failures": sum(cell.total for cell in self._failures),
            "avg_connection_latency": self._setup_sum / self._setup_count if self._setup_count else None,
        }

    def io_totals(self) -> tuple[int, int]:
        """Bytes sent and received so far, over all protocols and transports."""
        totals = self.totals()
        return totals["bytes_sent"], totals["bytes_received"]

    def _observe_active(self) -> Points:
        return [(cell.attributes, cell.value) for cell in self._active]
