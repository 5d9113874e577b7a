"""FakeVictoriaLogs over HTTP: endpoints, queries, fault injection, connections, client, plugin."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loguru_vlogs.testing import (
    FakeVictoriaLogs,
    RealVictoriaLogs,
    VLogsClient,
    VLogsQueryError,
    find_binary,
    free_port,
)
from loguru_vlogs.testing.pytest_plugin import require_real

ROOT = Path(__file__).resolve().parents[1]
LINE = b'{"_msg":"hello","run":"r1"}\n'
T = "2026-11-20T08:15:30Z"
JSON_HEADERS = {"Content-Type": "application/stream+json"}


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    # No retention limit: the fixed dates below must not age out.
    with FakeVictoriaLogs(retention=None) as srv:
        yield srv


needs_binary = pytest.mark.skipif(
    find_binary() is None, reason="no victoria-logs binary (PATH / VLOGS_BINARY)"
)


@pytest.fixture(
    params=["fake", pytest.param("real", marks=[needs_binary, pytest.mark.real_server])]
)
def target(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The fake, and the real server where a binary exists: what a test asserts about the
    server's behaviour holds for both (a drift of the fake fails where a binary runs)."""
    if request.param == "fake":
        with FakeVictoriaLogs(retention=None) as fake:
            yield fake
    else:
        with RealVictoriaLogs() as real:
            yield real


def connect(server: FakeVictoriaLogs, timeout: float = 5.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)


def request(
    server: FakeVictoriaLogs,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = connect(server)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def insert(server: FakeVictoriaLogs, body: bytes = LINE, **headers: str) -> tuple[int, bytes]:
    status, data, _ = request(server, "POST", "/insert/jsonline", body, {**JSON_HEADERS, **headers})
    return status, data


# -- endpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/health", 200, b"OK"),
        ("GET", "/insert/ready", 200, b'{"status":"ok"}'),
        ("GET", "/ping", 204, b""),
        ("GET", "/internal/force_flush", 200, b""),
        ("GET", "/insert/jsonline", 405, b""),
        ("PUT", "/insert/jsonline", 405, b""),
        ("OPTIONS", "/insert/jsonline", 204, b""),
        ("OPTIONS", "/nope", 204, b""),
        ("GET", "/nope", 400, b'unsupported path requested: "/nope"\n'),
        ("POST", "/insert/foo", 400, b'unsupported path requested: "/insert/foo"\n'),
        ("POST", "/insert/jsonline/", 400, b'unsupported path requested: "/insert/jsonline/"\n'),
        ("POST", "/", 400, b'unsupported path requested: "/"\n'),
        (
            "POST",
            "/vlogs/insert/jsonline",
            400,
            b'unsupported path requested: "/vlogs/insert/jsonline"\n',
        ),
    ],
)
def test_endpoints_answer_like_the_server(
    target: Any, method: str, path: str, status: int, body: bytes
) -> None:
    """Health, readiness, ping, force_flush; 405 for other methods on the insert path; CORS 204
    for OPTIONS; 400 ``unsupported path requested`` elsewhere (the real server's answer, not 404)."""
    assert (status, body) == request(target, method, path)[:2]


def test_a_double_slash_still_reaches_the_insert_handler(target: Any) -> None:
    """The server routes ``/insert/...`` and ``/select/...`` with ``//`` collapsed."""
    for path in ("//insert/jsonline", "/insert//jsonline"):
        assert 200 == request(target, "POST", path, LINE, JSON_HEADERS)[0]
    target.force_flush()
    assert 2 == target.count()


def test_the_root_page_is_html(target: Any) -> None:
    """``/`` answers the server's small HTML index page."""
    status, body, response = request(target, "GET", "/")
    assert (200, "text/html; charset=utf-8") == (status, response.getheader("Content-Type"))
    assert body.startswith(b"<h2>VictoriaLogs</h2>")


def wide_row(prefix: str, msg: str) -> bytes:
    row = {"_msg": msg, "_time": T, **{f"{prefix}{i}": str(i) for i in range(900)}}
    return json.dumps(row).encode() + b"\n"


