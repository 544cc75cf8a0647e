"""Side-by-side timing in one process: interleaved rounds, best round per case."""

from __future__ import annotations

import gc
import timeit
from collections.abc import Callable


def per_call_ns(cases: dict[str, tuple[str, dict]], number: int = 200_000, rounds: int = 7) -> dict[str, float]:
    """Nanoseconds per call of each ``(statement, globals)`` case, best of ``rounds`` interleaved rounds."""
    timers = {name: timeit.Timer(stmt, globals=env) for name, (stmt, env) in cases.items()}
    best = {name: float("inf") for name in cases}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, timer in timers.items():
                best[name] = min(best[name], timer.timeit(number) / number * 1e9)
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def best_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Wall seconds of the fastest of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        start = timeit.default_timer()
        fn()
        best = min(best, timeit.default_timer() - start)
    return best


def table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    """A plain-text table."""
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths))
    return "\n".join([line(headers), line(tuple("-" * w for w in widths)), *map(line, rows)])
