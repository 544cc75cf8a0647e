"""Plain in-process aggregates that the observable instruments read at collection.

The hot path touches only these: no SDK call, no lock on a counter's ``add``. Totals stay
exact under threads because CPython runs ``self.total += n`` on an int slot without
switching threads inside it (the eval loop only switches at calls and backward jumps).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from .bounds import MAX_COUNT, Rejections

__all__ = ["Counter", "Level", "Family", "counter_points"]

# The fast path accepts counts below 2**30 so that its comparisons stay on CPython's
# single-digit int fast path; bigger counts and totals near 2**63 take a checked path.
_FAST_LIMIT = (1 << 30) - 1
_NEAR_SATURATION = 1 << 62


class Counter:
    """A monotonic running total; ``add(n)`` is the cheapest record call there is."""

    __slots__ = ("total", "attributes", "_rejections", "_where")

    def __init__(self, attributes: dict[str, str], rejections: Rejections, where: str) -> None:
        self.total = 0
        self.attributes = attributes
        self._rejections = rejections
        self._where = where

    def add(self, n: int) -> None:
        """Add ``n`` (an int in 0..2**63-1); an invalid ``n`` is dropped and counted, never raised."""
        if n.__class__ is int and n >= 0 and n <= 1073741823:
            self.total += n
        else:
            self._add_checked(n)

    def _add_checked(self, n: object) -> None:
        if n.__class__ is not int:
            self._rejections.reject("type", self._where)
        elif n < 0 or n > MAX_COUNT:  # type: ignore[operator]
            self._rejections.reject("range", self._where)
        elif self.total + n > MAX_COUNT:  # type: ignore[operator]
            self._rejections.reject("overflow", self._where)
        else:
            self.total += n  # type: ignore[operator]
        self.check_saturation()

    def check_saturation(self) -> None:
        """Switch to the always-checked path once the total nears 2**63."""
        if self.total >= _NEAR_SATURATION:
            self.__class__ = _SaturatingCounter


class _SaturatingCounter(Counter):
    __slots__ = ()

    def add(self, n: int) -> None:
        self._add_checked(n)


class Level:
    """A level that goes up and down (open connections), never below zero."""

    __slots__ = ("value", "attributes")

    def __init__(self, attributes: dict[str, str]) -> None:
        self.value = 0
        self.attributes = attributes


K = tuple  # a family's key: the attribute values, in the spec's attribute order


class Family:
    """Cells of one metric keyed by attribute values; created on first use, never more than the bounds allow."""

    def __init__(self, keys: tuple[str, ...], make: Callable[[dict[str, str]], object]) -> None:
        self._keys = keys
        self._make = make
        self.cells: dict[K, object] = {}
        self.lock = threading.Lock()

    def get(self, key: K):  # -> cell
        """The cell for ``key`` (already folded into bounded values), created if new."""
        cell = self.cells.get(key)
        if cell is None:
            with self.lock:
                cell = self.cells.get(key)
                if cell is None:
                    cell = self._make(dict(zip(self._keys, key)))
                    # Copy-on-write so that readers iterate without a lock.
                    self.cells = {**self.cells, key: cell}
        return cell

    def __iter__(self) -> Iterator:
        return iter(self.cells.values())


def counter_points(family: Family) -> list[tuple[dict[str, str], int]]:
    """``(attributes, total)`` of every counter in ``family``, for an observable counter's callback."""
    points = []
    for cell in family:
        cell.check_saturation()  # type: ignore[attr-defined]
        points.append((cell.attributes, cell.total))  # type: ignore[attr-defined]
    return points