def test_the_column_limit_warning_is_recorded(server: FakeVictoriaLogs) -> None:
    """Rows past 2000 field names in a block: 200, not stored, and the request record carries
    the server's warning and the count under ``dropped["column_limit"]``."""
    plain = b'{"_msg":"plain","_time":"%s"}\n' % T.encode()
    body = wide_row("a", "A") + wide_row("b", "B") + wide_row("c", "C") + plain
    assert (200, b"") == insert(server, body)
    recorded = server.requests[-1]
    assert (2, {"column_limit": 2}) == (recorded.stored, dict(recorded.dropped))
    (warning,) = recorded.warnings
    assert warning.startswith(
        "ignoring 2 rows in the block, because they contain more than 2000 unique field names: ["
    )
    assert ["A", "B"] == sorted(r["_msg"] for r in server.rows())


def test_a_request_that_crashes_the_real_server_gets_no_answer(server: FakeVictoriaLogs) -> None:
    """A stream field repeated in one line makes the real server exit: the fake closes the
    connection without answering, records why, stores nothing, and keeps serving."""
    body = b'{"_msg":"m","svc":"a","svc":"b"}\n'
    with pytest.raises(http.client.RemoteDisconnected):
        request(server, "POST", "/insert/jsonline?_stream_fields=svc", body, JSON_HEADERS)
    recorded = server.requests[-1]
    assert (None, 0) == (recorded.status, recorded.stored)
    assert recorded.crash is not None
    assert recorded.crash.startswith("FATAL: cannot unmarshal StreamTags: ")
    assert (200, b"") == insert(server)


def test_an_insert_answers_200_with_an_empty_body_and_is_queryable(target: Any) -> None:
    """POST /insert/jsonline → 200, then the row is in /select/logsql/query."""
    assert (200, b"") == insert(target)
    client = VLogsClient(target.url)
    client.force_flush()
    assert [("hello", "r1")] == [(r["_msg"], r["run"]) for r in client.rows()]


def test_query_over_http_filters_limits_and_counts(target: Any) -> None:
    """``query``, ``limit`` and ``stats count()`` over GET and POST."""
    lines = b"".join(
        b'{"_msg":"m%d","n":"%d","_time":"2026-11-2%dT00:00:00Z"}\n' % (i, i % 2, i)
        for i in range(4)
    )
    insert(target, lines)
    client = VLogsClient(target.url)
    client.force_flush()
    assert ["m1", "m3"] == sorted(r["_msg"] for r in client.rows('n:="1"'))
    assert ["m3"] == [r["_msg"] for r in client.rows("*", limit=1)]
    assert 2 == client.count('n:="0"')
    status, body, response = request(target, "GET", "/select/logsql/query?query=n:%3D1+|+count()")
    assert (200, b'{"count(*)":"2"}\n') == (status, body)
    assert "application/stream+json" == response.getheader("Content-Type")


def test_queries_read_the_tenant_from_headers(target: Any) -> None:
    """Rows sent with AccountID/ProjectID are only visible to queries with the same headers."""
    insert(target, AccountID="3", ProjectID="4")
    client = VLogsClient(target.url)
    client.force_flush()
    assert (0, 1) == (client.count(), client.count(account_id=3, project_id=4))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/select/logsql/query?query=a:%3E1",
            r"^HTTP 400: cannot parse query \[a:>1\]: range filters are not supported: a:>1; ",
        ),
        ("/select/logsql/query", r"^HTTP 400: missing `query` arg$"),
        ("/select/logsql/query?query=*&limit=ten", r'^HTTP 400: cannot parse limit="ten"$'),
        (
            "/select/logsql/query?query=*&start=soon",
            r'^HTTP 400: cannot parse start="soon": the test receiver accepts RFC3339 or Unix time$',
        ),
    ],
)
def test_bad_queries_answer_400_with_a_clear_text(
    server: FakeVictoriaLogs, path: str, message: str
) -> None:
    """Unsupported LogsQL and malformed arguments are 400s that say why."""
    status, body, _ = request(server, "GET", path)
    with pytest.raises(VLogsQueryError, match=message):
        raise VLogsQueryError(status, body.decode())


def test_query_start_and_end_bound_the_time(target: Any) -> None:
    """``start``/``end`` (RFC3339 or Unix seconds) keep rows in [start, end): ``end`` is
    exclusive, as the real server's HTTP argument (row "3" is at the end, 1795392000)."""
    insert(
        target,
        b"".join(b'{"_msg":"%d","_time":"2026-11-2%dT00:00:00Z"}\n' % (i, i) for i in range(1, 5)),
    )
    client = VLogsClient(target.url)
    client.force_flush()
    got = client.select("*", start="2026-11-22T00:00:00Z", end=str(1795392000))
    assert [["2"]] == sorted([v for k, v in pairs if k == "_msg"] for pairs in got)
    got = client.select("*", start="2026-11-22T00:00:00Z", end="2026-11-23T00:00:00.000000001Z")
    assert [["2"], ["3"]] == sorted([v for k, v in pairs if k == "_msg"] for pairs in got)


