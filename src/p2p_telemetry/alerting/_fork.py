"""Fork safety: live objects get fresh locks and forget their threads in a forked child.

A child of ``fork()`` inherits every lock in the state it had in the parent, held ones included,
but only the thread that forked: a lock held by another thread at that moment is never released
there. Objects that own locks and threads register here; in the child each one's
``_after_fork_in_child()`` runs (weakly referenced: registration keeps nothing alive).
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Protocol

__all__ = ["ForkAware", "reset_after_fork"]

logger = logging.getLogger("p2p_telemetry")


class ForkAware(Protocol):
    """Something that puts its locks and threads right in a forked child."""

    def _after_fork_in_child(self) -> None: ...


_live: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def reset_after_fork(instance: ForkAware) -> None:
    """Call ``instance._after_fork_in_child()`` in every child forked from now on, while it lives."""
    _live.add(instance)


def _after_fork_in_child() -> None:
    for instance in list(_live):
        try:
            instance._after_fork_in_child()
        except Exception:  # never break the child's fork
            logger.exception("p2p-telemetry: resetting %r after fork failed", instance)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
