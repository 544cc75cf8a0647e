"""fork() safety: objects whose locks (and threads) must be renewed in a child process.

A child starts with one thread, but with every lock in the state the parent's other threads
left it: a lock held by a thread that recorded at the instant of ``fork()`` stays held forever
in the child. Objects that own locks register here; after a fork, in the child, each one's
``_after_fork_in_child()`` runs (as the OpenTelemetry SDK's periodic reader and CPython's own
``logging`` do).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Protocol

__all__ = ["after_fork_in_child", "ForkAware"]

logger = logging.getLogger("p2p_telemetry")


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_registered: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_registered_lock = threading.Lock()


def after_fork_in_child(owner: ForkAware) -> None:
    """Call ``owner._after_fork_in_child()`` in every child forked while ``owner`` is alive."""
    with _registered_lock:
        _registered.add(owner)


def _renew() -> None:
    global _registered_lock
    _registered_lock = threading.Lock()
    for owner in list(_registered):
        try:
            owner._after_fork_in_child()
        except Exception:  # a child must never die of its telemetry
            logger.exception("p2p-telemetry: renewing %r after fork failed", type(owner).__name__)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew)