def test_requests_are_recorded_with_decoded_bodies(server: FakeVictoriaLogs) -> None:
    """Method, path, params, case-insensitive headers, raw and decoded body, status, rows stored."""
    body = gzip.compress(LINE)
    request(
        server,
        "POST",
        "/insert/jsonline?_stream_fields=run",
        body,
        {"Content-Encoding": "gzip", "X-Team": "core"},
    )
    recorded = server.requests[-1]
    assert ("POST", "/insert/jsonline", {"_stream_fields": "run"}) == (
        recorded.method,
        recorded.path,
        recorded.params,
    )
    assert ("gzip", "core") == (recorded.headers["content-encoding"], recorded.headers["X-TEAM"])
    assert (body, LINE, 200, 1, None) == (
        recorded.raw_body,
        recorded.body,
        recorded.status,
        recorded.stored,
        recorded.fault,
    )


def test_silent_drops_are_recorded_with_their_reason(server: FakeVictoriaLogs) -> None:
    """A 200 that stored nothing says why in ``dropped``."""
    assert 200 == insert(server, LINE, **{"Content-Encoding": "br"})[0]
    assert ({"unsupported_encoding": 1}, 0) == (dict(server.requests[-1].dropped), server.count())


def test_chunked_request_bodies_are_read(server: FakeVictoriaLogs) -> None:
    """``Transfer-Encoding: chunked`` bodies (no Content-Length) are accepted."""
    conn = connect(server)
    conn.request(
        "POST",
        "/insert/jsonline",
        body=iter([LINE[:5], LINE[5:]]),
        headers=JSON_HEADERS,
        encode_chunked=True,
    )
    assert 200 == conn.getresponse().status
    conn.close()
    assert 1 == server.count()


def test_clear_forgets_rows_and_requests(server: FakeVictoriaLogs) -> None:
    """``clear()`` empties the store and the request log."""
    insert(server)
    server.clear()
    assert (0, []) == (server.count(), server.requests)


# -- fault injection ----------------------------------------------------------------------


def test_fail_next_answers_the_status_with_retry_after_then_recovers(
    server: FakeVictoriaLogs,
) -> None:
    """The next N inserts get the status, Retry-After and body, and are not stored."""
    server.fail_next(2, status=503, retry_after=3, body="busy")
    answers = []
    for _ in range(3):
        status, body, response = request(server, "POST", "/insert/jsonline", LINE, JSON_HEADERS)
        answers.append((status, body, response.getheader("Retry-After")))
    assert [(503, b"busy", "3"), (503, b"busy", "3"), (200, b"", None)] == answers
    assert (1, ["fail", "fail", None]) == (server.count(), [r.fault for r in server.requests])


def test_faults_apply_only_to_inserts_in_the_order_queued(server: FakeVictoriaLogs) -> None:
    """Health checks do not consume faults; fail then delay then normal."""
    server.fail_next(1, status=429)
    server.delay_next(1, 0.01)
    assert 200 == request(server, "GET", "/health")[0]
    assert 2 == server.pending_faults
    assert [429, 200, 200] == [insert(server)[0] for _ in range(3)]
    assert ["fail", "delay", None] == [
        r.fault for r in server.requests if r.path == "/insert/jsonline"
    ]


def test_delay_next_holds_the_answer_then_stores(server: FakeVictoriaLogs) -> None:
    """A delayed insert answers after the delay and is stored (a client timeout would retry it)."""
    server.delay_next(1, 0.3)
    started = time.monotonic()
    assert 200 == insert(server)[0]
    assert time.monotonic() - started >= 0.3
    assert 1 == server.count()


@pytest.mark.parametrize(("store", "expected"), [(False, 0), (True, 1)])
def test_drop_next_closes_without_answering(
    server: FakeVictoriaLogs, store: bool, expected: int
) -> None:
    """The body is read, no answer is sent; with ``store=True`` the rows were stored (lost answer)."""
    server.drop_next(1, store=store)
    with pytest.raises(http.client.RemoteDisconnected):
        insert(server)
    recorded = server.requests[-1]
    assert (expected, LINE, None, "drop") == (
        server.count(),
        recorded.raw_body,
        recorded.status,
        recorded.fault,
    )
    assert 200 == insert(server)[0]


