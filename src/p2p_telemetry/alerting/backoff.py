"""Exponential backoff with jitter, so that the nodes of a fleet do not retry in step."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays between retries: the n-th is drawn from ``[cap / 2, cap]``, ``cap = min(maximum, minimum * 2**n)``.

    ("Equal jitter": never less than half the exponential delay, so a retry storm still backs off,
    and spread over the other half, so that nodes that failed together retry apart.) ``uniform``
    draws the jitter; the default, the ``random`` module, is reseeded in a forked child, so a
    parent and its children do not draw the same delays either.
    """

    def __init__(self, minimum: float, maximum: float,
                 uniform: Callable[[float, float], float] = random.uniform) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError(f"backoff needs 0 < minimum <= maximum, got {minimum!r} and {maximum!r}")
        self.minimum, self.maximum = float(minimum), float(maximum)
        self._uniform = uniform
        self._attempt = 0

    def cap(self) -> float:
        """The longest the next delay can be."""
        return min(self.maximum, self.minimum * 2.0 ** min(self._attempt, 64))

    def next(self) -> float:
        """The delay before the next retry (each call is one more failed attempt)."""
        cap = self.cap()
        self._attempt += 1
        return self._uniform(cap / 2, cap)

    def reset(self) -> None:
        """After a success: the next failure starts from ``minimum`` again."""
        self._attempt = 0
