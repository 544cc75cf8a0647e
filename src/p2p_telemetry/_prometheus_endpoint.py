"""The Prometheus HTTP endpoint: prometheus_client's exposition, served by one thread whatever clients do.

prometheus_client's own server starts a thread per connection and never times one out, so
idle connections pile up threads, and they outlive the server. Here one thread multiplexes
every connection with a selector: a connection costs a socket, not a thread; it must send
its request and read the answer within ``timeout`` seconds; past ``max_connections`` the
oldest is dropped; ``close()`` closes the listening socket, every connection and the thread.
The answer itself is prometheus_client's (its WSGI app, through wsgiref's request parsing).

A child forked after the endpoint started closes its copies of the endpoint's sockets at once
(``_fork.after_fork_in_child``): it neither holds the port nor answers the parent's scrapes.
"""

from __future__ import annotations

import io
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, make_wsgi_app

from ._fork import after_fork_in_child

__all__ = ["MetricsEndpoint", "TIMEOUT", "MAX_CONNECTIONS"]

logger = logging.getLogger("p2p_telemetry")

TIMEOUT = 10.0  # seconds a connection has to send its request, and again to read the answer
MAX_CONNECTIONS = 100
MAX_REQUEST_HEAD = 16 * 1024
_ACCEPTS_PER_ROUND = 64


class _Exchange(WSGIRequestHandler):
    """One request answered into a buffer: wsgiref's HTTP parsing and the WSGI app, no socket."""

    def __init__(self, head: bytes, client: tuple[str, int], server: _Wsgi) -> None:
        self._head = head
        super().__init__(cast(Any, None), client, cast(Any, server))

    def setup(self) -> None:
        self.rfile = io.BytesIO(self._head)
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        pass  # the answer stays in wfile for the caller

    def log_message(self, format: str, *args: Any) -> None:
        pass  # as prometheus_client's own handler: no line per scrape

    def answer(self) -> bytes:
        return cast(io.BytesIO, self.wfile).getvalue()


class _Wsgi:
    """What wsgiref's request handler asks of its server: the base environment and the app."""

    def __init__(self, app: Callable[..., Any], host: str, port: int) -> None:
        self.app = app
        self.base_environ = {"SERVER_NAME": host, "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PORT": str(port),
                             "REMOTE_HOST": "", "CONTENT_LENGTH": "", "SCRIPT_NAME": ""}

    def get_app(self) -> Callable[..., Any]:
        return self.app


class _Connection:
    """A client's socket, what it sent so far, what is left to send it, and its deadline."""

    __slots__ = ("sock", "client", "deadline", "received", "unsent")

    def __init__(self, sock: socket.socket, client: tuple[str, int], deadline: float) -> None:
        self.sock = sock
        self.client = client
        self.deadline = deadline
        self.received = bytearray()
        self.unsent: memoryview | None = None


def _listening_socket(host: str, port: int) -> socket.socket:
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    listener = socket.create_server(address, family=family, backlog=128)
    listener.setblocking(False)
    return listener