def test_reset_next_resets_the_connection_without_reading_the_body(
    server: FakeVictoriaLogs,
) -> None:
    """The client sees a connection error; nothing was read or stored; the server carries on."""
    server.reset_next(1)
    with pytest.raises(ConnectionError):
        insert(server, LINE * 20_000)
    recorded = server.requests[-1]
    assert (0, b"", None, "reset") == (
        server.count(),
        recorded.raw_body,
        recorded.status,
        recorded.fault,
    )
    assert 200 == insert(server)[0]


def test_clear_faults_cancels_pending_ones(server: FakeVictoriaLogs) -> None:
    """Queued faults can be cancelled."""
    server.fail_next(5)
    server.clear_faults()
    assert (0, 200) == (server.pending_faults, insert(server)[0])


def test_read_only_answers_429(server: FakeVictoriaLogs) -> None:
    """``read_only = True`` makes inserts fail with 429 like a full disk."""
    server.read_only = True
    assert 429 == insert(server)[0]
    server.read_only = False
    assert 200 == insert(server)[0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.fail_next(-1), r"^Invalid n, it should be a non-negative integer, not: -1$"),
        (
            lambda s: s.fail_next(1, status=99),
            r"^Invalid status, it should be an HTTP status code, not: 99$",
        ),
        (
            lambda s: s.delay_next(1, -1),
            r"^Invalid seconds, it should be a non-negative number, not: -1$",
        ),
        (
            lambda s: s.reset_next(True),
            r"^Invalid n, it should be a non-negative integer, not: True$",
        ),
    ],
)
def test_fault_arguments_are_validated(
    server: FakeVictoriaLogs, call: Callable[[FakeVictoriaLogs], None], message: str
) -> None:
    """Bad counts, statuses and delays are rejected at once."""
    with pytest.raises(ValueError, match=message):
        call(server)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": -1}, r"^Invalid port, it should be an integer in \[0, 65535\], not: -1$"),
        ({"close_every": 0}, r"^Invalid close_every, it should be a positive integer, not: 0$"),
        (
            {"retention": "forever"},
            r"^Invalid retention, it should look like '7d', '12h' or '100y', not: 'forever'$",
        ),
    ],
)
def test_constructor_arguments_are_validated(kwargs: dict[str, Any], message: str) -> None:
    """Bad options fail at construction, naming the option."""
    with pytest.raises(ValueError, match=message):
        FakeVictoriaLogs(**kwargs)


# -- connections --------------------------------------------------------------------------


def test_connections_are_kept_alive(server: FakeVictoriaLogs) -> None:
    """HTTP/1.1 keep-alive: several requests share one socket."""
    conn = connect(server)
    conn.request("POST", "/insert/jsonline", body=LINE, headers=JSON_HEADERS)
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("GET", "/health")
    second = conn.getresponse()
    assert (200, b"OK", 11) == (second.status, second.read(), second.version)
    assert sock is conn.sock is not None
    assert first.getheader("Connection") is None
    conn.close()


def test_close_every_answers_connection_close_periodically() -> None:
    """``close_every=2``: every second answer on a connection says ``Connection: close``."""
    with FakeVictoriaLogs(close_every=2) as srv:
        conn = connect(srv)
        headers = []
        for _ in range(3):
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            headers.append(response.getheader("Connection"))
        conn.close()
    assert [None, "close", None] == headers


def test_stop_is_quick_with_idle_and_delayed_connections() -> None:
    """A keep-alive client and a request held by ``delay_next(…, 30)`` do not hold up ``stop``."""
    srv = FakeVictoriaLogs().start()
    idle = connect(srv)
    idle.request("GET", "/health")
    idle.getresponse().read()
    srv.delay_next(1, 30.0)
    held = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    held.sendall(
        b"POST /insert/jsonline HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
        % (len(LINE), LINE)
    )
    assert wait_for(lambda: srv.pending_faults == 0, timeout=5)
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 1.5
    assert b"" == held.recv(100)
    held.close()
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


