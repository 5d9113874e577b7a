"""``loguru-vlogs check``: is this server usable, and if not, why.

It talks to each endpoint with urllib3 directly rather than through the sink, so every
error is seen as it happens and turned into one actionable sentence.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import json
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from ._cli_common import (
    CHECK_ARGUMENTS,
    EXIT_FAILED,
    EXIT_OK,
    build_sink,
    connection_overrides,
)

_PASS, _WARN, _FAIL = "ok", "warn", "FAIL"

_SILENT_DROP_HELP = """\
The server answered 200 to the insert, yet the record cannot be found. VictoriaLogs
answers 200 and stores nothing when:
  - the Content-Type is application/x-www-form-urlencoded (the body is eaten as a form):
    a proxy rewriting Content-Type, or a client such as urllib.request that sets it by default;
  - the Content-Encoding is not exactly gzip, zstd, deflate or snappy (e.g. 'br', 'GZIP'):
    a proxy re-encoding the body;
  - debug=1 or a VL-Debug header is set (a proxy adding it): rows are logged, not stored;
  - the line is 256 KiB or more, has more than 1000 fields, or a key longer than 128 bytes;
  - the record time is outside the retention period (default 7 days) or more than 2 days ahead;
  - the server is overloaded (its 503 becomes a 200).
Also check that the insert and the query reach the same server and the same tenant
(AccountID/ProjectID headers; a proxy may route them differently), and on a cluster allow
more time for visibility (--wait)."""


@dataclass
class _Report:
    """The steps of one endpoint's check, printed as they happen."""

    out: IO[str]
    failed: bool = False
    notes: list[str] = field(default_factory=list)

    def step(self, status: str, name: str, text: str) -> None:
        if status == _FAIL:
            self.failed = True
        print(f"  {status:<4}  {name:<14} {text}", file=self.out, flush=True)


