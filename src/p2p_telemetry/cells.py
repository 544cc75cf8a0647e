"""Plain in-process aggregates that the observable instruments read at collection.

The hot path touches only these: no SDK call, and on a CPython with the GIL no lock on a
counter's ``add``.

Why ``Counter.add`` is exact under threads without a lock (on a CPython with the GIL):
``self.total += n`` on a ``__slots__`` attribute is three instructions (load the slot, add two
ints, store the slot). The interpreter only looks at whether to hand the GIL to another thread
at function entry, backward jumps and calls; none happens between those three: the slot
descriptor and int addition are C code, and allocating the result int never starts the cyclic
garbage collector (ints are not GC-tracked), so no Python code (a finalizer) can run in between.
No other thread can interleave, so no update is lost. ``tests/stress/test_concurrency.py``
checks exact totals with 8 threads.

A free-threaded build (PEP 703, ``python3.13t`` with the GIL off) gives no such guarantee, so
there ``Counter`` is chosen at import to be ``LockedCounter``, whose ``add`` takes a lock.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ._fork import after_fork_in_child
from .bounds import MAX_COUNT, Rejections

__all__ = ["Counter", "LockedCounter", "Level", "Family", "counter_points", "GIL_ENABLED", "new_counter"]

#: False on a free-threaded build running without the GIL.
GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()

# Counts up to 2**30 - 1 stay on CPython's single-digit int fast path in the comparisons; bigger
# counts, and every count once the total nears 2**63, take the checked path.
FAST_LIMIT = (1 << 30) - 1
NEAR_SATURATION = 1 << 62
_NO_FAST_PATH = -1  # a fast limit no count passes: every add is checked


class Counter:
    """A monotonic running total; ``add(n)`` is the cheapest record call there is."""

    __slots__ = ("total", "attributes", "_fast_limit", "_rejections", "_where")

    def __init__(self, attributes: dict[str, str], rejections: Rejections, where: str) -> None:
        self.total = 0
        self.attributes = attributes
        self._fast_limit = FAST_LIMIT
        self._rejections = rejections
        self._where = where

    def add(self, n: int) -> None:
        """Add ``n`` (an int in 0..2**63-1); an invalid ``n`` is dropped and counted, never raised."""
        if n.__class__ is int and n >= 0 and n <= self._fast_limit:
            self.total += n
        else:
            self._add_checked(n)

    def _add_checked(self, n: object) -> None:
        if type(n) is not int:
            self._rejections.reject("type", self._where)
        elif n < 0 or n > MAX_COUNT:
            self._rejections.reject("range", self._where)
        elif self.total + n > MAX_COUNT:
            self._rejections.reject("overflow", self._where)
        else:
            self.total += n
        self.check_saturation()

    def check_saturation(self) -> None:
        """Send every later ``add`` through the checked path once the total nears 2**63."""
        if self.total >= NEAR_SATURATION:
            self._fast_limit = _NO_FAST_PATH


class LockedCounter(Counter):
    """A ``Counter`` whose updates take a lock: exact without the GIL (free-threaded builds)."""

    __slots__ = ("_lock", "__weakref__")

    def __init__(self, attributes: dict[str, str], rejections: Rejections, where: str) -> None:
        super().__init__(attributes, rejections, where)
        self._lock = threading.Lock()
        after_fork_in_child(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        """Add ``n`` under the counter's lock."""
        with self._lock:
            if n.__class__ is int and n >= 0 and n <= self._fast_limit:
                self.total += n
            else:
                self._add_checked(n)


#: The counter class this interpreter needs: lock-free with the GIL, locked without it.
COUNTER_CLASS: type[Counter] = Counter if GIL_ENABLED else LockedCounter


def new_counter(rejections: Rejections, where: str) -> Callable[[dict[str, str]], Counter]:
    """A factory of counters for a ``Family`` (drops and counts invalid adds as ``where``)."""
    return lambda attributes: COUNTER_CLASS(attributes, rejections, where)


class Level:
    """A level that goes up and down (open connections), never below zero."""

    __slots__ = ("value", "attributes")

    def __init__(self, attributes: dict[str, str]) -> None:
        self.value = 0
        self.attributes = attributes


Cell = TypeVar("Cell")
Key = tuple[str, ...]  # a family's key: the attribute values, in the spec's attribute order


class Family(Generic[Cell]):
    """Cells of one metric keyed by attribute values; created on first use, never more than the bounds allow."""

    def __init__(self, keys: tuple[str, ...], make: Callable[[dict[str, str]], Cell]) -> None:
        self._keys = keys
        self._make = make
        self.cells: dict[Key, Cell] = {}
        self.lock = threading.Lock()
        after_fork_in_child(self)

    def get(self, key: Key) -> Cell:
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

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells.values())

    def __len__(self) -> int:
        return len(self.cells)

    def _after_fork_in_child(self) -> None:
        self.lock = threading.Lock()


def counter_points(family: Family[Counter]) -> list[tuple[dict[str, str], int]]:
    """``(attributes, total)`` of every counter in ``family``, for an observable counter's callback."""
    points = []
    for cell in family:
        cell.check_saturation()
        points.append((cell.attributes, cell.total))
    return points