def test_a_restarted_server_keeps_its_port_and_rows() -> None:
    """``stop()`` then ``start()``: same URL, same data (like a restarted real server)."""
    srv = FakeVictoriaLogs().start()
    try:
        url = srv.url
        insert(srv)
        srv.stop()
        assert not srv.running
        srv.start()
        assert (url, 1) == (srv.url, VLogsClient(url).count())
    finally:
        srv.stop()


def test_data_file_gets_every_stored_row(tmp_path: Path) -> None:
    """``data_file`` receives the stored rows as the JSON lines a query would print."""
    path = tmp_path / "rows.jsonl"
    with FakeVictoriaLogs(data_file=path) as srv:
        insert(srv, LINE + LINE)
    assert ["hello", "hello"] == [
        json.loads(line)["_msg"] for line in path.read_text().splitlines()
    ]


def test_visibility_delay_hides_rows_until_flushed() -> None:
    """With the real server's delay, a query right after the 200 may miss the row; flushing fixes it."""
    with FakeVictoriaLogs(visibility_delay=30) as srv:
        insert(srv)
        client = VLogsClient(srv.url)
        assert 0 == client.count()
        assert 1 == client.wait_for_count("*", 1, timeout=5)


# -- the client ---------------------------------------------------------------------------


def test_client_sends_url_credentials_as_basic_auth(server: FakeVictoriaLogs) -> None:
    """``http://user:pass@host`` queries with an Authorization header and a clean URL."""
    client = VLogsClient(server.url.replace("http://", "http://u:p%40ss@"))
    client.count()
    assert ("Basic dTpwQHNz", server.url) == (
        server.requests[-1].headers["Authorization"],
        client.url,
    )


def test_client_force_flush_tolerates_a_missing_endpoint(server: FakeVictoriaLogs) -> None:
    """A cluster has no /internal/force_flush: ``force_flush`` says False instead of failing."""
    assert (True, False) == (
        VLogsClient(server.url).force_flush(),
        VLogsClient(server.url + "/x").force_flush(),
    )


