"""``FakeVictoriaLogs``: the storage model behind an HTTP/1.1 server in a background thread.

Endpoints, routed like VictoriaLogs v1.52.2 (:func:`route`): ``/insert/jsonline``,
``/select/logsql/query`` (both also with ``//`` in the path), ``/internal/force_flush``,
``/internal/force_merge`` (merges before answering; the server answers first and merges in
the background), ``/health``, ``/insert/ready``, ``/ping``, ``GET /``; ``OPTIONS`` on any
path is a CORS 204; anything else (other ingestion protocols included) is the server's
``400 unsupported path requested: "<path>"``. Fault injection (``fail_next``, ``delay_next``,
``drop_next``, ``reset_next``) applies to the next insert requests in the order the calls
were made. Stdlib only.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._client import Polling, VLogsQueryError
from ._gojson import go_quote
from ._ingest import BadRequestError, IngestResult, first_args, header_map, parse_tenant
from ._logsql import LogsQLError
from ._store import Store, json_line, parse_time_arg

INSERT_PATH = "/insert/jsonline"
QUERY_PATH = "/select/logsql/query"
_TEXT = "text/plain; charset=utf-8"
_ROOT_PAGE = (
    b"<h2>VictoriaLogs</h2></br>Version FakeVictoriaLogs<br>"
    b"See docs at <a href='https://docs.victoriametrics.com/victorialogs/'>"
    b"https://docs.victoriametrics.com/victorialogs/</a></br>"
    b"A VictoriaLogs-compatible test receiver (loguru_vlogs.testing)</br>"
)
#: Idle keep-alive connections are closed after this many seconds.
IDLE_TIMEOUT = 60.0
_MAX_CHUNK_LINE = 65_537


class Headers(Mapping[str, str]):
    """Request headers: case-insensitive lookup (first value), original names when iterating."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._first = header_map(pairs)

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._pairs:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len(self._first)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``."""
        return [v for k, v in self._pairs if k.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, and what it did with it."""

    method: str
    path: str
    #: First value of each query argument.
    params: dict[str, str]
    #: Every value of each query argument.
    query: dict[str, list[str]]
    headers: Headers
    #: The bytes on the wire (after HTTP chunked decoding).
    raw_body: bytes
    #: The body after ``Content-Encoding`` (the raw body when it could not be decoded).
    body: bytes
    #: The answer's status; None when the connection was dropped or reset instead.
    status: int | None
    response: bytes
    #: ``"fail"``, ``"delay"``, ``"drop"``, ``"reset"`` or None.
    fault: str | None
    #: Rows stored from this request.
    stored: int = 0
    #: Lines or rows the server silently dropped, by reason.
    dropped: Mapping[str, int] = field(default_factory=dict)
    received_at: float = 0.0
    #: What the real server would have logged about this request (its warning texts), e.g.
    #: ``ignoring 3 rows in the block, because they contain more than 2000 unique field
    #: names: [...]``.
    warnings: tuple[str, ...] = ()
    #: Set when the real server's process would exit on this request (the FATAL text); the
    #: fake closes the connection without an answer instead, and keeps serving.
    crash: str | None = None


def route(method: str, path: str) -> str:  # noqa: PLR0911 - one answer per route
    """Which handler of VictoriaLogs v1.52.2 answers: ``"options"``, ``"insert"``, ``"select"``,
    ``"ready"``, ``"health"``, ``"ping"``, ``"force_flush"``, ``"force_merge"``, ``"root"`` or
    ``"unsupported"``."""
    if method == "OPTIONS":
        return "options"  # httpserver answers every OPTIONS request itself (CORS)
    builtin = {"/health": "health", "/ping": "ping"}.get(path)
    if builtin is not None:
        return builtin
    if path == "/":
        return "root" if method == "GET" else "unsupported"
    merged = path.replace("//", "/")  # vlinsert and vlselect route on this form
    if merged == INSERT_PATH:
        return "insert"
    if merged == "/insert/ready":
        return "ready"
    if merged == QUERY_PATH:
        return "select"
    if path == "/internal/force_flush":
        return "force_flush"
    if path == "/internal/force_merge":
        return "force_merge"
    return "unsupported"