class _Answer(NamedTuple):
    status: int
    body: str
    seconds: float


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (urllib3's ``reason``, ``__cause__``, ``__context__``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        reason = getattr(item, "reason", None)
        todo.extend(
            [
                reason if isinstance(reason, BaseException) else None,
                item.__cause__,
                item.__context__,
            ]
        )


def diagnose(exc: BaseException, url: str, timeout: float) -> str:
    """One actionable sentence for a failed connection to ``url`` (no credentials in it)."""
    import urllib3.exceptions as u3

    causes = list(_causes(exc))
    text = " ".join(str(c) for c in causes)
    where = url.split("://", 1)[-1].split("/", 1)[0]

    def caused_by(*kinds: type[BaseException]) -> bool:
        return any(isinstance(c, kinds) for c in causes)

    hint = " (is it an https:// server? then use https://)" if url.startswith("http:") else ""
    rules: list[tuple[bool, str]] = [
        (
            caused_by(socket.gaierror, u3.NameResolutionError),
            f"DNS: the host name in {url} cannot be resolved: check for a typo; inside a "
            "container use the service's name on that network",
        ),
        (
            caused_by(ConnectionRefusedError) or "refused" in text,
            f"connection refused: nothing listens on {where}; is VictoriaLogs running, and "
            "is the port right (default 9428)?",
        ),
        (
            caused_by(ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text,
            "TLS: the server's certificate is not trusted: give the CA bundle with --ca-certs "
            "(VLOGS_CA_CERTS), or --insecure (VLOGS_VERIFY=0) for a test setup",
        ),
        (
            "WRONG_VERSION_NUMBER" in text.upper() or "record layer failure" in text,
            f"TLS: {where} does not speak TLS: use http:// instead of https://",
        ),
        (caused_by(ssl.SSLError, u3.SSLError), f"TLS handshake failed: {causes[-1]}"),
        (
            caused_by(u3.ConnectTimeoutError),
            f"connect timed out after {timeout:g} s: the host does not answer on {where} "
            "(a firewall dropping packets, or the wrong address)",
        ),
        (
            caused_by(u3.ReadTimeoutError, TimeoutError),
            f"no answer within {timeout:g} s: the connection was accepted but the server did "
            "not respond (overloaded, or not an HTTP server); raise --timeout to wait longer",
        ),
        (
            caused_by(u3.ProtocolError, ConnectionError),
            f"the connection was closed without an HTTP answer{hint}: {causes[-1]}",
        ),
    ]
    return next((m for hit, m in rules if hit), f"{type(exc).__name__}: {exc}")


_STATUS_HINTS = {
    400: "the server rejected the request",
    401: "authentication is required or wrong: check --user/--password or --bearer-token",
    403: "access denied: check the credentials and the tenant (--account-id/--project-id)",
    404: "not found: is the URL the server's base URL (mind a proxy's path prefix)?",
    405: "method not allowed: the URL does not point at VictoriaLogs' insert API",
    413: "request too large for a proxy in between",
    429: "the server's storage is read-only (disk nearly full); it will accept again later",
}


#: VictoriaLogs answers a path it does not serve with 400 and this text (not 404).
UNSUPPORTED_PATH = "unsupported path requested"


def _wrong_path(status: int, body: str) -> bool:
    return status == 404 or (status == 400 and UNSUPPORTED_PATH in body)


def _status_hint(status: int, body: str = "") -> str:
    if _wrong_path(status, body):
        return _STATUS_HINTS[404]
    if status in _STATUS_HINTS:
        return _STATUS_HINTS[status]
    if status >= 500:
        return "server error: the server or a proxy in front of it is failing or overloaded"
    return f"unexpected HTTP {status}"


class _Checker:
    """Talks to one endpoint with urllib3 directly, to see every error as it is."""

    def __init__(self, settings: Any, endpoint: Any, timeout: float, wait: float) -> None:
        import urllib3

        from ._http import tls_options
        from ._transport import USER_AGENT

        self.endpoint = endpoint
        self.timeout = timeout
        self.wait = wait
        self.headers = settings.request_headers(endpoint)
        self.read_headers = {k: v for k, v in self.headers.items() if k != "Content-Type"}
        tls = tls_options(settings)
        if not settings.verify:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.pool = urllib3.PoolManager(retries=False, headers={"User-Agent": USER_AGENT}, **tls)
        self.stream_fields = ",".join(settings.stream_fields)
        self.host = settings.host

    def request(
        self, method: str, path: str, *, body: bytes | None = None, fields: Any = None
    ) -> _Answer:
        import urllib3

        headers = self.headers if body is not None else self.read_headers
        started = time.perf_counter()
        response = self.pool.request(
            method,
            self.endpoint.base_url + path,
            body=body,
            fields=fields,
            headers=headers,
            timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            redirect=False,
        )
        text = response.data[:1000].decode("utf-8", "replace").strip()
        return _Answer(response.status, text, time.perf_counter() - started)

    def run(self, report: _Report) -> None:
        url = self.endpoint.display
        if not self._resolve(report):
            return
        for path in ("/health", "/insert/ready"):
            try:
                answer = self.request("GET", path)
            except Exception as exc:  # noqa: BLE001 - every failure is diagnosed, never raised
                report.step(_FAIL, path, diagnose(exc, url, self.timeout))
                return
            if answer.status == 200:
                report.step(_PASS, path, f"200 {answer.body[:40]!s} in {_ms(answer.seconds)}")
            elif answer.status in (401, 403):
                report.step(_FAIL, path, f"HTTP {answer.status}: {_status_hint(answer.status)}")
                return
            else:
                report.step(
                    _WARN,
                    path,
                    f"HTTP {answer.status} {answer.body[:200]!r}: "
                    f"{_status_hint(answer.status, answer.body)}",
                )
        run_id = uuid.uuid4().hex[:16]
        if self._insert(report, run_id):
            self._read_back(report, run_id)

    def _resolve(self, report: _Report) -> bool:
        from urllib.parse import urlsplit

        host = urlsplit(self.endpoint.base_url).hostname or ""
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            return True  # an IP literal: nothing to resolve
        except OSError:
            pass
        started = time.perf_counter()
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            report.step(
                _FAIL,
                "DNS",
                f"cannot resolve {host!r} ({exc}): check for a typo; inside a container use "
                "the service's name on that network",
            )
            return False
        addresses = sorted({str(info[4][0]) for info in infos})
        report.step(
            _PASS,
            "DNS",
            f"{host} -> {', '.join(addresses[:3])} in {_ms(time.perf_counter() - started)}",
        )
        return True

    def _insert(self, report: _Report, run_id: str) -> bool:
        from ._config import quote_query_value

        now = datetime.datetime.now(datetime.timezone.utc)
        record = {
            "_msg": f"loguru-vlogs check {run_id}",
            "_time": now.isoformat(timespec="microseconds"),
            "level": "INFO",
            "service": "loguru-vlogs-check",
            "host": self.host,
            "run_id": run_id,
        }
        body = gzip.compress(json.dumps(record).encode(), compresslevel=1)
        path = "/insert/jsonline"
        if self.stream_fields:
            path += "?_stream_fields=" + quote_query_value(self.stream_fields)
        self.headers = {**self.headers, "Content-Encoding": "gzip"}
        try:
            answer = self.request("POST", path, body=body)
        except Exception as exc:  # noqa: BLE001 - every failure is diagnosed, never raised
            report.step(_FAIL, "insert", diagnose(exc, self.endpoint.display, self.timeout))
            return False
        if 200 <= answer.status < 300:
            report.step(
                _PASS,
                "insert",
                f"{answer.status}: 1 record (run_id={run_id}) accepted in {_ms(answer.seconds)}",
            )
            return True
        body_text = f": {answer.body[:300]}" if answer.body else ""
        report.step(
            _FAIL,
            "insert",
            f"HTTP {answer.status}{body_text} -- {_status_hint(answer.status, answer.body)}",
        )
        return False

    def _read_back(self, report: _Report, run_id: str) -> None:
        query = {"query": f'run_id:="{run_id}"', "limit": "1"}
        started = time.perf_counter()
        deadline = time.monotonic() + self.wait
        # Makes the row visible at once on a single node; a cluster or proxy may refuse it.
        with contextlib.suppress(Exception):  # optional: only makes the row visible sooner
            self.request("GET", "/internal/force_flush")
        pause = 0.05
        while True:
            try:
                answer = self.request("GET", "/select/logsql/query", fields=query)
            except Exception as exc:  # noqa: BLE001 - every failure is diagnosed, never raised
                report.step(_WARN, "query", diagnose(exc, self.endpoint.display, self.timeout))
                return
            if answer.status in (401, 403, 405) or _wrong_path(answer.status, answer.body):
                report.step(
                    _WARN,
                    "query",
                    f"HTTP {answer.status}: queries are not allowed at this URL (an insert-only "
                    "node or proxy): the record was accepted but could not be read back",
                )
                return
            if answer.status != 200:
                report.step(
                    _WARN,
                    "query",
                    f"HTTP {answer.status} {answer.body[:200]!r}: could not read the record back",
                )
                return
            if run_id in answer.body:
                report.step(
                    _PASS,
                    "query",
                    f"the record was read back after {_ms(time.perf_counter() - started)}",
                )
                return
            if time.monotonic() >= deadline:
                report.step(
                    _FAIL,
                    "query",
                    f"the record was not stored: not found after {self.wait:g} s (see below)",
                )
                report.notes.append(_SILENT_DROP_HELP)
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def check(args: argparse.Namespace) -> int:
    sink = build_sink(connection_overrides(args), only=CHECK_ARGUMENTS)
    settings = sink.settings
    report = _Report(sys.stdout)
    started = time.perf_counter()
    for endpoint in settings.endpoints:
        tenant = f"{settings.account_id or 0}:{settings.project_id or 0}"
        print(f"checking {endpoint.display} (tenant {tenant})", flush=True)
        _Checker(settings, endpoint, settings.timeout, args.wait).run(report)
    for note in report.notes:
        print(note)
    total = _ms(time.perf_counter() - started)
    if report.failed:
        print(f"FAILED: see the lines marked FAIL above ({total})")
        return EXIT_FAILED
    print(f"OK: records sent to this server are accepted ({total})")
    return EXIT_OK