def test_wait_for_count_returns_the_last_count_at_the_deadline(server: FakeVictoriaLogs) -> None:
    """When ``n`` never arrives, the call returns after ``timeout`` with what it saw."""
    insert(server)
    started = time.monotonic()
    assert 1 == VLogsClient(server.url).wait_for_count("*", 5, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2


@pytest.mark.parametrize("url", ["localhost:9428", "ftp://x", ""])
def test_client_rejects_non_http_urls(url: str) -> None:
    """Only http(s) URLs are accepted."""
    with pytest.raises(
        ValueError, match=rf"^Invalid url, it should start with http:// or https://, not: {url!r}$"
    ):
        VLogsClient(url)


def test_the_fake_and_the_client_agree(server: FakeVictoriaLogs) -> None:
    """``srv.rows``/``srv.count`` give what an HTTP client sees."""
    insert(server, LINE + b'{"_msg":"other"}\n')
    client = VLogsClient(server.url)
    assert (server.rows(), server.count("hello")) == (client.rows(), client.count("hello"))


# -- a real binary (or a stand-in) ----------------------------------------------------------

STAND_IN = """\
#!{python}
# A stand-in for victoria-logs: records its flags, serves the fake on -httpListenAddr.
import json, sys
sys.path.insert(0, {root!r})
flags = dict(arg.lstrip("-").split("=", 1) for arg in sys.argv[1:])
open(flags["storageDataPath"] + ".flags", "w").write(json.dumps(flags))
from loguru_vlogs.testing import serve
serve(int(flags["httpListenAddr"].rsplit(":", 1)[1]), retention=flags["retentionPeriod"])
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    binary = tmp_path / "bin" / "victoria-logs"
    binary.parent.mkdir()
    binary.write_text(STAND_IN.format(python=sys.executable, root=str(ROOT)))
    binary.chmod(0o755)
    return binary


def test_find_binary_prefers_the_environment_then_path(
    stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$VLOGS_BINARY`` wins; else ``victoria-logs`` on PATH; else None."""
    monkeypatch.setenv("VLOGS_BINARY", "/opt/vl")
    monkeypatch.setenv("PATH", str(stand_in.parent))
    assert "/opt/vl" == find_binary()
    monkeypatch.delenv("VLOGS_BINARY")
    assert str(stand_in) == find_binary()
    monkeypatch.setenv("PATH", str(stand_in.parent.parent))
    assert find_binary() is None


def test_real_runner_starts_with_the_documented_flags_and_stops(stand_in: Path) -> None:
    """Free port, temporary data dir, ``-retentionPeriod=100y``; healthy before use; stopped after."""
    with RealVictoriaLogs(str(stand_in)) as real:
        assert real.healthy()
        flags = json.loads((real.data_dir / "data.flags").read_text())
        assert ("100y", f"127.0.0.1:{real.port}") == (
            flags["retentionPeriod"],
            flags["httpListenAddr"],
        )
        data_dir = real.data_dir
    assert not real.running
    assert not data_dir.exists()


def test_real_runner_reports_a_binary_that_dies(tmp_path: Path) -> None:
    """A binary that exits at once raises with its output instead of hanging."""
    broken = tmp_path / "victoria-logs"
    broken.write_text("#!/bin/sh\necho 'cannot open storage' >&2\nexit 1\n")
    broken.chmod(0o755)
    real = RealVictoriaLogs(str(broken), startup_timeout=5)
    with pytest.raises(
        RuntimeError, match=r"(?s)^victoria-logs did not become healthy: .*cannot open storage"
    ):
        real.start()
    real.remove_data()


def test_free_port_is_bindable() -> None:
    """``free_port()`` returns a port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


@pytest.fixture(scope="module")
def real_and_fake() -> Iterator[tuple[RealVictoriaLogs, FakeVictoriaLogs]]:
    with RealVictoriaLogs() as real, FakeVictoriaLogs(retention="100y") as fake:
        yield real, fake


FLOATS = b"".join(
    b'{"_msg":"r%d","_time":"2026-11-20T08:15:%02dZ","v":"%s"}\n' % (i, i, v)
    for i, v in enumerate(b"0.3 0.47764 7.0 1.5 0.1 2.25 100.001 3.3 12.34 -0.5".split())
)


@needs_binary
@pytest.mark.parametrize(
    ("tenant", "path", "body"),
    [
        (
            1,
            "/insert/jsonline",
            b'{"_msg":"same","_time":"2026-11-20T08:15:30.5+02:00","a":{"b":[1, "x"]}}\n',
        ),
        (2, "/insert/jsonline", FLOATS),
        (3, "/insert/jsonline", wide_row("a", "A") + wide_row("b", "B") + wide_row("c", "C")),
        (4, "/insert/jsonline?_stream_fields=s", b'{"_msg":"m","_time":1,"s":"x","_stream":"{"}\n'),
        (5, "/insert/foo", b'{"_msg":"m"}\n'),
    ],
)
def test_the_real_server_and_the_fake_store_the_same_rows(
    real_and_fake: tuple[RealVictoriaLogs, FakeVictoriaLogs], tenant: int, path: str, body: bytes
) -> None:
    """Where a real binary exists: the same request gets the same answer and stores the same rows
    (key order included) on both: time zones, float read-back, the column limit, stream keys,
    unknown paths."""
    results = []
    for target in real_and_fake:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
        headers = {**JSON_HEADERS, "AccountID": str(tenant)}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = (response.status, response.read(), response.getheader("Content-Type"))
        conn.close()
        client = VLogsClient(target.url)
        client.force_flush()
        rows = [[p for p in pairs if p[0] != "_stream_id"] for pairs in client.select("*", tenant)]
        results.append((answer, sorted(rows)))
    assert results[0] == results[1]


# -- the pytest plugin --------------------------------------------------------------------

PLUGIN_TESTS = """
def test_server(vlogs_server, fake_vlogs, vlogs_run_id):
    import urllib.request
    assert {kind!r} == vlogs_server.kind
    assert "fake" == fake_vlogs.kind and fake_vlogs.url != vlogs_server.url
    assert 32 == len(vlogs_run_id)
    body = ('{{"_msg":"x","run_id":"%s"}}' % vlogs_run_id).encode()
    req = urllib.request.Request(vlogs_server.url + "/insert/jsonline", data=body,
                                 headers={{"Content-Type": "application/stream+json"}})
    assert 200 == urllib.request.urlopen(req).status
    assert 1 == vlogs_server.wait_for_count('run_id:="%s"' % vlogs_run_id, 1, timeout=10)
"""


def run_plugin(
    tmp_path: Path, kind: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run pytest on a small file that uses the fixtures, with only our plugin loaded by name."""
    (tmp_path / "test_uses_plugin.py").write_text(textwrap.dedent(PLUGIN_TESTS.format(kind=kind)))
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:loguru_vlogs",
    ]
    command += ["-p", "loguru_vlogs.testing.pytest_plugin", "-W", "error", *args, str(tmp_path)]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    full_env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        command, capture_output=True, text=True, env=full_env, timeout=60, check=False, cwd=tmp_path
    )


