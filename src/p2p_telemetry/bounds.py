"""Validation, folding of unknown names into ``other``, and the count of rejected measurements.

Every metric group uses this one mechanism; none re-invents it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from ._fork import after_fork_in_child
from .attributes import OTHER, REJECT_REASONS

__all__ = ["Rejections", "NameSet", "MAX_COUNT", "count_problem", "seconds_problem", "ratio_problem",
           "clean_name", "choices", "fold", "duration",
           "parse_duration", "SettingTypeError"]

logger = logging.getLogger("p2p_telemetry")

MAX_COUNT = 2**63 - 1
MAX_NAME_LENGTH = 128
MAX_PEER_ID_LENGTH = 256


def count_problem(n: object) -> str | None:
    """Why ``n`` is not a valid count (an int, not a bool, in 0..2**63-1), or None."""
    if type(n) is not int:
        return "type"
    if n < 0 or n > MAX_COUNT:
        return "range"
    return None


def seconds_problem(x: object) -> str | None:
    """Why ``x`` is not a valid duration in seconds (a finite number >= 0), or None."""
    if type(x) is float or type(x) is int:
        return None if 0 <= x < math.inf else "range"  # NaN fails every comparison
    return "type"


def ratio_problem(x: object) -> str | None:
    """Why ``x`` is not a finite number in 0..1, or None."""
    if type(x) is float or type(x) is int:
        return None if 0 <= x <= 1 else "range"
    return "type"


def clean_name(value: object, max_length: int = MAX_NAME_LENGTH) -> str | None:
    """``value`` if it can be an attribute value (printable UTF-8 ``str``, 1..max_length chars), else None."""
    if type(value) is not str or not 0 < len(value) <= max_length or not value.isprintable():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return None
    return value


def choices(*names: str) -> dict[str, str]:
    """A fixed set of accepted values, for ``fold``."""
    return {name: name for name in names}


def fold(value: object, allowed: Mapping[Any, str], default: str = OTHER) -> str:
    """The accepted name equal to ``value``, else ``default``; never raises."""
    try:
        return allowed.get(value, default)
    except Exception:  # unhashable, or a hostile __hash__/__eq__
        return default


class Rejections:
    """Counts measurements dropped as invalid, by reason; logs each reason once, never per value."""

    def __init__(self) -> None:
        self._counts = dict.fromkeys(REJECT_REASONS, 0)
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        after_fork_in_child(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def reject(self, reason: str, where: str) -> None:
        """Count one dropped measurement; ``where`` names the call, never the value."""
        with self._lock:
            self._counts[reason] += 1
            first = reason not in self._logged
            self._logged.add(reason)
        if first:
            logger.warning(
                "p2p-telemetry dropped an invalid measurement in %s (reason=%s); further drops are "
                "counted in p2p.telemetry.rejected and not logged again", where, reason)

    def counts(self) -> dict[str, int]:
        """Dropped measurements so far, by reason."""
        with self._lock:
            return dict(self._counts)


class NameSet:
    """A bounded set of names accepted as attribute values; anything else folds into ``other``.

    ``capacity`` bounds the names it ever holds, registered or admitted: a registration past it
    is refused with a warning (the name then counts under ``other``), so the series a name can
    open stay within what the SDK exports without overflow.
    """

    def __init__(self, what: str, names: Iterable[str] = (), capacity: int | None = None, *,
                 admit_limit: int | None = None) -> None:
        self._what = what
        self._names: dict[str, str] = {}
        self._capacity = capacity
        self._admit_limit = admit_limit
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        after_fork_in_child(self)
        for name in names:
            self.register(name)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int | None:
        """The most names this set ever holds (None: unbounded)."""
        return self._capacity

    def register(self, name: str) -> bool:
        """Accept ``name`` from now on; False (with a warning, once) when the set is full.

        Raises ValueError for a name that cannot be an attribute value.
        """
        if clean_name(name) is None:
            raise ValueError(f"{self._what}: {name!r} is not a valid name (1..{MAX_NAME_LENGTH} printable chars)")
        with self._lock:
            if name in self._names:
                return True
            if self._capacity is not None and len(self._names) >= self._capacity:
                full = True
            else:
                self._names = {**self._names, name: name}
                full = False
        if full:
            self._warn_once("full", "p2p-telemetry: %s: %r is not registered, the set is full (%d names, the most "
                            "whose series stay within the SDK's cardinality limit); it counts under %r",
                            self._what, name, self._capacity, OTHER)
        return not full

    def admit(self, value: object) -> str:
        """The known name equal to ``value``, or ``value`` newly admitted while under the admit limit, or ``other``."""
        name = fold(value, self._names, "")
        if name:
            return name
        cleaned = clean_name(value)
        if cleaned is not None and self._admit_limit is not None:
            limit = self._admit_limit if self._capacity is None else min(self._admit_limit, self._capacity)
            with self._lock:
                if cleaned in self._names or len(self._names) < limit:
                    self._names = {**self._names, cleaned: cleaned}
                    return cleaned
        self._warn_outside()
        return OTHER

    def lookup(self, value: object) -> str:
        """The known name equal to ``value``, or ``other`` (never admits a new one)."""
        name = fold(value, self._names, "")
        if name:
            return name
        self._warn_outside()
        return OTHER

    def _warn_outside(self) -> None:
        self._warn_once("outside", "p2p-telemetry: %s outside the accepted set are counted under %r (warned once)",
                        self._what, OTHER)

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(message, *args)

    def __contains__(self, value: object) -> bool:
        return bool(fold(value, self._names, ""))

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)


class SettingTypeError(TypeError, ValueError):
    """A setting of the wrong type.

    A ``TypeError``, as a wrong type should be; also a ``ValueError``, so that code written when
    every configuration mistake raised ``ValueError`` keeps catching it.
    """


# Prometheus's duration grammar: units from the largest down, each at most once ("1h30m", "2d", "90s").
# A decimal number before one unit ("1.5m") is accepted too, as earlier versions of load_rules did.
_DURATION_UNITS = (("y", 365 * 86400.0), ("w", 7 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0),
                   ("s", 1.0), ("ms", 0.001))
_PROMETHEUS_DURATION = re.compile("".join(f"(?:(?P<{unit}>\\d+){unit})?" for unit, _ in _DURATION_UNITS))
_DECIMAL_DURATION = re.compile(r"(\d+\.\d+|\d+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float | None:
    """Seconds in a Prometheus duration string (``"1m30s"``, ``"2d"``, ``"500ms"``, ``"0"``), or None."""
    text = text.strip()
    if text == "0":
        return 0.0
    match = _PROMETHEUS_DURATION.fullmatch(text)
    if text and match:
        return sum(int(match[unit]) * size for unit, size in _DURATION_UNITS if match[unit] is not None)
    match = _DECIMAL_DURATION.fullmatch(text)
    if match:
        return float(match[1]) * dict(_DURATION_UNITS)[match[2]]
    return None


def duration(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A duration setting in seconds: a number, a ``timedelta`` or a Prometheus duration string (``"5m"``).

    Raises ``SettingTypeError`` (a TypeError) for a wrong type and ``ValueError`` for a wrong value,
    each naming the setting. The one duration check of the package: rules, provider, CLI and
    health checks all call it.
    """
    given = value
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        value = parse_duration(value)
        if value is None:
            raise ValueError(f"{name} must be a duration such as 30, '30s', '1m30s' or '2h', got {given!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingTypeError(f"{name} must be a number of seconds, a timedelta or a duration string, "
                               f"got {type(given).__name__} {given!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number of seconds, "
                         f"got {given!r}")
    return float(value)

