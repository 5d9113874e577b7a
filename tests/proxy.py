"""A small TCP proxy for fault tests: pass, refuse, stall, reset, or cut connections."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType


class FaultProxy:
    """Listens on 127.0.0.1 (free port) and forwards to ``target`` according to ``mode``.

    Modes: ``"pass"`` forwards; ``"refuse"`` accepts and closes at once; ``"reset"`` accepts
    and resets (RST); ``"stall"`` accepts, reads, never answers; ``"cut"`` forwards the
    request but closes before the answer reaches the client (the server stored it: the
    client's retry is a duplicate); ``"trickle"`` reads the request (never forwards it) and
    answers 200 with a 1,000-byte body sent one byte per ``interval`` seconds; ``"trickle_head"``
    sends even the status line that way; ``"late"`` forwards, and holds the server's answer
    back ``interval`` seconds (the server stored the batch long before the client hears so).
    """

    def __init__(self, target_port: int, mode: str = "pass", interval: float = 0.5) -> None:
        self.target_port = target_port
        self.mode = mode
        self.interval = interval
        self.connections = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def drop_all(self) -> None:
        """Close every open connection (e.g. a server restart)."""
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()
            self._sockets.clear()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            mode = self.mode
            if mode == "refuse":
                client.close()
                continue
            if mode == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            with self._lock:
                self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client, mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
        if mode in ("trickle", "trickle_head"):
            self._trickle(client, head=mode == "trickle_head")
            return
        if mode == "stall":
            while not self._stop.is_set():
                try:
                    readable, _, _ = select.select([client], [], [], 0.1)
                    if readable and not client.recv(65536):
                        break
                except (OSError, ValueError):
                    break
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.append(upstream)
        pair = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is upstream and mode == "cut":
                        return  # the server answered; the client never hears it
                    if sock is upstream and mode == "late":
                        self._stop.wait(self.interval)
                    pair[sock].sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket drop_all() closed
            return
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()

    def _trickle(self, client: socket.socket, *, head: bool) -> None:
        """Read a request, then answer one byte per interval until the client goes away."""
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
        try:
            client.settimeout(2)
            client.recv(65536)  # the request (its head at least): enough to start answering
            position = 0 if head else answer.index(b"\r\n\r\n") + 4
            if position:
                client.sendall(answer[:position])
            while position < len(answer) and not self._stop.wait(self.interval):
                client.sendall(answer[position : position + 1])
                position += 1
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.close()
