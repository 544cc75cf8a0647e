"""Where alerts go: the log, a callback, or a real Alertmanager (``POST /api/v2/alerts``)."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

from ..bounds import seconds
from .evaluator import FIRING, RESOLVED, Alert

__all__ = ["Sink", "LogSink", "CallbackSink", "AlertmanagerSink"]

logger = logging.getLogger("p2p_telemetry")


class Sink(Protocol):
    """Receives every alert state change; must not block (the evaluator calls it inline)."""

    def notify(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class LogSink:
    """Logs every state change on the ``p2p_telemetry`` logger."""

    def __init__(self, level: int = logging.WARNING, log: logging.Logger | None = None) -> None:
        self.level = level
        self.log = log or logger

    def notify(self, alert: Alert) -> None:
        """Log one state change."""
        level = self.level if alert.state == FIRING else logging.INFO
        self.log.log(level, "p2p-telemetry alert %s %s: %s %s", alert.name, alert.state, alert.summary,
                     {k: v for k, v in alert.labels.items() if k != "alertname"})

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"LogSink(level={logging.getLevelName(self.level)})"


class CallbackSink:
    """Calls ``fn(alert)`` on every state change (in the evaluator's thread: keep it short)."""

    def __init__(self, fn: Callable[[Alert], Any]) -> None:
        if not callable(fn):
            raise ValueError(f"CallbackSink needs a callable, got {fn!r}")
        self.fn = fn

    def notify(self, alert: Alert) -> None:
        """Call the callback."""
        self.fn(alert)

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"CallbackSink({getattr(self.fn, '__qualname__', self.fn)!r})"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertmanagerSink:
    """POSTs firing and resolved alerts to Alertmanager from its own thread, as Prometheus does.

    Firing alerts are re-sent every ``resend_interval`` with ``endsAt`` ahead of now (so
    Alertmanager resolves them by itself if the node dies); a resolution is sent with its
    ``endsAt``. While Alertmanager is unreachable the sender retries with backoff; at most
    ``queue_size`` notifications wait, the oldest dropped and counted in ``dropped``.
    Credentials (``basic_auth``, ``bearer_token``, ``headers``) are never logged.
    """

    def __init__(self, url: str, resend_interval: float = 60.0, timeout: float = 5.0,
                 headers: Mapping[str, str] | None = None, *, basic_auth: tuple[str, str] | None = None,
                 bearer_token: str | None = None, generator_url: str | None = None, queue_size: int = 1000,
                 batch_size: int = 64, min_backoff: float = 0.5, max_backoff: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        try:
            valid = parsed is not None and parsed.scheme in ("http", "https") and bool(parsed.hostname) and (
                parsed.port is None or parsed.port >= 0)
        except ValueError:  # a port that is not a number 0..65535
            valid = False
        if not valid:
            shown = re.sub(r"//[^/@]*@", "//***@", url) if isinstance(url, str) else url  # no credentials
            raise ValueError(f"AlertmanagerSink url must be an http:// or https:// URL, got {shown!r}")
        resend_interval, timeout, min_backoff, max_backoff = (
            seconds(f"AlertmanagerSink {name}", value) for name, value in (
                ("resend_interval", resend_interval), ("timeout", timeout),
                ("min_backoff", min_backoff), ("max_backoff", max_backoff)))
        for name, value in (("queue_size", queue_size), ("batch_size", batch_size)):
            if value.__class__ is not int or value < 1:
                raise ValueError(f"AlertmanagerSink {name} must be an int >= 1, got {value!r}")
        path = parsed.path.rstrip("/")
        path = path if path.endswith("/api/v2/alerts") else path + "/api/v2/alerts"
        # user:password@ in the URL becomes the Authorization header below: never part of the URL used
        # (urllib would look "user:password@host" up in DNS), shown or logged
        self.url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc.rpartition("@")[2], path, "", ""))
        self._shown_url = self.url
        self.resend_interval = float(resend_interval)
        self.timeout = float(timeout)
        self.valid_for = 4 * self.resend_interval  # how long Alertmanager trusts one send, as Prometheus does
        self.generator_url = generator_url or f"http://{socket.gethostname()}/p2p-telemetry/alerts/{{alertname}}"
        self.queue_size, self.batch_size = queue_size, batch_size
        self.min_backoff, self.max_backoff = float(min_backoff), float(max_backoff)
        self._clock = clock
        self._headers = {"Content-Type": "application/json", **dict(headers or {})}
        if basic_auth is not None:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        elif bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        elif parsed.username is not None:
            token = base64.b64encode(f"{parsed.username}:{parsed.password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self.sent = self.dropped = self.failures = 0
        self._queue: deque[Alert] = deque()
        self._inflight: list[Alert] = []
        self._firing: dict[tuple, Alert] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_since: float | None = None
        self._next_resend = 0.0

    def notify(self, alert: Alert) -> None:
        """Queue a firing or resolved alert (pending ones are not sent); never blocks."""
        if alert.state not in (FIRING, RESOLVED):
            return
        with self._cond:
            if alert.state == FIRING:
                self._firing[alert.key] = alert
            else:
                self._firing.pop(alert.key, None)
            self._enqueue(alert)
            self._ensure_thread()
            self._cond.notify()

    def _enqueue(self, alert: Alert) -> None:
        if len(self._queue) >= self.queue_size:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("p2p-telemetry: AlertmanagerSink queue full (%d), dropped %d notification(s) so far",
                               self.queue_size, self.dropped)
        self._queue.append(alert)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._next_resend = self._clock() + self.resend_interval
            self._thread = threading.Thread(target=self._run, name="p2p-telemetry-alertmanager", daemon=True)
            self._thread.start()

    def pending(self) -> int:
        """Notifications waiting to be sent (queued and in flight)."""
        with self._cond:
            return len(self._queue) + len(self._inflight)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued (for at most ``timeout``, default the request timeout), then stop the thread."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while (self._queue or self._inflight) and self._down_since is None and self._thread is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            thread, self._thread = self._thread, None
            self._stop.set()
            self._cond.notify()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()) + self.timeout)

    def _run(self) -> None:
        backoff = self.min_backoff
        while not self._stop.is_set():
            with self._cond:
                if not self._queue and not self._inflight:
                    self._cond.wait(max(0.0, self._next_resend - self._clock()))
                if self._stop.is_set():
                    return
                resend: list[Alert] = []
                if self._clock() >= self._next_resend and not self._inflight:
                    resend = list(self._firing.values())
                    self._next_resend = self._clock() + self.resend_interval
                if not self._inflight:
                    count = min(self.batch_size, len(self._queue))
                    self._inflight = [self._queue.popleft() for _ in range(count)]
                batch = list(self._inflight)
            for start in range(0, len(resend), self.batch_size):  # best effort, as each resend is
                if not self._post(resend[start:start + self.batch_size]):
                    break
                self.sent += len(resend[start:start + self.batch_size])
            if not batch:
                continue
            if self._post(batch):
                with self._cond:
                    self._inflight = []
                    self.sent += len(batch)
                    self._cond.notify_all()
                backoff = self.min_backoff
            else:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _payload(self, alert: Alert, now: float) -> dict[str, Any]:
        ends = alert.resolved_at if alert.state == RESOLVED and alert.resolved_at is not None else now + self.valid_for
        return {"labels": dict(alert.labels), "annotations": {"summary": alert.summary},
                "startsAt": _iso(alert.fired_at or alert.active_since), "endsAt": _iso(ends),
                "generatorURL": self.generator_url.format(alertname=alert.name)}

    def _post(self, batch: list[Alert]) -> bool:
        now = self._clock()
        body = json.dumps([self._payload(a, now) for a in batch]).encode()
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts are OSErrors
            self.failures += 1
            if self._down_since is None:
                self._down_since = now
                reason = f"HTTP {error.code}" if isinstance(error, urllib.error.HTTPError) else repr(
                    getattr(error, "reason", error))
                logger.warning("p2p-telemetry: AlertmanagerSink cannot reach %s (%s); retrying with backoff",
                               self._shown_url, reason)
            return False
        if self._down_since is not None:
            logger.info("p2p-telemetry: AlertmanagerSink reached %s again after %.1f s", self._shown_url,
                        now - self._down_since)
            self._down_since = None
        return True

    def __repr__(self) -> str:
        return f"AlertmanagerSink({self._shown_url!r}, resend_interval={self.resend_interval})"
