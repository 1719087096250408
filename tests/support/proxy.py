"""A small fault-injecting TCP proxy on 127.0.0.1, between a client and a tracking server.

    with FaultProxy(server.port) as proxy:
        client = MlflowClient(proxy.url)
        proxy.set_mode("latency", latency=0.2)   # every request waits 200 ms first
        proxy.set_mode("http_503")               # every request answered 503, nothing forwarded
        proxy.set_mode("refuse")                 # the port is closed: connection refused
        proxy.set_mode("pass")                   # plain forwarding again

Modes:

* ``pass``: bytes are forwarded both ways untouched.
* ``latency``: the first chunk of every burst the client sends (in practice: each HTTP
  request) is held back ``latency`` seconds before it is forwarded.
* ``http_503``: each HTTP request is read (headers and ``Content-Length`` body) and answered
  ``503 Service Unavailable`` by the proxy itself; the server never sees it.
* ``refuse``: the listening socket is closed, so connecting fails with ``ECONNREFUSED``;
  switching to another mode listens again on the same port.

Switching modes drops open connections, so keep-alive connections made in one mode do not
carry requests into the next. Everything is bounded: at most ``max_connections`` clients at
once (more are closed on accept), daemon threads only, and :meth:`stop` closes every socket
and joins every thread it started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import select
import socket
import threading
import time
from types import TracebackType
from typing import Literal

__all__ = ["FaultProxy", "ProxyStats"]

Mode = Literal["pass", "latency", "http_503", "refuse"]
_MODES = ("pass", "latency", "http_503", "refuse")
_CHUNK = 65536
_BURST_GAP = 0.005  # a pause longer than this starts a new burst (a new request)
_MAX_HEADER = 1 << 16


@dataclasses.dataclass
class ProxyStats:
    connections: int = 0
    forwarded_bytes: int = 0
    delayed_requests: int = 0
    answered_503: int = 0
    refused_while_full: int = 0


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``, injecting faults on demand."""

    def __init__(
        self,
        target_port: int,
        *,
        target_host: str = "127.0.0.1",
        port: int = 0,
        mode: Mode = "pass",
        latency: float = 0.0,
        max_connections: int = 64,
    ) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.max_connections = max_connections
        self.stats = ProxyStats()
        self._mode: Mode = "pass"
        self._latency = 0.0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._initial = (mode, latency)

    # -- public --

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    def start(self) -> FaultProxy:
        self._stopped.clear()
        mode, latency = self._initial
        self._mode, self._latency = mode, latency
        if mode != "refuse":
            self._listen()
        elif not self.port:
            raise ValueError("a proxy that starts refusing needs an explicit port")
        return self

    def set_mode(self, mode: Mode, *, latency: float | None = None) -> None:
        """Switch behaviour; open connections are dropped so the next request sees it."""
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        with self._lock:
            previous = self._mode
            self._mode = mode
            if latency is not None:
                self._latency = float(latency)
        self._drop_connections()
        if mode == "refuse" and previous != "refuse":
            self._close_listener()
        elif mode != "refuse" and self._listener is None:
            self._listen()

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        self._drop_connections()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- listening --

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.05)
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(
            target=self._accept_loop, args=(listener,), name="fault-proxy-accept", daemon=True
        )
        self._accept_thread = thread
        self._start(thread)

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        thread, self._accept_thread = self._accept_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _start(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive()}
            self._threads.add(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, *socks: socket.socket | None) -> None:
        with self._lock:
            for sock in socks:
                if sock is not None:
                    self._sockets.discard(sock)
        for sock in socks:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    def _drop_connections(self) -> None:
        with self._lock:
            socks = list(self._sockets)
            self._sockets.clear()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                readable, _, _ = select.select([listener], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not readable:
                if listener.fileno() < 0:
                    return
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                full = len(self._sockets) >= 2 * self.max_connections
                mode = self._mode
            if full:
                self.stats.refused_while_full += 1
                client.close()
                continue
            self.stats.connections += 1
            self._track(client)
            handler = self._answer_503 if mode == "http_503" else self._forward
            self._start(
                threading.Thread(
                    target=handler, args=(client,), name="fault-proxy-conn", daemon=True
                )
            )

    # -- connection handlers --

    def _answer_503(self, client: socket.socket) -> None:
        try:
            client.settimeout(10)
            buffer = b""
            while b"\r\n\r\n" not in buffer and len(buffer) < _MAX_HEADER:
                data = client.recv(_CHUNK)
                if not data:
                    return
                buffer += data
            head, _, body = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    with contextlib.suppress(ValueError):
                        length = int(value.strip())
            while len(body) < length:
                data = client.recv(_CHUNK)
                if not data:
                    break
                body += data
            payload = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "fault proxy"}'
            client.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n".encode()
                + b"Connection: close\r\n\r\n"
                + payload
            )
            self.stats.answered_503 += 1
        except OSError:
            pass
        finally:
            self._untrack(client)

    def _forward(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
            self._track(upstream)
            client.settimeout(None)
            last_from_client = 0.0
            while not self._stopped.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(_CHUNK)
                    if not data:
                        return
                    if sock is client:
                        now = time.monotonic()
                        if (
                            self._mode == "latency"
                            and self._latency > 0
                            and now - last_from_client > _BURST_GAP
                        ):
                            self.stats.delayed_requests += 1
                            if self._stopped.wait(self._latency):
                                return
                        last_from_client = time.monotonic()
                        upstream.sendall(data)
                    else:
                        client.sendall(data)
                    self.stats.forwarded_bytes += len(data)
        except (OSError, ValueError):
            pass  # either side went away (or the proxy dropped the connection)
        finally:
            self._untrack(client, upstream)
