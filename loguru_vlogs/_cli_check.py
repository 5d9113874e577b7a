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
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from ._cli_common import (
    CHECK_ARGUMENTS,
    EXIT_FAILED,
    EXIT_OK,
    build_sink,
    connection_overrides,
)
from ._explain import diagnose, status_hint, wrong_path

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
                report.step(_FAIL, path, f"HTTP {answer.status}: {status_hint(answer.status)}")
                return
            else:
                report.step(
                    _WARN,
                    path,
                    f"HTTP {answer.status} {answer.body[:200]!r}: "
                    f"{status_hint(answer.status, answer.body)}",
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
            f"HTTP {answer.status}{body_text} -- {status_hint(answer.status, answer.body)}",
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
            if answer.status in (401, 403, 405) or wrong_path(answer.status, answer.body):
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
