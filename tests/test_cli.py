"""The ``loguru-vlogs`` command line: help, check, ship and serve."""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs.cli import main
from loguru_vlogs.testing import FakeVictoriaLogs, free_port

from .helpers import closed_port_url, subprocess_env, wait_for

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("demo", "check", "ship", "spool", "serve")
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, pipes and terminals")


@pytest.fixture(autouse=True)
def _no_vlogs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own VLOGS_* settings must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("VLOGS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as srv:
        yield srv


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit code, stdout, stderr)."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [*COMMANDS, "spool status", "spool send", "spool purge"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`loguru-vlogs CMD --help` prints its usage and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), "--help"])
    assert 0 == exited.value.code
    assert capsys.readouterr().out.startswith(f"usage: loguru-vlogs {command} ")


def test_the_module_runs_as_a_program_listing_demo_first() -> None:
    """`python -m loguru_vlogs --help` lists the commands, the README's first one first."""
    result = subprocess.run(
        [sys.executable, "-m", "loguru_vlogs", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
        check=False,
    )
    assert (0, "") == (result.returncode, result.stderr)
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")]
    assert list(COMMANDS) == [word for word in listed if word in COMMANDS]


# -- check --------------------------------------------------------------------------------------


def test_check_passes_against_a_working_server(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Health, readiness, insert and read-back all pass, each with its latency; exit 0."""
    code, out, _ = run(["check", "--url", server.url], capsys)
    assert 0 == code
    lines = out.splitlines()
    assert f"checking {server.url} (tenant 0:0)" == lines[0]
    for step in ("/health", "/insert/ready", "insert", "query"):
        assert any(line.split()[:2] == ["ok", step] and " ms" in line for line in lines), step
    assert lines[-1].startswith("OK: records sent to this server are accepted (")
    assert 1 == server.count('service:="loguru-vlogs-check"')


def test_check_sends_tenant_and_auth_headers(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    """--account-id/--project-id/--bearer-token reach the server; the record lands in that tenant."""
    argv = ["check", "--url", server.url, "--account-id", "5", "--project-id", "6"]
    code, _, _ = run([*argv, "--bearer-token", "tkn"], capsys)
    assert 0 == code
    insert = next(r for r in server.requests if r.path == "/insert/jsonline")
    headers = {k.lower(): v for k, v in insert.headers.items()}
    expected = ("5", "6", "Bearer tkn", "application/stream+json")
    actual = (
        headers["accountid"],
        headers["projectid"],
        headers["authorization"],
        headers["content-type"],
    )
    assert expected == actual
    assert (1, 0) == (server.count(account_id=5, project_id=6), server.count())


def test_check_takes_the_url_from_the_environment(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --url, VLOGS_URL is used."""
    monkeypatch.setenv("VLOGS_URL", server.url)
    code, out, _ = run(["check"], capsys)
    assert (0, f"checking {server.url} (tenant 0:0)") == (code, out.splitlines()[0])


def test_check_takes_the_password_for_user_from_the_environment(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--user with VLOGS_PASSWORD: basic auth, without the password on the command line."""
    monkeypatch.setenv("VLOGS_PASSWORD", "s3cret")
    code, _, _ = run(["check", "--url", server.url, "--user", "ops"], capsys)
    assert 0 == code
    insert = next(r for r in server.requests if r.path == "/insert/jsonline")
    expected = "Basic " + base64.b64encode(b"ops:s3cret").decode()
    assert expected == {k.lower(): v for k, v in insert.headers.items()}["authorization"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--user", "ops"], "--user needs --password or VLOGS_PASSWORD"),
        (["--password", "pw"], "--password needs --user"),
    ],
)
def test_check_rejects_half_of_basic_auth(
    capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    """A user without a password (or the reverse) is a usage error."""
    code, _, err = run(["check", "--url", "http://127.0.0.1:9", *options], capsys)
    assert (2, f"loguru-vlogs check: error: {message}\n") == (code, err)


def test_check_without_any_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """No --url and no VLOGS_URL: exit 2 with the variable named."""
    code, out, err = run(["check"], capsys)
    assert (2, "") == (code, out)
    assert err.startswith("loguru-vlogs check: error: Invalid VLOGS_URL: it is not set")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, "cannot parse AccountID", "HTTP 400: cannot parse AccountID -- the server rejected"),
        (503, "overloaded", "HTTP 503: overloaded -- server error"),
        (429, "", "HTTP 429 -- the server's storage is read-only"),
    ],
)
def test_check_reports_a_rejected_insert_with_the_servers_message(
    server: FakeVictoriaLogs,
    capsys: pytest.CaptureFixture[str],
    status: int,
    body: str,
    expected: str,
) -> None:
    """A 4xx/5xx answer to the test record fails the check and quotes the server."""
    server.fail_next(1, status, body=body)
    code, out, _ = run(["check", "--url", server.url], capsys)
    assert 1 == code
    line = next(line for line in out.splitlines() if line.split()[:2] == ["FAIL", "insert"])
    assert expected in line
    assert out.splitlines()[-1].startswith("FAILED: see the lines marked FAIL above")


def test_check_explains_a_refused_connection(capsys: pytest.CaptureFixture[str]) -> None:
    """Nobody listening: one clear line about it, exit 1."""
    url = closed_port_url()
    code, out, _ = run(["check", "--url", url], capsys)
    assert 1 == code
    where = url.split("://")[1]
    assert (
        f"  FAIL  /health        connection refused: nothing listens on {where}; is "
        "VictoriaLogs running, and is the port right (default 9428)?"
    ) == out.splitlines()[1]


def test_check_explains_plain_http_behind_an_https_url(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    """https:// to a plain-HTTP port: the TLS diagnosis says to use http://."""
    url = server.url.replace("http://", "https://")
    code, out, _ = run(["check", "--url", url, "--timeout", "2"], capsys)
    assert 1 == code
    where = url.split("://")[1]
    assert (
        f"  FAIL  /health        TLS: {where} does not speak TLS: use http:// instead of https://"
    ) == out.splitlines()[1]


def test_check_explains_a_server_that_never_answers(capsys: pytest.CaptureFixture[str]) -> None:
    """A port that accepts connections but never answers: the timeout diagnosis."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        code, out, _ = run(["check", "--url", url, "--timeout", "0.3"], capsys)
    assert 1 == code
    assert out.splitlines()[1].startswith(
        "  FAIL  /health        no answer within 0.3 s: the connection was accepted"
    )


def test_check_explains_an_unresolvable_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DNS failure is named as such (resolution faked: tests send no DNS traffic)."""

    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    code, out, _ = run(["check", "--url", "http://vlogs.example.invalid:9428"], capsys)
    assert 1 == code
    assert out.splitlines()[1].startswith(
        "  FAIL  DNS            cannot resolve 'vlogs.example.invalid'"
    )


class _Scripted(BaseHTTPRequestHandler):
    """Answers every path with the status scripted for it (default 200, empty body)."""

    protocol_version = "HTTP/1.1"
    statuses: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status = self.statuses.get(path, 200)
        body = b"OK" if path == "/health" and status == 200 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, dict[str, int]]]:
    """A stand-in server answering 200 (storing nothing) unless told otherwise per path."""
    statuses: ClassVar[dict[str, int]] = {}
    handler = type("Handler", (_Scripted,), {"statuses": statuses})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", statuses
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_check_explains_a_200_that_stored_nothing(
    scripted: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Accepted but never readable: the silent-drop pitfalls are listed, exit 1."""
    url, _ = scripted
    code, out, _ = run(["check", "--url", url, "--wait", "0.3"], capsys)
    assert 1 == code
    assert (
        "  FAIL  query          the record was not stored: not found after 0.3 s (see below)"
        in out.splitlines()
    )
    for pitfall in ("application/x-www-form-urlencoded", "Content-Encoding", "debug=1"):
        assert pitfall in out


def test_check_tolerates_a_server_that_refuses_queries(
    scripted: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    """404 on /select (insert-only node or proxy): a warning, not a failure."""
    url, statuses = scripted
    statuses["/select/logsql/query"] = 404
    code, out, _ = run(["check", "--url", url], capsys)
    assert 0 == code
    assert (
        "  warn  query          HTTP 404: queries are not allowed at this URL (an insert-only "
        "node or proxy): the record was accepted but could not be read back"
    ) in out.splitlines()


def test_check_fails_on_an_authentication_error(
    scripted: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    """401 from the server: the auth hint, exit 1, and nothing more is tried."""
    url, statuses = scripted
    statuses["/health"] = 401
    code, out, _ = run(["check", "--url", url], capsys)
    assert 1 == code
    assert (
        "  FAIL  /health        HTTP 401: authentication is required or wrong: check "
        "--user/--password or --bearer-token"
    ) == out.splitlines()[1]
    assert not any("insert" in line for line in out.splitlines())


def test_check_checks_every_endpoint(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several URLs: each is checked; one dead endpoint fails the whole check."""
    dead = closed_port_url()
    code, out, _ = run(["check", "--url", f"{server.url},{dead}"], capsys)
    assert 1 == code
    headers = [line for line in out.splitlines() if line.startswith("checking ")]
    assert [f"checking {server.url} (tenant 0:0)", f"checking {dead} (tenant 0:0)"] == headers


# -- ship ---------------------------------------------------------------------------------------


def ship(
    argv: list[str],
    text: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str]:
    """``loguru-vlogs ship ARGV`` in this process with ``text`` on stdin: (exit code, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = run(["ship", *argv], capsys)
    assert "" == out
    return code, err


def test_ship_sends_plain_lines_with_their_level(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each non-empty line is one record: _msg is the line, level from a leading level word."""
    text = "starting up\nERROR: disk full\n\n[warn] slow\nerrors are fine here\n"
    argv = ["--url", server.url, "--field", "job=nightly", "--field", "env=ci"]
    code, err = ship(argv, text, capsys, monkeypatch)
    assert 0 == code
    assert "loguru-vlogs ship: 4 lines read, 4 records sent in 1 requests\n" == err
    rows = {r["_msg"]: r for r in server.rows('service:="loguru-vlogs-ship"')}
    expected = {
        "starting up": "INFO",
        "ERROR: disk full": "ERROR",
        "[warn] slow": "WARNING",
        "errors are fine here": "INFO",
    }
    assert expected == {msg: row["level"] for msg, row in rows.items()}
    assert {("nightly", "ci")} == {(r["job"], r["env"]) for r in rows.values()}


def test_ship_recognises_loguru_default_format(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`app 2>&1 | ship`: loguru's own console lines keep their level."""
    line = "2026-05-01 12:00:00.123 | WARNING  | app.db:query:42 - slow query\n"
    code, _ = ship(["--url", server.url, "--service", "app"], line, capsys, monkeypatch)
    assert 0 == code
    assert ["WARNING"] == [r["level"] for r in server.rows('service:="app"')]


def test_ship_json_maps_loguru_serialized_lines_to_the_sinks_fields(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """serialize=True output shipped with --json gives the rows the sink itself would."""
    serialized = io.StringIO()
    direct = VLogsSink(server.url, service="direct", flush_interval=60)
    logger.add(direct, level="DEBUG")
    logger.add(serialized, serialize=True, level="DEBUG")
    logger.bind(user_id=42).info("order {} paid", 1017, amount=12.5, tags=["a", "b"])
    with logger.contextualize(request_id="req-1"):
        logger.debug("cache miss")
    try:
        1 / 0  # noqa: B018 - the exception is the point
    except ZeroDivisionError:
        logger.exception("payment failed")
    logger.complete()
    logger.remove()

    argv = ["--url", server.url, "--json", "--service", "shipped"]
    code, _ = ship(argv, serialized.getvalue(), capsys, monkeypatch)
    assert 0 == code

    def rows(service: str) -> list[dict[str, str]]:
        ignored = {"_stream", "_stream_id", "service", "exception.traceback"}
        found = server.rows(f'service:="{service}"')
        return sorted(({k: v for k, v in r.items() if k not in ignored} for r in found), key=str)

    direct_rows, shipped_rows = rows("direct"), rows("shipped")
    assert 3 == len(direct_rows)
    assert direct_rows == shipped_rows
    (failed,) = server.rows('service:="shipped" AND level:="ERROR"')
    assert failed["exception.traceback"].endswith("ZeroDivisionError: division by zero")


def test_ship_json_maps_common_keys_of_any_object(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """msg/level/ts become _msg/level/_time; other keys stay fields; non-JSON is plain text."""
    # An hour ago (the sink re-times records outside the server's default 7-day retention).
    ts = int(time.time()) - 3600 + 0.25
    stamp = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    lines = [
        json.dumps({"msg": "user login", "level": "warn", "ts": ts, "user": "ann"}),
        json.dumps({"message": "nested", "http": {"status": 502}}),
        "not json at all",
        json.dumps(
            {"text": "odd\n", "record": {"message": "odd", "exception": {"type": "A\x00B"}}}
        ),
    ]
    code, _ = ship(["--url", server.url, "--json"], "\n".join(lines), capsys, monkeypatch)
    assert 0 == code
    rows = {r["_msg"]: r for r in server.rows()}
    login = rows["user login"]
    expected = ("WARNING", f"{stamp}.25Z", "ann")
    assert expected == (login["level"], login["_time"], login["user"])
    assert "502" == rows["nested"]["http.status"]
    assert "INFO" == rows["not json at all"]["level"]
    assert lines[-1] in rows  # the mapping refused it (NUL in a type name): sent as plain text


def test_ship_exits_1_when_records_are_not_delivered(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server down: bounded by VLOGS_SHUTDOWN_TIMEOUT, exit 1, the summary says what was lost."""
    monkeypatch.setenv("VLOGS_SHUTDOWN_TIMEOUT", "0.3")
    monkeypatch.setenv("VLOGS_TIMEOUT", "0.3")
    started = time.monotonic()
    code, err = ship(["--url", closed_port_url()], "a\nb\n", capsys, monkeypatch)
    assert 1 == code
    assert time.monotonic() - started < 5
    assert re.fullmatch(
        r"loguru-vlogs ship: 2 lines read, 0 records sent in \d+ requests, 2 dropped "
        r"\(shutdown=2\); last error: .*Connection refused\)\n",
        err,
    ), err


def test_ship_rejects_a_malformed_field(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--field without '=' is a usage error (exit 2), nothing is read."""
    code, err = ship(["--url", server.url, "--field", "oops"], "x\n", capsys, monkeypatch)
    assert (2, "loguru-vlogs ship: error: --field should be key=value, not: 'oops'\n") == (
        code,
        err,
    )


def test_ship_spool_dir_goes_to_the_sink(
    server: FakeVictoriaLogs,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """--spool-dir gives the sink its spool; with the server up everything is sent."""
    argv = ["--url", server.url, "--spool-dir", str(tmp_path / "spool")]
    code, err = ship(argv, "spooled line\n", capsys, monkeypatch)
    assert (0, 1) == (code, server.count())
    assert "loguru-vlogs ship: 1 lines read, 1 records sent in 1 requests\n" == err


def test_ship_with_a_spool_keeps_what_it_cannot_send(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Server down with a spool: the lines wait on disk, exit 1 says where."""
    monkeypatch.setenv("VLOGS_TIMEOUT", "0.3")
    spool = tmp_path / "spool"
    argv = ["--url", closed_port_url(), "--spool-dir", str(spool)]
    code, err = ship(argv, "a\nb\nc\n", capsys, monkeypatch)
    assert 1 == code
    assert re.fullmatch(
        rf"loguru-vlogs ship: 3 lines read, 0 records sent in \d+ requests, 3 kept in the "
        rf"spool {re.escape(str(spool))}; last error: .*Connection refused\)\n",
        err,
    ), err


def _unread_bytes(pipe: Any) -> int:
    """Bytes written to the pipe that its reader has not taken yet (Linux FIONREAD)."""
    import fcntl
    import termios

    raw = fcntl.ioctl(pipe.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


@POSIX
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ship_stops_on_a_signal_after_sending_what_it_read(
    server: FakeVictoriaLogs, signum: signal.Signals
) -> None:
    """SIGINT/SIGTERM while stdin stays open: every line read is sent, then exit 0."""
    env = subprocess_env(VLOGS_FLUSH_INTERVAL="60", VLOGS_BATCH_SIZE="5")
    with subprocess.Popen(
        [sys.executable, "-m", "loguru_vlogs", "ship", "--url", server.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdin is not None
        try:
            proc.stdin.write(b"".join(b"line %d\n" % i for i in range(5)))
            proc.stdin.flush()
            assert wait_for(lambda: server.count() == 5, timeout=10)  # a full batch: sent
            proc.stdin.write(b"tail 1\ntail 2\ntail 3\n")  # below batch_size: still buffered
            proc.stdin.flush()
            assert wait_for(lambda: _unread_bytes(proc.stdin) == 0, timeout=10)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
    assert 0 == proc.returncode, err
    assert 8 == server.count()
    lines = err.decode().splitlines()
    assert lines[0].startswith(f"loguru-vlogs ship: {signum.name}: sending what was read")
    assert "loguru-vlogs ship: 8 lines read, 8 records sent in 2 requests" == lines[-1]


@pytest.mark.slow
@POSIX
def test_ship_shows_progress_only_on_a_terminal(server: FakeVictoriaLogs) -> None:
    """With stderr on a terminal a status line is rewritten in place while lines flow."""
    leader, follower = os.openpty()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "loguru_vlogs", "ship", "--url", server.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env=subprocess_env(),
        ) as proc:
            assert proc.stdin is not None
            try:
                proc.stdin.write(b"one\ntwo\n")
                proc.stdin.flush()
                seen = b""
                deadline = time.monotonic() + 10
                while b"lines read" not in seen and time.monotonic() < deadline:
                    ready, _, _ = select.select([leader], [], [], 0.1)
                    if ready:
                        seen += os.read(leader, 4096)
                proc.stdin.close()
                proc.wait(timeout=15)
            finally:
                proc.kill()
    finally:
        os.close(follower)
        os.close(leader)
    assert 0 == proc.returncode
    assert b"\r\x1b[K2 lines read, " in seen


# -- spool --------------------------------------------------------------------------------------


@pytest.fixture
def spool_dir(tmp_path: Path) -> str:
    """A spool left by a process that exited: 3 batches of 4 records."""
    spool_module = pytest.importorskip("loguru_vlogs._spool")
    if sys.platform == "win32":
        pytest.skip("the disk spool needs POSIX file locks")
    directory = tmp_path / "spool"
    with spool_module.Spool(directory) as spool:
        for batch in range(3):
            spool.append(
                [
                    json.dumps({"_msg": f"spooled {batch}-{i}", "service": "app"}).encode()
                    for i in range(4)
                ]
            )
    return str(directory)


def test_spool_status_says_what_is_waiting(
    spool_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """status: records and bytes waiting."""
    code, out, _ = run(["spool", "status", "--spool-dir", spool_dir], capsys)
    assert 0 == code
    assert re.fullmatch(
        rf"{re.escape(spool_dir)}: 12 records \(\d+ bytes\) waiting to be sent\n", out
    )


def test_spool_send_delivers_and_empties_the_spool(
    spool_dir: str,
    server: FakeVictoriaLogs,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """send: every batch reaches the server, the spool is empty, exit 0; the URL may come from env."""
    monkeypatch.setenv("VLOGS_URL", server.url)
    code, out, _ = run(["spool", "send", "--spool-dir", spool_dir], capsys)
    assert (0, "sent 12 records in 3 requests; 0 left in the spool\n") == (code, out)
    expected = {f"spooled {b}-{i}" for b in range(3) for i in range(4)}
    assert expected == {r["_msg"] for r in server.rows('service:="app"')}
    run(["spool", "status", "--spool-dir", spool_dir], capsys)
    assert [] == [p.name for p in Path(spool_dir).glob("*.seg")]


def test_spool_send_stops_and_keeps_what_the_server_refuses(
    spool_dir: str, server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch the server does not take stays in the spool; exit 1 says why."""
    server.fail_next(1, 503, body="busy")
    code, out, _ = run(["spool", "send", "--spool-dir", spool_dir, "--url", server.url], capsys)
    assert 1 == code
    assert [
        "sent 0 records in 1 requests; 12 left in the spool",
        f"stopped: {server.url}: HTTP 503 busy; run it again later",
    ] == out.splitlines()
    assert 0 == server.count()
    _, status, _ = run(["spool", "status", "--spool-dir", spool_dir], capsys)
    assert f"{spool_dir}: 12 records" in status


def test_spool_send_settles_a_refused_batch_as_a_sink_does(
    spool_dir: str, server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch the server refuses (400) is dropped and counted, as the sink's worker does;
    the other batches are sent; exit 1 says how many were dropped."""
    server.fail_next(1, 400, body="bad batch")
    code, out, _ = run(["spool", "send", "--spool-dir", spool_dir, "--url", server.url], capsys)
    assert 1 == code
    assert [
        "sent 8 records in 3 requests; 0 left in the spool",
        f"dropped 4 records the server refused: {server.url}: HTTP 400 bad batch",
    ] == out.splitlines()
    assert 8 == server.count('service:="app"')


@pytest.mark.parametrize(
    ("argv", "kept"), [([], False), (["--time-window", "30d,2d"], True)], ids=["default", "30d"]
)
def test_spool_send_retimes_with_the_time_window_it_is_given(
    argv: list[str], kept: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 20-day-old spooled record: the default window (7 days) sends it with the sending time
    and original_time; --time-window 30d,2d (the writing application's) keeps its time."""
    spool_module = pytest.importorskip("loguru_vlogs._spool")
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=20)
    stamp = old.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with spool_module.Spool(tmp_path / "spool") as spool:
        spool.append([json.dumps({"_msg": "old", "_time": stamp}, separators=(",", ":")).encode()])
    with FakeVictoriaLogs(retention="30d") as server:
        code, _, _ = run(
            ["spool", "send", "--spool-dir", str(tmp_path / "spool"), "--url", server.url, *argv],
            capsys,
        )
        assert 0 == code
        (row,) = server.rows()
    # The server trims trailing zeros of the fraction (Python 3.10's fromisoformat() wants 3 or 6).
    moment = datetime.datetime.strptime(
        row["_time"].replace("Z", "+00:00"), "%Y-%m-%dT%H:%M:%S.%f%z"
    )
    assert (moment == old) is kept
    assert ("original_time" in row) is not kept


def test_spool_send_shows_a_progress_bar_on_a_terminal(
    spool_dir: str,
    server: FakeVictoriaLogs,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a terminal stderr shows [####...] done/total, cleared at the end."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, _, _ = run(["spool", "send", "--spool-dir", spool_dir, "--url", server.url], capsys)
    assert 0 == code
    assert f"\r[{'#' * 30}] 12/12 records\r\x1b[K" in terminal.getvalue()


def test_spool_purge_needs_confirmation_without_a_terminal(
    spool_dir: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No terminal and no --yes: nothing is deleted, exit 2."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = run(["spool", "purge", "--spool-dir", spool_dir], capsys)
    assert 2 == code
    assert (
        "loguru-vlogs spool: error: not deleting without confirmation: run it on a terminal "
        "or add --yes\n"
    ) == err
    _, status, _ = run(["spool", "status", "--spool-dir", spool_dir], capsys)
    assert f"{spool_dir}: 12 records" in status


@pytest.mark.parametrize(("answer", "code", "left"), [("n", 1, 12), ("y", 0, 0)])
def test_spool_purge_asks_on_a_terminal(
    spool_dir: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
    left: int,
) -> None:
    """The question is answered on the terminal: 'y' deletes everything, anything else nothing."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(answer + "\n"))
    result, out, _ = run(["spool", "purge", "--spool-dir", spool_dir], capsys)
    assert code == result
    assert "delete 12 records (" in out
    _, status, _ = run(["spool", "status", "--spool-dir", spool_dir], capsys)
    assert status.startswith(f"{spool_dir}: {left} records")


def test_spool_purge_yes_deletes_without_asking(
    spool_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--yes: deleted at once."""
    code, out, _ = run(["spool", "purge", "--spool-dir", spool_dir, "--yes"], capsys)
    assert (0, "deleted 12 records") == (code, out.splitlines()[-1])


def test_spool_commands_need_an_existing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing directory is an error (status never creates one)."""
    missing = tmp_path / "nope"
    code, _, err = run(["spool", "status", "--spool-dir", str(missing)], capsys)
    expected = f"loguru-vlogs spool: error: there is no spool directory at {str(missing)!r}\n"
    assert (2, expected) == (code, err)
    assert not missing.exists()


# -- serve --------------------------------------------------------------------------------------


@POSIX
def test_serve_runs_the_receiver_until_interrupted(tmp_path: Path) -> None:
    """`serve --port N --data FILE`: listens on 127.0.0.1, stores rows in FILE, stops on Ctrl-C."""
    port = free_port()
    data = tmp_path / "rows.jsonl"
    with subprocess.Popen(
        [sys.executable, "-m", "loguru_vlogs", "serve", "--port", str(port), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline().decode()
            url = f"http://127.0.0.1:{port}"
            assert (
                f"VictoriaLogs-compatible receiver listening on {url} (Ctrl-C to stop)\n" == first
            )
            request = urllib.request.Request(
                url + "/insert/jsonline",
                data=b'{"_msg":"hello","k":"v"}',
                headers={"Content-Type": "application/stream+json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert 200 == response.status
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert (0, b"") == (proc.returncode, err)
    (row,) = [json.loads(line) for line in data.read_text().splitlines()]
    assert ("hello", "v") == (row["_msg"], row["k"])


def test_check_explains_a_path_the_server_does_not_serve(
    vlogs_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base URL with a path the server does not serve (400 "unsupported path", not 404)."""
    code, out, _ = run(["check", "--url", vlogs_server.url + "/logs"], capsys)
    assert 1 == code
    insert = next(line for line in out.splitlines() if line.split()[:2] == ["FAIL", "insert"])
    assert insert.startswith('  FAIL  insert         HTTP 400: unsupported path requested: "/logs')
    assert insert.endswith("is the URL the server's base URL (mind a proxy's path prefix)?")


def test_ship_time_window_and_max_message_bytes_for_old_files(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--time-window 30d,2d keeps a 20-day-old time (a server kept 30 days stores it);
    --max-message-bytes cuts the message."""
    with FakeVictoriaLogs(retention="30d") as server:
        check_old_file_flags(server, capsys, monkeypatch)


def check_old_file_flags(
    server: FakeVictoriaLogs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=20)).isoformat()
    line = json.dumps({"time": old, "msg": "x" * 2000}) + "\n"
    argv = ["--url", server.url, "--json", "--time-window", "30d,2d", "--max-message-bytes", "1KiB"]
    code, _ = ship(argv, line, capsys, monkeypatch)
    assert 0 == code
    (row,) = server.rows()
    assert "original_time" not in row
    assert datetime.datetime.fromisoformat(old) == datetime.datetime.fromisoformat(
        row["_time"].replace("Z", "+00:00")
    )
    assert "2000" == row["message_size"]
    assert len(row["_msg"].encode()) <= 1024


def test_ship_refuses_a_time_window_that_is_not_a_pair(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A usage error names the flag and the form."""
    code, err = ship(
        ["--url", "http://127.0.0.1:9", "--time-window", "30d"], "", capsys, monkeypatch
    )
    assert 2 == code
    assert (
        "loguru-vlogs ship: error: Invalid --time-window: it should be MAX_AGE,MAX_FUTURE "
        "durations such as 7d,2d (or none), not: '30d'\n"
    ) == err