@pytest.mark.slow
def test_plugin_falls_back_to_the_fake_without_a_binary(tmp_path: Path) -> None:
    """No binary: ``vlogs_server`` is a fake with the real server's visibility delay."""
    env = {"PATH": os.defpath, "VLOGS_BINARY": "", "VLOGS_REQUIRE_REAL": ""}
    result = run_plugin(tmp_path, "fake", env)
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.slow
def test_plugin_uses_the_binary_named_by_the_environment(tmp_path: Path, stand_in: Path) -> None:
    """``VLOGS_BINARY`` set: ``vlogs_server`` runs it and reports ``kind == "real"``."""
    result = run_plugin(tmp_path, "real", {"VLOGS_BINARY": str(stand_in)})
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.slow
def test_plugin_can_require_a_real_server(tmp_path: Path) -> None:
    """``VLOGS_REQUIRE_REAL=1`` turns the fallback into an error."""
    result = run_plugin(
        tmp_path, "fake", {"PATH": os.defpath, "VLOGS_BINARY": "", "VLOGS_REQUIRE_REAL": "1"}
    )
    assert 1 == result.returncode
    assert "but a real server is required" in result.stdout


class StubConfig:
    def __init__(self, flag: bool) -> None:
        self.flag = flag

    def getoption(self, name: str) -> bool:
        assert "vlogs_require_real" == name
        return self.flag


@pytest.mark.parametrize(
    ("flag", "env", "required"),
    [
        (False, "", False),
        (True, "", True),
        (False, "1", True),
        (False, "yes", True),
        (False, "0", False),
    ],
)
def test_require_real_reads_the_option_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, flag: bool, env: str, required: bool
) -> None:
    """``--vlogs-require-real`` or a true ``VLOGS_REQUIRE_REAL`` makes a real server mandatory."""
    monkeypatch.setenv("VLOGS_REQUIRE_REAL", env)
    assert required == require_real(StubConfig(flag))  # type: ignore[arg-type]


def test_a_malformed_content_length_is_a_400(server: FakeVictoriaLogs) -> None:
    """The connection is answered 400 and closed; nothing is stored."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /insert/jsonline HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert 0 == server.count()


def test_serve_runs_in_the_foreground_until_interrupted(tmp_path: Path) -> None:
    """``serve(port, data_file)`` (what the CLI calls) stores rows to the file and stops on Ctrl-C."""
    port, rows = free_port(), tmp_path / "rows.jsonl"
    code = f"from loguru_vlogs.testing import serve; serve({port}, {str(rows)!r}, on_ready=lambda url: print(url, flush=True))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            assert f"http://127.0.0.1:{port}" == proc.stdout.readline().strip()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/insert/jsonline", body=LINE, headers=JSON_HEADERS)
            assert 200 == conn.getresponse().status
            conn.close()
            proc.send_signal(signal.SIGINT)
            assert 0 == proc.wait(timeout=10)
        finally:
            proc.kill()
    assert ["hello"] == [json.loads(line)["_msg"] for line in rows.read_text().splitlines()]


def test_the_client_reads_rows_whose_values_hold_unicode_line_breaks(
    vlogs_server: Any, vlogs_run_id: str
) -> None:
    """Rows are split on "\\n" only: U+0085, U+2028, U+2029 and \\x1c inside a value stay."""
    messages = [f"a{char}b" for char in ("\x85", "\u2028", "\u2029", "\x1c", "\x0b")]
    body = "\n".join(
        json.dumps({"_msg": m, "run_id": vlogs_run_id, "i": i}) for i, m in enumerate(messages)
    ).encode()
    host, port = vlogs_server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(
        "POST", "/insert/jsonline", body=body, headers={"Content-Type": "application/stream+json"}
    )
    assert 200 == conn.getresponse().status
    conn.close()
    query = f'run_id:="{vlogs_run_id}"'
    assert 5 == vlogs_server.wait_for_count(query, 5, timeout=10)
    rows = VLogsClient(vlogs_server.url).rows(query, limit=10)  # over HTTP, fake or real
    assert messages == [row["_msg"] for row in sorted(rows, key=lambda r: int(r["i"]))]