class MetricsEndpoint:
    """``registry``'s exposition served over HTTP on ``host:port`` (port 0: a free one) until ``close()``."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, *, timeout: float = TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self._listener = _listening_socket(host, port)
        self.port: int = self._listener.getsockname()[1]
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{url_host}:{self.port}/metrics"
        self._wsgi = _Wsgi(make_wsgi_app(registry), host, self.port)
        self._timeout = timeout
        self._max_connections = max_connections
        self._connections: dict[socket.socket, _Connection] = {}  # oldest first
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._closing = False
        self._closed = False
        self._failed = False
        self._thread = threading.Thread(target=self._serve, name=f"p2p-telemetry-prometheus-{self.port}", daemon=True)
        after_fork_in_child(self)
        self._thread.start()

    @property
    def connections(self) -> int:
        """Client connections open now."""
        return len(self._connections)

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving: the listening socket, every connection and the thread end (waits up to ``timeout``)."""
        if self._closed:
            return
        self._closed = self._closing = True
        try:
            self._wake_writer.send(b"x")
        except OSError:
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # --- the serving thread: the only one that touches the sockets ---------------------------------

    def _serve(self) -> None:
        try:
            while not self._closing:
                for key, events in self._selector.select(self._until_next_deadline()):
                    if key.data is not None:
                        key.data(key.fileobj, events)
                self._expire(time.monotonic())
        except Exception:  # a bug here must not take the node down; the endpoint stops
            logger.exception("p2p-telemetry: the Prometheus endpoint stopped")
        finally:
            self._release()

    def _until_next_deadline(self) -> float | None:
        if not self._connections:
            return None
        return max(0.0, min(c.deadline for c in self._connections.values()) - time.monotonic())

    def _accept(self, listener: Any, events: int) -> None:
        for _ in range(_ACCEPTS_PER_ROUND):
            try:
                sock, client = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, a connection reset before accept...
                return
            if len(self._connections) >= self._max_connections:
                self._drop(next(iter(self._connections.values())))
            sock.setblocking(False)
            connection = _Connection(sock, client, time.monotonic() + self._timeout)
            self._connections[sock] = connection
            self._selector.register(sock, selectors.EVENT_READ, self._on_ready)

    def _on_ready(self, sock: Any, events: int) -> None:
        connection = self._connections[sock]
        try:
            if connection.unsent is None:
                self._receive(connection)
            else:
                self._send(connection)
        except (BlockingIOError, InterruptedError):
            pass  # not ready after all: the selector says when
        except OSError:  # reset by the client, ...
            self._drop(connection)
        except Exception:  # never expected (the app's own errors are answered 500): drop this client only
            self._drop(connection)
            if not self._failed:
                self._failed = True
                logger.exception("p2p-telemetry: the Prometheus endpoint failed to answer a request")

    def _receive(self, connection: _Connection) -> None:
        data = connection.sock.recv(65536)
        if not data:
            self._drop(connection)
            return
        connection.received += data
        if b"\r\n\r\n" not in connection.received and b"\n\n" not in connection.received:
            if len(connection.received) > MAX_REQUEST_HEAD:
                self._drop(connection)
            return
        exchange = _Exchange(bytes(connection.received[:MAX_REQUEST_HEAD]), connection.client, self._wsgi)
        connection.unsent = memoryview(exchange.answer())
        connection.deadline = time.monotonic() + self._timeout
        self._selector.modify(connection.sock, selectors.EVENT_WRITE, self._on_ready)
        self._send(connection)

    def _send(self, connection: _Connection) -> None:
        assert connection.unsent is not None
        sent = connection.sock.send(connection.unsent)
        connection.unsent = connection.unsent[sent:]
        if not connection.unsent:
            self._drop(connection)  # HTTP/1.0: the answer ends with the connection

    def _expire(self, now: float) -> None:
        for connection in [c for c in self._connections.values() if c.deadline <= now]:
            self._drop(connection)

    def _drop(self, connection: _Connection) -> None:
        self._connections.pop(connection.sock, None)
        try:
            self._selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass
        connection.sock.close()

    def _release(self) -> None:
        for connection in list(self._connections.values()):
            self._drop(connection)
        self._selector.close()
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.close()

    # --- fork ------------------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """In a forked child: close this process's copies of the sockets; the parent's stay as they are.

        Only ``close()`` of file descriptors: no ``shutdown()``, which would end the parent's
        connections too. The serving thread does not exist in the child.
        """
        self._closed = self._closing = True
        for sock in [*list(self._connections), self._listener, self._wake_reader, self._wake_writer]:
            try:
                sock.close()
            except OSError:
                pass
        self._connections.clear()
        try:
            self._selector.close()
        except (OSError, ValueError):
            pass

