"""Helpers for the fault tests: exceptions escaping threads, and the SDK's log de-duplication."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def thread_exceptions() -> Iterator[list[threading.ExceptHookArgs]]:
    """Every exception that escapes a thread while the block runs."""
    caught: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = caught.append
    try:
        yield caught
    finally:
        threading.excepthook = previous


def forget_logged_duplicates() -> None:
    """Let the SDK's exporters log again what they logged in the last 20 s.

    Their loggers carry a ``DuplicateFilter`` that drops a message already logged in the same
    20-second bucket, so a test run after another would see no failure logged at all.
    """
    for log in logging.Logger.manager.loggerDict.values():
        for f in getattr(log, "filters", ()):
            if type(f).__name__ == "DuplicateFilter" and hasattr(f, "last_log"):
                del f.last_log
