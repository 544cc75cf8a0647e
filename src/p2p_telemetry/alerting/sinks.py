"""Where alerts go: the log, a callback, or a real Alertmanager (``POST /api/v2/alerts``)."""

from __future__ import annotations

import base64
import enum
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

import requests

from .._fork import after_fork_in_child
from ..bounds import SettingTypeError, duration
from .backoff import Backoff
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


_CREDENTIALS_IN_URL = re.compile(r"//[^/@\s]*@")


def _scrub(text: str) -> str:
    """``text`` without the user:password@ of any URL in it."""
    return _CREDENTIALS_IN_URL.sub("//***@", text)


class _Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # unreachable, 429 or 5xx: the batch waits and is sent again
    REJECTED = "rejected"  # any other answer: sending it again would get the same answer


class AlertmanagerSink:
    """POSTs firing and resolved alerts to Alertmanager from its own thread, as Prometheus does.

    Firing alerts are re-sent every ``resend_interval`` with ``endsAt`` ahead of now (so
    Alertmanager resolves them by itself if the node dies); a resolution is sent with its
    ``endsAt``. While Alertmanager is unreachable (or answers 429 or 5xx) the sender retries the
    batch with exponential backoff and jitter; at most ``queue_size`` notifications wait, the
    oldest dropped and counted in ``dropped``. A batch Alertmanager refuses (any other 4xx, or a
    redirect) is not retried: it is dropped, counted in ``rejected`` (alerts) and logged once, and
    the next batches go on. Credentials (``basic_auth``, ``bearer_token``, ``headers``, a URL's
    ``user:password@``) are never logged, shown in ``repr`` or put in an exception.

    ``clock`` is the wall clock that stamps ``startsAt``/``endsAt``; the schedule (resends,
    backoff) runs on ``monotonic``, so a wall clock stepped back does not hold resends back.
    """

    def __init__(self, url: str, resend_interval: float = 60.0, timeout: float = 5.0,
                 headers: Mapping[str, str] | None = None, *, basic_auth: tuple[str, str] | None = None,
                 bearer_token: str | None = None, generator_url: str | None = None, queue_size: int = 1000,
                 batch_size: int = 64, min_backoff: float = 0.5, max_backoff: float = 30.0,
                 verify: bool | str = True, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        try:
            valid = parsed is not None and parsed.scheme in ("http", "https") and bool(parsed.hostname) and (
                parsed.port is None or parsed.port >= 0)
        except ValueError:  # a port that is not a number 0..65535
            valid = False
        if not valid or parsed is None:
            shown = _scrub(url) if isinstance(url, str) else url
            raise ValueError(f"AlertmanagerSink url must be an http:// or https:// URL, got {shown!r}")
        resend_interval, timeout, min_backoff, max_backoff = (
            duration(f"AlertmanagerSink {name}", value) for name, value in (
                ("resend_interval", resend_interval), ("timeout", timeout),
                ("min_backoff", min_backoff), ("max_backoff", max_backoff)))
        if max_backoff < min_backoff:
            raise ValueError(f"AlertmanagerSink max_backoff must be >= min_backoff ({min_backoff}), got {max_backoff}")
        for name, value in (("queue_size", queue_size), ("batch_size", batch_size)):
            if value.__class__ is not int or value < 1:
                raise ValueError(f"AlertmanagerSink {name} must be an int >= 1, got {value!r}")
        for name, source in (("clock", clock), ("monotonic", monotonic)):
            if not callable(source):
                raise SettingTypeError(f"AlertmanagerSink {name} must be a callable returning seconds, got {source!r}")
        if not isinstance(verify, (bool, str)):
            raise SettingTypeError(f"AlertmanagerSink verify must be a bool or the path of a CA bundle, got {verify!r}")
        if isinstance(verify, str) and not os.path.exists(verify):
            raise ValueError(f"AlertmanagerSink verify: no CA bundle at {verify!r}")
        path = parsed.path.rstrip("/")
        path = path if path.endswith("/api/v2/alerts") else path + "/api/v2/alerts"
        # user:password@ in the URL becomes the Authorization header below: never part of the URL used,
        # shown or logged
        self.url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc.rpartition("@")[2], path, "", ""))
        self.resend_interval = resend_interval
        self.timeout = timeout
        self.valid_for = 4 * self.resend_interval  # how long Alertmanager trusts one send, as Prometheus does
        self.generator_url = generator_url or f"http://{socket.gethostname()}/p2p-telemetry/alerts/{{alertname}}"
        self.queue_size, self.batch_size = queue_size, batch_size
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self._clock = clock
        self._monotonic = monotonic
        self._verify = verify
        self._headers = {"Content-Type": "application/json", **_checked_headers(headers)}
        if basic_auth is not None:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        elif bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        elif parsed.username is not None:
            token = base64.b64encode(
                f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}".encode()
            ).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self.sent = self.dropped = self.failures = self.rejected = 0
        self._queue: deque[Alert] = deque()
        self._inflight: list[Alert] = []
        self._firing: dict[tuple[tuple[str, str], ...], Alert] = {}
        self._down_since: float | None = None
        self._rejection_logged = False
        self._next_resend = 0.0
        self._backoff = Backoff(self.min_backoff, self.max_backoff)
        self._session = self._new_session()
        self._new_locks()
        after_fork_in_child(self)

    def _new_locks(self) -> None:
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        # No ~/.netrc (requests would put its credentials over the Authorization header given here);
        # proxies and CA bundle from the environment as urllib and requests read them.
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(self.url))
        env_bundle = next((os.environ[v] for v in _CA_BUNDLE_ENV if os.environ.get(v)), None)
        session.verify = env_bundle if self._verify is True and env_bundle else self._verify
        return session

    def _after_fork_in_child(self) -> None:
        # The sender thread did not follow into the child, its lock may be held forever there and the
        # pooled connections are the parent's: fresh ones; what was in flight waits at the head of the
        # queue; the thread restarts on the next notify().
        self._new_locks()
        self._queue.extendleft(reversed(self._inflight))
        self._inflight = []
        self._session = self._new_session()

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
            self._next_resend = self._monotonic() + self.resend_interval
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
        self._session.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._send_once()
            except Exception:  # a bug here must not silently end every later delivery
                self.failures += 1
                logger.exception("p2p-telemetry: AlertmanagerSink sender failed; retrying with backoff")
                self._stop.wait(self._backoff.next())

    def _send_once(self) -> None:
        with self._cond:
            if not self._queue and not self._inflight:
                self._cond.wait(max(0.0, self._next_resend - self._monotonic()))
            if self._stop.is_set():
                return
            resend: list[Alert] = []
            if self._monotonic() >= self._next_resend and not self._inflight:
                resend = list(self._firing.values())
                self._next_resend = self._monotonic() + self.resend_interval
            if not self._inflight:
                count = min(self.batch_size, len(self._queue))
                self._inflight = [self._queue.popleft() for _ in range(count)]
            batch = list(self._inflight)
        for start in range(0, len(resend), self.batch_size):  # best effort, as each resend is
            chunk = resend[start:start + self.batch_size]
            outcome = self._post(chunk)
            if outcome is _Outcome.RETRY:
                break
            if outcome is _Outcome.SENT:
                self.sent += len(chunk)
        if not batch:
            return
        outcome = self._post(batch)
        if outcome is _Outcome.RETRY:
            self._stop.wait(self._backoff.next())
            return
        self._backoff.reset()
        with self._cond:
            self._inflight = []
            if outcome is _Outcome.SENT:
                self.sent += len(batch)
            self._cond.notify_all()

    def _payload(self, alert: Alert, now: float) -> dict[str, Any]:
        if alert.state == RESOLVED and alert.resolved_at is not None:
            ends = min(alert.resolved_at, now)  # never in the future: that would keep it active there
        else:
            ends = now + self.valid_for
        # A wall clock stepped back since the alert started would put startsAt after endsAt, which
        # Alertmanager refuses; it keeps the earliest startsAt it has seen for the alert anyway.
        starts = min(alert.fired_at or alert.active_since, ends, now)
        return {"labels": dict(alert.labels), "annotations": {"summary": alert.summary},
                "startsAt": _iso(starts), "endsAt": _iso(ends),
                "generatorURL": self.generator_url.format(alertname=alert.name)}

    def _post(self, batch: list[Alert]) -> _Outcome:
        now = self._clock()
        body = json.dumps([self._payload(a, now) for a in batch]).encode()
        try:
            with self._session.post(self.url, data=body, headers=self._headers, timeout=self.timeout,
                                    allow_redirects=False) as response:
                status, text = response.status_code, response.text[:200]
        except (requests.RequestException, OSError, ValueError) as error:  # unreachable, timeouts
            return self._retry(_scrub(f"{type(error).__name__}: {error}"))
        if status == 429 or status >= 500:
            return self._retry(f"HTTP {status}")
        self._reached()
        if 200 <= status < 300:
            return _Outcome.SENT
        self.rejected += len(batch)
        if not self._rejection_logged:
            self._rejection_logged = True
            logger.warning("p2p-telemetry: Alertmanager at %s refused %d alert(s) with HTTP %d (%s); they are "
                           "dropped, not retried, and later refusals are only counted (AlertmanagerSink.rejected)",
                           self.url, len(batch), status, _scrub(text.strip()) or "no reason given")
        return _Outcome.REJECTED

    def _retry(self, reason: str) -> _Outcome:
        self.failures += 1
        if self._down_since is None:
            self._down_since = self._monotonic()
            logger.warning("p2p-telemetry: AlertmanagerSink cannot reach %s (%s); retrying with backoff",
                           self.url, reason)
        return _Outcome.RETRY

    def _reached(self) -> None:
        if self._down_since is not None:
            logger.info("p2p-telemetry: AlertmanagerSink reached %s again after %.1f s", self.url,
                        self._monotonic() - self._down_since)
            self._down_since = None

    def __repr__(self) -> str:
        return f"AlertmanagerSink({self.url!r}, resend_interval={self.resend_interval})"


_CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def _checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The extra headers, checked here so that a bad one fails at construction (naming it, never its value)."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise SettingTypeError("AlertmanagerSink headers must be a mapping of str to str, "
                               f"got {type(headers).__name__}")
    out = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise SettingTypeError(f"AlertmanagerSink headers: header {name!r} must map a str to a str")
        if not _HEADER_NAME.fullmatch(name) or any(ch in value for ch in "\r\n\0"):
            raise ValueError(f"AlertmanagerSink headers: header {name!r} is not a valid HTTP header "
                             "(or its value holds a line break)")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"AlertmanagerSink headers: the value of header {name!r} is not latin-1") from None
        out[name] = value
    return out


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
