"""Objects a group reads at collection time (a router's mesh, a routing table, a resource manager).

An integration attaches them while the node runs and detaches them when it lets go of the
object; the group's one source per metric reads whatever is attached at each collection, so
closing the group (``MetricsCollector.close()``) stops all of it at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .._fork import after_fork_in_child

__all__ = ["Views"]

logger = logging.getLogger("p2p_telemetry")

T = TypeVar("T")


class Views(Generic[T]):
    """An attach/detach list of views; iteration reads a snapshot, without a lock."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._items: tuple[T, ...] = ()
        self._lock = threading.Lock()
        self._failed = False
        after_fork_in_child(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def add(self, item: T) -> Callable[[], None]:
        """Read ``item`` from now on; returns the function that detaches it (idempotent)."""
        with self._lock:
            self._items = (*self._items, item)

        def remove() -> None:
            with self._lock:
                self._items = tuple(i for i in self._items if i is not item)
        return remove

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def read(self, reader: Callable[[T], None]) -> None:
        """Call ``reader(view)`` for each view; one that fails is skipped (and logged once), never raised."""
        for item in self._items:
            try:
                reader(item)
            except Exception:
                if not self._failed:
                    self._failed = True
                    logger.warning("p2p-telemetry: reading %s failed; that view is left out of this collection",
                                   self._what, exc_info=True)
