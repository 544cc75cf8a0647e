"""Network group: bytes by direction/protocol/transport, connections, attempts, failures, set-up and lifetime."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from typing import Any

from . import catalogue as c
from .bounds import NameSet, Rejections, choices, count_problem, fold, seconds_problem
from .cells import Counter, Family, Level, counter_points
from .instruments import InstrumentHub, Points

__all__ = ["NetworkGroup", "error_type", "Connecting"]

_TRANSPORTS = choices(*c.TRANSPORTS)
_DIRECTIONS = choices(*c.CONNECTION_DIRECTIONS)
_ERROR_TYPES = choices(*c.ERROR_TYPES)

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
    return c.OTHER


def error_type(error: object) -> str:
    """The bounded ``error.type`` for an exception, exception class or name; never its message."""
    try:
        if isinstance(error, BaseException) or (isinstance(error, type) and issubclass(error, BaseException)):
            name = _classify(error)  # type: ignore[arg-type]
            cause = getattr(error, "__cause__", None) or getattr(error, "__context__", None)
            if name == c.OTHER and isinstance(cause, BaseException):
                return _classify(cause)
            return name
        return fold(error, _ERROR_TYPES)
    except Exception:
        return c.OTHER


class Connecting:
    """Context manager (sync or async) around a connection set-up; see ``NetworkGroup.connecting``."""

    __slots__ = ("_group", "_direction", "_transport", "_start", "elapsed")

    def __init__(self, group: NetworkGroup, direction: str, transport: str) -> None:
        self._group = group
        self._direction = direction
        self._transport = transport
        self._start = 0.0
        self.elapsed: float | None = None

    def __enter__(self) -> Connecting:
        self._group.connection_attempted(self._direction, self._transport)
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.elapsed = time.perf_counter() - self._start
        if exc_type is None:
            self._group.connection_setup(self.elapsed, self._direction, self._transport)
            self._group.connection_opened(self._direction, self._transport)
        else:
            self._group.connection_failed(exc if exc is not None else exc_type, self._direction, self._transport)
        return False

    async def __aenter__(self) -> Connecting:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


class NetworkGroup:
    """Records bytes and connection events; every method is safe from any thread and never raises."""

    def __init__(self, hub: InstrumentHub, rejections: Rejections, protocols: NameSet) -> None:
        self._rejections = rejections
        self._protocols = protocols
        make_counter = lambda where: lambda attrs: Counter(attrs, rejections, where)
        self._io = Family(c.NETWORK_IO.attributes, make_counter("p2p.network.io"))
        self._active = Family(c.CONNECTION_ACTIVE.attributes, Level)
        self._attempts = Family(c.CONNECTION_ATTEMPTS.attributes, make_counter("p2p.connection.attempts"))
        self._failures = Family(c.CONNECTION_FAILURES.attributes, make_counter("p2p.connection.failures"))
        self._sent: dict[tuple, Counter] = {}
        self._received: dict[tuple, Counter] = {}
        self._setup = hub.histogram(c.CONNECTION_SETUP)
        self._lifetime = hub.histogram(c.CONNECTION_DURATION)
        self._setup_sum = 0.0
        self._setup_count = 0
        hub.observe(c.NETWORK_IO, self, self._observe_io)
        hub.observe(c.CONNECTION_ACTIVE, self, self._observe_active)
        hub.observe(c.CONNECTION_ATTEMPTS, self, self._observe_attempts)
        hub.observe(c.CONNECTION_FAILURES, self, self._observe_failures)

    # -- bytes ---------------------------------------------------------------------------------

    def bytes_sent(self, n: int, protocol: str = c.OTHER, transport: str = "tcp") -> None:
        """Count ``n`` bytes sent."""
        try:
            cell = self._sent[protocol, transport]
        except Exception:
            cell = self._io_handle(self._sent, "transmit", protocol, transport)
        cell.add(n)

    def bytes_received(self, n: int, protocol: str = c.OTHER, transport: str = "tcp") -> None:
        """Count ``n`` bytes received."""
        try:
            cell = self._received[protocol, transport]
        except Exception:
            cell = self._io_handle(self._received, "receive", protocol, transport)
        cell.add(n)

    def sent(self, protocol: str = c.OTHER, transport: str = "tcp") -> Counter:
        """A bound handle whose ``add(n)`` counts bytes sent: the cheapest record call."""
        return self._io_handle(self._sent, "transmit", protocol, transport)

    def received(self, protocol: str = c.OTHER, transport: str = "tcp") -> Counter:
        """A bound handle whose ``add(n)`` counts bytes received."""
        return self._io_handle(self._received, "receive", protocol, transport)

    def _io_handle(self, cache: dict[tuple, Counter], direction: str, protocol: object,
                   transport: object) -> Counter:
        folded_protocol = self._protocols.lookup(protocol)
        folded_transport = fold(transport, _TRANSPORTS)
        cell = self._io.get((direction, folded_protocol, folded_transport))
        if (folded_protocol == protocol and folded_transport == transport
                and type(protocol) is str and type(transport) is str):
            cache[protocol, transport] = cell  # only names we know: the cache stays bounded
        return cell  # type: ignore[return-value]

    # -- connections ---------------------------------------------------------------------------

    def connection_attempted(self, direction: str = "outbound", transport: str = "tcp") -> None:
        """Count one connection attempt."""
        self.attempts(direction, transport).add(1)

    def connection_opened(self, direction: str = "outbound", transport: str = "tcp") -> None:
        """One more open connection."""
        self._change_active(direction, transport, 1)

    def connection_closed(self, direction: str = "outbound", transport: str = "tcp",
                          duration: float | None = None) -> None:
        """One fewer open connection; ``duration`` (seconds it lived) feeds ``p2p.connection.duration``."""
        attributes = self._change_active(direction, transport, -1)
        if duration is not None:
            self._record_seconds(self._lifetime, duration, attributes, "connection_closed")

    def connection_failed(self, error: object = c.OTHER, direction: str = "outbound",
                          transport: str = "tcp") -> None:
        """Count one failed set-up; ``error`` is an ``error.type`` name, an exception or its class."""
        self.failures(error, direction, transport).add(1)

    def connection_setup(self, duration: float, direction: str = "outbound", transport: str = "tcp") -> None:
        """Record how long one connection took to set up, in seconds."""
        attributes = dict(zip(c.CONNECTION_SETUP.attributes, self._pair(direction, transport)))
        if self._record_seconds(self._setup, duration, attributes, "connection_setup"):
            with self._active.lock:
                self._setup_sum += duration  # type: ignore[operator]
                self._setup_count += 1

    def connecting(self, direction: str = "outbound", transport: str = "tcp") -> Connecting:
        """``with``/``async with``: counts the attempt, times the set-up, counts the outcome."""
        return Connecting(self, direction, transport)

    def attempts(self, direction: str = "outbound", transport: str = "tcp") -> Counter:
        """A bound handle counting connection attempts."""
        return self._attempts.get(self._pair(direction, transport))  # type: ignore[return-value]

    def failures(self, error: object = c.OTHER, direction: str = "outbound", transport: str = "tcp") -> Counter:
        """A bound handle counting failed set-ups of one ``error.type``."""
        return self._failures.get((*self._pair(direction, transport), error_type(error)))  # type: ignore

    def _pair(self, direction: object, transport: object) -> tuple[str, str]:
        pair = (fold(direction, _DIRECTIONS, c.UNKNOWN), fold(transport, _TRANSPORTS))
        if pair not in self._attempts.cells:
            # Every series of the pair exists from its first event, at zero: PromQL's increase()
            # ignores a series' first sample, so a failure must never be a series' first sample.
            self._attempts.get(pair)
            for name in c.ERROR_TYPES:
                self._failures.get((*pair, name))
        return pair

    def set_active(self, level: int, direction: str = c.UNKNOWN, transport: str = c.OTHER) -> None:
        """Replace the level of one ``p2p.connection.active`` series (the seed's aggregate figure)."""
        problem = count_problem(level)
        if problem:
            self._rejections.reject(problem, "set_active")
            return
        cell: Level = self._active.get(self._pair(direction, transport))  # type: ignore[assignment]
        cell.value = level

    def _change_active(self, direction: object, transport: object, delta: int) -> dict[str, str]:
        cell: Level = self._active.get(self._pair(direction, transport))  # type: ignore[assignment]
        with self._active.lock:
            if cell.value + delta < 0:
                self._rejections.reject("unbalanced", "connection_closed")
            else:
                cell.value += delta
        return cell.attributes

    def _record_seconds(self, histogram: Any, seconds: object, attributes: dict, where: str) -> bool:
        problem = seconds_problem(seconds)
        if problem:
            self._rejections.reject(problem, where)
            return False
        try:
            histogram.record(seconds, attributes)
        except Exception:
            self._rejections.reject("error", where)
            return False
        return True

    # -- reading -------------------------------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        """Running totals and current levels, summed over all attribute sets."""
        io = {"transmit": 0, "receive": 0}
        for cell in self._io:
            io[cell.attributes[c.IO_DIRECTION]] += cell.total
        return {
            "bytes_sent": io["transmit"], "bytes_received": io["receive"],
            "active_connections": sum(cell.value for cell in self._active),
            "connection_attempts": sum(cell.total for cell in self._attempts),
            "connection_failures": sum(cell.total for cell in self._failures),
            "avg_connection_latency": self._setup_sum / self._setup_count if self._setup_count else None,
        }

    def _observe_io(self) -> Points:
        return counter_points(self._io)

    def _observe_active(self) -> Points:
        return [(cell.attributes, cell.value) for cell in self._active]

    def _observe_attempts(self) -> Points:
        return counter_points(self._attempts)

    def _observe_failures(self) -> Points:
        return counter_points(self._failures)