def static_answer(method: str, path: str) -> tuple[int, bytes, str | None] | None:  # noqa: PLR0911 - one per route
    """The answer of a route that does not need the store (status, body, Content-Type), or
    None for inserts, queries, flushes and merges."""
    kind = route(method, path)
    if kind == "options":
        return 204, b"", None
    if kind == "health":
        return 200, b"OK", _TEXT
    if kind == "ping":
        return 204, b"", None
    if kind == "ready":
        return 200, b'{"status":"ok"}', "application/json"
    if kind == "root":
        return 200, _ROOT_PAGE, "text/html; charset=utf-8"
    if kind == "unsupported":
        return 400, f"unsupported path requested: {go_quote(path)}\n".encode(), _TEXT
    return None


def _split_target(target: str) -> tuple[str, str]:
    """The request target → (decoded path, raw query), like Go's ``r.URL`` (a leading ``//``
    is part of the path, not a host)."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return unquote(parts.path or "/"), parts.query
    path, _, query = target.partition("?")
    return unquote(path), query


@dataclass(frozen=True)
class _Fault:
    kind: str
    status: int = 503
    body: bytes = b""
    retry_after: str | None = None
    seconds: float = 0.0
    store: bool = False


class _AbandonedError(Exception):
    """The handler closed the connection on purpose."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeVictoriaLogs) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus delayed
    # ACKs add ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    server_version = "FakeVictoriaLogs"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.served = 0
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()
        self.server.fake._track(self.connection, False)

    def handle(self) -> None:
        self.close_connection = True
        with contextlib.suppress(_AbandonedError, OSError, ValueError):
            self.handle_one_request()
            while not self.close_connection and not self.server.fake._stopping.is_set():
                self.handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for an access log."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET  # noqa: N815

    # -- plumbing ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(_MAX_CHUNK_LINE)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(_MAX_CHUNK_LINE)
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit():
            # Go's server answers a malformed length itself, before any handler runs.
            self.close_connection = True
            self._respond(400, b"400 Bad Request", "text/plain; charset=utf-8")
            raise _AbandonedError
        length = int(text)
        return self.rfile.read(length) if length > 0 else b""

    def _respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.served += 1
        close_every = self.server.fake.close_every
        if close_every and self.served % close_every == 0:
            self.close_connection = True  # like the server's periodic Connection: close
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if content_type and content_type.startswith("text/plain"):
            self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close with a TCP reset, leaving the body unread."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for stream in (self.rfile, self.wfile):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        with contextlib.suppress(OSError):
            self.connection.close()
        raise _AbandonedError

    # -- endpoints --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        fake = self.server.fake
        path, query = _split_target(self.path)
        kind = route(self.command, path)
        record: dict[str, Any] = {
            "method": self.command,
            "path": path,
            "params": first_args(query),
            "query": parse_qs(query, keep_blank_values=True),
            "headers": Headers(list(self.headers.items())),
            "received_at": time.time(),
            "fault": None,
        }
        fault = fake._take_fault() if kind == "insert" else None
        if fault is not None and fault.kind == "reset":
            fake._record(record, raw_body=b"", body=b"", status=None, response=b"", fault="reset")
            self._reset()
        raw = self._read_body()
        record["raw_body"] = raw
        record["body"] = raw
        if fault is not None:
            record["fault"] = fault.kind
            if fault.kind == "delay" and fake._stopping.wait(fault.seconds):
                fake._record(record, status=None, response=b"")
                self.close_connection = True
                raise _AbandonedError
            if fault.kind == "fail":
                # Recorded before answering, so a client that got the answer sees the record.
                fake._record(record, status=fault.status, response=fault.body)
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                self._respond(fault.status, fault.body, _TEXT, extra)
                return
            if fault.kind == "drop":
                stored: dict[str, Any] = {}
                if fault.store:
                    result = fake._ingest(self.command, query, record["headers"], raw)
                    stored = {
                        "stored": result.stored,
                        "dropped": result.dropped,
                        "warnings": result.warnings,
                    }
                fake._record(record, status=None, response=b"", **stored)
                self.close_connection = True
                raise _AbandonedError
        if kind == "insert":
            result = fake._ingest(self.command, query, record["headers"], raw)
            body = result.body.encode()
            decoded = result.decoded_body if result.decoded_body is not None else raw
            answered = result.crash is None
            fake._record(
                record,
                body=decoded,
                status=result.status if answered else None,
                response=body,
                stored=result.stored,
                dropped=result.dropped,
                warnings=result.warnings,
                crash=result.crash,
            )
            if not answered:
                self.close_connection = True
                raise _AbandonedError  # the real server's process exits here
            self._respond(result.status, body, result.content_type)
            return
        if kind == "force_merge":
            prefix = self._form_args(query, raw).get("partition_prefix", "")
            merged = fake._store.force_merge(prefix)
            fake._merged(merged.warnings)
            fake._record(record, status=200, response=b"", warnings=merged.warnings)
            self._respond(200)
            return
        status, body, content_type, extra = self._answer(kind, path, query, raw)
        fake._record(record, status=status, response=body)
        self._respond(status, body, content_type, extra)

    def _answer(
        self, kind: str, path: str, query: str, raw: bytes
    ) -> tuple[int, bytes, str | None, dict[str, str]]:
        fake = self.server.fake
        if kind == "select":
            return (*self._select(query, raw), {})
        if kind == "force_flush":
            fake._store.force_flush()
            return 200, b"", None, {}
        if kind == "ping" and first_args(query).get("verbose") == "true":
            return 200, b"", None, {}
        answer = static_answer(self.command, path)
        assert answer is not None, kind
        extra = {}
        if kind == "options":
            extra = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "*",
                "Access-Control-Allow-Headers": "*",
            }
        return (*answer, extra)

    def _form_args(self, query: str, raw: bytes) -> dict[str, str]:
        """``r.FormValue``: query args, then a POSTed form's."""
        args = first_args(query)
        media_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if self.command == "POST" and media_type == "application/x-www-form-urlencoded":
            args = {**args, **first_args(raw.decode("utf-8", "replace"))}
        return args

    def _select(self, query: str, raw: bytes) -> tuple[int, bytes, str | None]:
        args = self._form_args(query, raw)
        try:
            account_id, project_id = parse_tenant(header_map(self.headers.items()))
            text, limit, start, end = _query_args(args)
            rows = self.server.fake._store.select(
                text,
                account_id=account_id,
                project_id=project_id,
                limit=limit,
                start=start,
                end=end,
            )
        except BadRequestError as err:
            return err.status, (err.message + "\n").encode(), _TEXT
        except LogsQLError as err:
            return 400, f"{err}\n".encode(), _TEXT
        body = "".join(json_line(pairs) + "\n" for pairs in rows)
        return 200, body.encode("utf-8", "replace"), "application/stream+json"


