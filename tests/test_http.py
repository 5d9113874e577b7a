"""The urllib3 transport's own contract: one pool per endpoint, found once; every request
bounded by ``timeout``, on a reused connection (whose reads block, watched by the Deadline)
and when no Deadline thread can run (interpreter exit)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from loguru_vlogs import _http
from loguru_vlogs._http import Urllib3Transport

from .helpers import settings

_ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class _Stalling:
    """Answers the first request on its first connection, then reads nothing more, on that
    connection or any later one (a stuck server); ``answer_all``: a server that answers every
    request on every connection.

    ``requests`` counts the requests read; ``connections`` the connections accepted.
    """

    def __init__(self, *, answer_all: bool = False) -> None:
        self._answer_all = answer_all
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests = 0
        self.connections = 0
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self.connections += 1
            self._held.append(conn)
            if self._answer_all or self.connections == 1:
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                while len(rest) < length:
                    rest += conn.recv(65536)
                data = rest[length:]
                self.requests += 1
                conn.sendall(_ANSWER)
                if not self._answer_all:
                    break
        except OSError:
            return
        # From here on nothing is read: a large body fills the socket buffers and blocks.

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def stalling() -> Iterator[_Stalling]:
    server = _Stalling()
    yield server
    server.close()


def _send(
    transport: Urllib3Transport, url: str, body: bytes, timeout: float
) -> tuple[object, float]:
    endpoint = settings(url).endpoints[0]
    started = time.monotonic()
    outcome = transport.send(endpoint, body, {}, timeout)
    return outcome, time.monotonic() - started


_LARGE = b"x" * (16 << 20)  # larger than any socket buffer: a send blocks unless read


def test_a_request_on_a_reused_connection_is_bounded_by_the_deadline(stalling: _Stalling) -> None:
    transport = Urllib3Transport(settings(stalling.url))
    try:
        first, _ = _send(transport, stalling.url, b"{}", 2.0)
        assert getattr(first, "status", None) == 204
        # The same connection, now stuck: its socket has no timeout of its own.
        outcome, elapsed = _send(transport, stalling.url, _LARGE, 0.5)
        assert getattr(outcome, "status", "answered") is None
        assert "timeout" in str(getattr(outcome, "error", ""))
        assert 0.4 <= elapsed < 3.0
        assert stalling.connections == 1  # the pooled connection was reused
    finally:
        transport.close()


def test_without_a_deadline_thread_the_socket_timeout_bounds_the_request(
    stalling: _Stalling, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = Urllib3Transport(settings(stalling.url))
    try:
        first, _ = _send(transport, stalling.url, b"{}", 2.0)
        assert getattr(first, "status", None) == 204
        # At interpreter exit no thread can start: arm() says so. The request, on the pooled
        # connection the server no longer reads, is bounded by the socket's own timeouts.
        monkeypatch.setattr(_http.Deadline, "arm", lambda self, deadline: False)
        outcome, elapsed = _send(transport, stalling.url, _LARGE, 0.5)
        assert getattr(outcome, "status", "answered") is None
        assert 0.4 <= elapsed < 3.0
    finally:
        transport.close()


def test_each_endpoint_pool_is_found_once() -> None:
    server = _Stalling(answer_all=True)
    transport = Urllib3Transport(settings(server.url))
    found: list[str] = []
    real = transport._pool.connection_from_url

    def counting(url: str) -> object:
        found.append(url)
        return real(url)

    transport._pool.connection_from_url = counting  # type: ignore[method-assign]
    try:
        for _ in range(3):
            outcome, _ = _send(transport, server.url, b"{}", 2.0)
            assert getattr(outcome, "status", None) == 204
        assert len(found) == 1
        assert "/insert/jsonline?_stream_fields=" in found[0]
        assert server.requests == 3
        assert server.connections == 1
    finally:
        transport.close()
        server.close()


def test_a_pool_the_manager_closed_is_found_afresh() -> None:
    server = _Stalling(answer_all=True)
    transport = Urllib3Transport(settings(server.url))
    try:
        first, _ = _send(transport, server.url, b"{}", 2.0)
        assert getattr(first, "status", None) == 204
        # A manager that closes the pools it evicts or clears (urllib3 1.26 did): the pool
        # the transport found is closed under it.
        pool = transport._pool.connection_from_url(server.url)
        transport._pool.clear()
        pool.close()
        again, _ = _send(transport, server.url, b"{}", 2.0)
        assert getattr(again, "status", None) == 204
        assert server.requests == 2
    finally:
        transport.close()
        server.close()
