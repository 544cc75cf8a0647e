"""Process-wide hooks into py-libp2p functions that no host instance exposes (ping, identify, a DHT's
constructor...), and the registry that routes each call to the instrumentation of its host.

A patch replaces one module attribute once per process; the replacement calls the original and,
when the call belongs to an instrumented host, tells that host's instrumentation. Calls on hosts
that are not instrumented pass straight through. ``remove_all()`` puts every original back.
If py-libp2p no longer has the attribute, the patch is skipped with one debug line: the figures it
fed are then missing, nothing else changes.
"""

from __future__ import annotations

import importlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Patch", "install", "remove_all", "HOSTS", "PEERSTORES", "instrumentation_of", "attaching_init",
           "constructing"]

logger = logging.getLogger("p2p_telemetry")

_ORIGINAL = "_p2p_telemetry_original"

#: host -> its instrumentation, for hooks whose call names the host (``self.host``, ``host``).
HOSTS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
#: peerstore -> the instrumentation of the host that owns it, for hooks given only the peerstore.
PEERSTORES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def instrumentation_of(registry: weakref.WeakKeyDictionary[Any, Any], key: Any) -> Any:
    """The open instrumentation registered for ``key``, or None (never raises)."""
    try:
        found = registry.get(key)
    except TypeError:  # unhashable
        return None
    return None if found is None or found.closed else found


_constructing: set[int] = set()


def attaching_init(original: Callable[..., None]) -> Callable[..., None]:
    """A protocol class's constructor that, once the object is built, attaches it to its host's instrumentation.

    The object may register stream handlers while it is being built; ``constructing(obj)`` tells
    handler discovery to wait for the end of the constructor.
    """
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        _constructing.add(id(self))
        try:
            original(self, *args, **kwargs)
        finally:
            _constructing.discard(id(self))
        owner = instrumentation_of(HOSTS, getattr(self, "host", None))
        if owner is not None:
            owner.attach(self, quiet=True)
    return __init__


def constructing(obj: Any) -> bool:
    """True while ``obj``'s constructor (a patched one) runs."""
    return id(obj) in _constructing


class Patch:
    """``owner.name`` (``owner`` a module path, or ``module:Class``) replaced by ``make(original)``."""

    def __init__(self, owner: str, name: str, make: Callable[[Any], Any]) -> None:
        self.owner = owner
        self.name = name
        self.make = make

    def _target(self) -> Any:
        module_name, _, class_name = self.owner.partition(":")
        target = importlib.import_module(module_name)
        return getattr(target, class_name) if class_name else target

    def install(self) -> bool:
        """Install the patch (idempotent); False when py-libp2p lacks what it patches."""
        try:
            target = self._target()
            current = target.__dict__[self.name] if isinstance(target, type) else getattr(target, self.name)
        except (ImportError, AttributeError, KeyError):
            logger.debug("p2p-telemetry: py-libp2p has no %s.%s; the figures it feeds are not reported",
                         self.owner, self.name)
            return False
        if getattr(current, _ORIGINAL, None) is not None:
            return True
        replacement = self.make(current)
        setattr(replacement, _ORIGINAL, current)
        setattr(target, self.name, replacement)
        _installed.append(self)
        return True

    def remove(self) -> None:
        """Put the original back (idempotent)."""
        try:
            target = self._target()
            current = target.__dict__[self.name] if isinstance(target, type) else getattr(target, self.name)
        except (ImportError, AttributeError, KeyError):
            return
        original = getattr(current, _ORIGINAL, None)
        if original is not None:
            setattr(target, self.name, original)


_installed: list[Patch] = []
_lock = threading.Lock()


def install(patches: tuple[Patch, ...]) -> None:
    """Install each patch once per process."""
    with _lock:
        for patch in patches:
            patch.install()


def remove_all() -> None:
    """Put back every original this module replaced."""
    with _lock:
        for patch in reversed(_installed):
            patch.remove()
        _installed.clear()
