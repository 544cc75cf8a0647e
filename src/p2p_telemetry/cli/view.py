"""The demo's live view: peers by health, bytes/s, connections, protocol events, alerts; one frame per second.

Frames go through a ``Screen``: fitted to the terminal and redrawn in place there, appended once
per second (header once) on a pipe.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, TextIO

from ..collector import MetricsCollector
from .screen import Screen

__all__ = ["LiveView", "rate"]


def rate(value: float, units: tuple[str, str, str] = (" B/s", " KiB/s", " MiB/s"), width: int = 7) -> str:
    """Bytes per second in ``width`` digits and the unit (B, KiB or MiB per second by default)."""
    for unit in units[:-1]:
        if value < 1024:
            return f"{value:{width}.1f}{unit}"
        value /= 1024
    return f"{value:{width}.1f}{units[-1]}"


class LiveView:
    """Renders the node's figures; ``alert_event`` is a CallbackSink function that records alert changes."""

    def __init__(self, collector: MetricsCollector, out: TextIO, *, header: str = "", tty: bool | None = None,
                 alert_source: Any = None, rich: bool | None = None) -> None:
        self.collector = collector
        self.out = out
        self.screen = Screen(out, header, tty=tty, rich=rich)
        self.tty = self.screen.tty
        self.alert_source = alert_source
        self._events: collections.deque[str] = collections.deque(maxlen=6)
        self._lock = threading.Lock()
        self._last: tuple[float, int, int] | None = None

    def alert_event(self, alert: Any) -> None:
        """Note an alert's state change (called by a CallbackSink, from the evaluator's thread)."""
        stamp = time.strftime("%H:%M:%S")
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in ("alertname", "severity"))
        line = f"{stamp}  {alert.state.upper():8} {alert.name}" + (f" ({labels})" if labels else "")
        with self._lock:
            self._events.append(line)
        if not self.tty:
            self.out.write(f"alert: {line}\n")
            self.out.flush()

    def frame(self) -> list[str]:
        """The lines of one frame (the header aside)."""
        now = time.monotonic()
        net = self.collector.network_snapshot()
        sent_rate = received_rate = 0.0
        if self._last is not None and now > self._last[0]:
            elapsed = now - self._last[0]
            sent_rate = (net.bytes_sent - self._last[1]) / elapsed
            received_rate = (net.bytes_received - self._last[2]) / elapsed
        self._last = (now, net.bytes_sent, net.bytes_received)
        peers = self.collector.peer_counts()
        events = self.collector.protocols.snapshot()
        lines = [
            f"peers        {peers['total']:3} total  {peers['healthy']:3} healthy  {peers['degraded']:3} degraded  "
            f"{peers['unhealthy']:3} unhealthy",
            f"bandwidth    out {rate(sent_rate)}   in {rate(received_rate)}   "
            f"(total {net.bytes_sent:,} B out, {net.bytes_received:,} B in)",
            f"connections  {net.active_connections:3} open  {net.connection_attempts:5} attempts  "
            f"{net.connection_failures:3} failed",
        ]
        label = "events"
        for protocol, counts in sorted(events.items()):
            if any(counts.values()):  # one line a protocol: a line of all four would not fit a terminal
                lines.append(f"{label:13}{protocol + ':':11}" + " ".join(f"{e}={n}" for e, n in sorted(counts.items())))
                label = ""
        active = self.alert_source.active_alerts() if self.alert_source is not None else []
        lines.append("alerts now   " + (", ".join(f"{a.name} [{a.state}]" for a in active) or "none"))
        with self._lock:
            lines += ["  " + event for event in self._events]
        return lines

    def start(self) -> None:
        """Show the header (once, on a pipe)."""
        self.screen.start()

    def refresh(self) -> None:
        """Write one frame (redrawn in place on a terminal, appended otherwise)."""
        self.screen.draw(self.frame())

    def stop(self) -> None:
        """Leave the last frame on screen."""
        self.screen.stop()