def _query_args(args: Mapping[str, str]) -> tuple[str, int | None, int | None, int | None]:
    """``query``, ``limit``, ``start`` and ``end`` of a query request."""
    if not args.get("query"):
        raise BadRequestError("missing `query` arg")
    limit = args.get("limit", "")
    if limit and not limit.isdigit():
        raise BadRequestError(f"cannot parse limit={go_quote(limit)}")
    start = parse_time_arg(args["start"], "start") if args.get("start") else None
    end = parse_time_arg(args["end"], "end") if args.get("end") else None
    return args["query"], int(limit) if limit else None, start, end


Duration = float | str | datetime.timedelta | None


class FakeVictoriaLogs(Polling):
    """A VictoriaLogs v1.52.2-compatible receiver on loopback, for tests (yours and ours).

    >>> with FakeVictoriaLogs() as srv:               # doctest: +SKIP
    ...     ...  # point the code under test at srv.url
    ...     assert srv.count('run_id:="abc"') == 3

    ``retention`` / ``future_retention`` bound accepted timestamps like the server's
    ``-retentionPeriod`` (default 7d; seconds, a ``timedelta``, text like ``"100y"``, or None
    for no limit) and ``-futureRetention`` (2d). ``timezone_offset`` (seconds east of UTC) is
    the zone of timestamps written without one (default: this machine's). ``visibility_delay``
    makes rows queryable only that many seconds after ingestion, as on the real server, unless
    flushed. The fake never merges by itself: :meth:`force_merge` brings the rows to the state
    the real server's merges leave (which it reaches on its own a few seconds after
    ingestion). ``close_every`` answers every N-th request of a connection with
    ``Connection: close``. ``data_file`` gets every stored row appended as a JSON line.
    ``clock`` (nanoseconds) replaces the wall clock for "now".
    """

    kind = "fake"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        retention: Duration = "7d",
        future_retention: Duration = "2d",
        timezone_offset: float | None = None,
        visibility_delay: float = 0.0,
        close_every: int | None = None,
        data_file: str | os.PathLike[str] | None = None,
        record_requests: bool = True,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"Invalid port, it should be an integer in [0, 65535], not: {port!r}")
        if close_every is not None and (not isinstance(close_every, int) or close_every < 1):
            raise ValueError(
                f"Invalid close_every, it should be a positive integer, not: {close_every!r}"
            )
        self.host = host
        self.port = port
        self.close_every = close_every
        self.record_requests = record_requests
        self._clock = clock
        self._data_file = Path(data_file) if data_file is not None else None
        self._data_lock = threading.Lock()
        self._store = Store(
            retention=retention,
            future_retention=future_retention,
            timezone_offset=timezone_offset,
            visibility_delay=visibility_delay,
            on_rows=self._append_to_data_file if self._data_file is not None else None,
        )
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._merge_warnings: list[str] = []
        self._faults: deque[_Fault] = deque()
        self._connections: set[socket.socket] = set()
        self._connections_idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeVictoriaLogs:
        """Listen and serve in a background thread (again on the same port after ``stop``)."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeVictoriaLogs:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving, closing open connections (keep-alive, delayed or not) within ``timeout``."""
        server, thread = self._server, self._thread
        if server is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            while self._connections and time.monotonic() < deadline:
                self._connections_idle.wait(max(0.0, deadline - time.monotonic()))
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server is not None

    def __enter__(self) -> FakeVictoriaLogs:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` (the port is known once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"FakeVictoriaLogs({self.url!r}, {state})"

    # -- what was received ----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def select(
        self, query: str = "*", account_id: int = 0, project_id: int = 0, limit: int | None = None
    ) -> list[list[tuple[str, str]]]:
        """Rows as (name, value) pairs in the server's order, duplicates kept."""
        try:
            return self._store.select(
                query, account_id=account_id, project_id=project_id, limit=limit
            )
        except LogsQLError as err:
            raise VLogsQueryError(400, str(err)) from None

    def rows(
        self, query: str = "*", account_id: int = 0, project_id: int = 0, limit: int | None = None
    ) -> list[dict[str, str]]:
        """Rows matching ``query`` for the tenant, as the HTTP API returns them."""
        try:
            return self._store.rows(
                query, account_id=account_id, project_id=project_id, limit=limit
            )
        except LogsQLError as err:
            raise VLogsQueryError(400, str(err)) from None

    def count(self, query: str = "*", account_id: int = 0, project_id: int = 0) -> int:
        """How many rows match ``query`` for the tenant."""
        try:
            return self._store.count(query, account_id=account_id, project_id=project_id)
        except LogsQLError as err:
            raise VLogsQueryError(400, str(err)) from None

    def force_flush(self) -> bool:
        """Make every ingested row visible now (like ``/internal/force_flush``)."""
        self._store.force_flush()
        return True

    def force_merge(self, timeout: float = 60.0) -> None:
        """Flush, then merge every part now, like :meth:`RealVictoriaLogs.force_merge`
        (``/internal/force_merge`` does the same); ``timeout`` is unused, the fake merges
        before returning.

        The real server also merges by itself, a few seconds after ingestion; the fake only
        merges when asked, so a test that wants the state after the merges calls this on
        either server. A merge can drop rows that were stored and visible (the 2,000-names
        limit of a block applies again to rows of several requests; see
        :attr:`merge_warnings`) and change the text of values read back (a column that
        becomes float64 once rows of several requests share a block).
        """
        merged = self._store.force_merge()
        self._merged(merged.warnings)

    @property
    def merge_warnings(self) -> list[str]:
        """What the real server would have logged while merging (rows the column limit
        dropped), oldest first (a copy)."""
        with self._lock:
            return list(self._merge_warnings)

    def clear(self) -> None:
        """Forget stored rows, recorded requests and merge warnings (pending faults stay)."""
        self._store.clear()
        with self._lock:
            self._requests.clear()
            self._merge_warnings.clear()

    @property
    def read_only(self) -> bool:
        """When True, inserts get 429 like a server whose disk is nearly full."""
        return self._store.read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self._store.read_only = bool(value)

    # -- fault injection ------------------------------------------------------------------

    def _queue(self, n: int, fault: _Fault) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"Invalid n, it should be a non-negative integer, not: {n!r}")
        with self._lock:
            self._faults.extend([fault] * n)

    def fail_next(
        self,
        n: int,
        status: int = 503,
        *,
        retry_after: float | str | None = None,
        body: str | bytes = "",
    ) -> None:
        """Answer the next ``n`` inserts with ``status`` (and ``Retry-After``) without storing."""
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"Invalid status, it should be an HTTP status code, not: {status!r}")
        if isinstance(retry_after, float) and retry_after.is_integer():
            retry_after = int(retry_after)
        text = body.encode() if isinstance(body, str) else bytes(body)
        after = None if retry_after is None else str(retry_after)
        self._queue(n, _Fault("fail", status=status, body=text, retry_after=after))

    def delay_next(self, n: int, seconds: float) -> None:
        """Hold each of the next ``n`` inserts ``seconds`` before handling it normally."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(
                f"Invalid seconds, it should be a non-negative number, not: {seconds!r}"
            )
        self._queue(n, _Fault("delay", seconds=float(seconds)))

    def drop_next(self, n: int, *, store: bool = False) -> None:
        """Read each of the next ``n`` inserts, then close without answering.

        With ``store=True`` the rows are stored first: the client's request succeeded but its
        answer was lost (how duplicates happen).
        """
        self._queue(n, _Fault("drop", store=store))

    def reset_next(self, n: int) -> None:
        """Reset (TCP RST) the connection of each of the next ``n`` inserts, body unread."""
        self._queue(n, _Fault("reset"))

    def clear_faults(self) -> None:
        """Cancel every pending fault."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many injected faults are still waiting for an insert request."""
        with self._lock:
            return len(self._faults)

    # -- used by the handler --------------------------------------------------------------

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
                self._connections_idle.notify_all()

    def _ingest(self, method: str, query: str, headers: Headers, body: bytes) -> IngestResult:
        now = self._clock() if self._clock is not None else None
        return self._store.ingest(
            method=method, query=query, headers=headers, body=body, now_ns=now
        )

    def _merged(self, warnings: tuple[str, ...]) -> None:
        with self._lock:
            self._merge_warnings.extend(warnings)

    def _record(self, fields: dict[str, Any], **more: Any) -> None:
        if not self.record_requests:
            return
        values = {"raw_body": b"", "body": b"", **fields, **more}
        request = RecordedRequest(**values)
        with self._lock:
            self._requests.append(request)

    def _append_to_data_file(self, lines: list[str]) -> None:
        assert self._data_file is not None
        with self._data_lock, self._data_file.open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)


def serve(
    port: int = 9428,
    data_file: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    on_ready: Callable[[str], None] | None = None,
    retention: Duration = None,
) -> None:
    """Run a :class:`FakeVictoriaLogs` in the foreground until interrupted (Ctrl-C)."""
    server = FakeVictoriaLogs(host, port, data_file=data_file, retention=retention)
    server.start()
    try:
        if on_ready is not None:
            on_ready(server.url)
        forever = threading.Event()
        while not forever.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
