"""The ``loguru-vlogs`` command line (also ``python -m loguru_vlogs``).

``demo`` (the README's first command), ``check`` (is this server usable, and if not, why),
``ship`` (stdin lines -> VictoriaLogs through a ``VLogsSink``) and ``serve`` (the built-in
VictoriaLogs-compatible receiver). Options default to the ``VLOGS_*`` environment variables;
a command-line option wins. Exit codes: 0 success, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import inspect
import json
import os
import queue
import re
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any, NamedTuple

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    """A configuration problem reported as ``loguru-vlogs CMD: error: ...`` with exit code 2."""


# -- demo -------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from loguru import logger

    from ._sink import VLogsSink
    from .testing import FakeVictoriaLogs, VLogsClient

    # Only VictoriaLogs gets the burst: loguru's default stderr handler would print the
    # demo's deliberate exception as if the demo itself had failed.
    logger.remove()
    server = None
    url = args.url
    if url is None:
        server = FakeVictoriaLogs()
        server.start()
        url = server.url
        print(f"started the built-in VictoriaLogs-compatible receiver at {url}")
    else:
        print(f"using the VictoriaLogs server at {url}")
    run_id = uuid.uuid4().hex[:12]
    try:
        sink = VLogsSink(url=url, service="loguru-vlogs-demo", fields={"run_id": run_id})
        handler = logger.add(sink, level="DEBUG")
        started = time.perf_counter()
        count = _log_burst(args.records)
        logger.complete()
        elapsed = time.perf_counter() - started
        logger.remove(handler)
        stats = sink.stats()
        print(f"logged {count} records in {elapsed * 1000:.0f} ms (logger.complete() included)")
        print(
            f"sent {stats['sent']} in {stats['requests']} requests, "
            f"{stats['bytes_raw']} bytes of JSON as {stats['bytes_sent']} bytes gzip, "
            f"dropped {stats['dropped_total']}"
        )
        client = VLogsClient(url)
        stored = client.wait_for_count(f'run_id:="{run_id}"', count, timeout=10.0)
        print(f"the server stored {stored} of {count} records for run_id={run_id}")
        rows = client.rows(f'run_id:="{run_id}" AND level:="ERROR"', limit=1)
        if rows:
            print("\nan ERROR row as VictoriaLogs returns it:")
            for key, value in rows[0].items():
                shown = value if len(value) < 100 else value[:97] + "..."
                print(f"  {key:22} {shown!r}")
        return 0 if stored == count else 1
    finally:
        if server is not None:
            server.stop()


def _log_burst(records: int) -> int:
    """Log a realistic mix: levels, bound fields, kwargs, contextualize, one exception."""
    from loguru import logger as log

    count = 0
    with log.contextualize(request_id="req-7f3a"):
        for i in range(records):
            user = log.bind(user_id=1000 + i % 17, tenant="acme")
            if i % 10 == 0:
                user.debug("cache miss for key {}", f"product:{i}")
            elif i % 25 == 0:
                user.warning("slow query took {:.1f} ms", 120.5 + i)
            else:
                user.info(
                    "order {} paid", 1017 + i, amount=round(12.5 + i * 0.1, 2), currency="EUR"
                )
            count += 1
        try:
            {"a": 1}["missing"]
        except KeyError:
            log.bind(order_id=1017).exception("payment failed")
            count += 1
    return count


# -- shared: options -> sink arguments --------------------------------------------------------

#: What ``check`` needs of the sink's configuration (never the spool: checking has no side effects).
_CHECK_ARGUMENTS = (
    "url",
    "account_id",
    "project_id",
    "headers",
    "auth",
    "bearer_token",
    "verify",
    "ca_certs",
    "client_cert",
    "client_key",
    "timeout",
)


def _connection_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Sink arguments given by the shared connection options (unset options left out)."""
    overrides: dict[str, Any] = {}
    if args.url is not None:
        urls = [u.strip() for u in args.url.split(",") if u.strip()]
        overrides["url"] = urls[0] if len(urls) == 1 else urls
    for name in ("account_id", "project_id", "bearer_token", "ca_certs", "timeout"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.insecure:
        overrides["verify"] = False
    if args.user is not None:
        # The password may come from the environment: command lines are visible to others.
        password = args.password if args.password is not None else os.environ.get("VLOGS_PASSWORD")
        if password is None:
            raise _UsageError("--user needs --password or VLOGS_PASSWORD")
        overrides["auth"] = (args.user, password)
    elif args.password is not None:
        raise _UsageError("--password needs --user")
    return overrides


def _build_sink(overrides: dict[str, Any], only: Sequence[str] | None = None) -> Any:
    """A ``VLogsSink`` from the environment and ``overrides``; bad values -> :class:`_UsageError`."""
    from ._env import VARIABLES, sink_from_env
    from ._sink import VLogsSink

    if "auth" in overrides:
        # --user replaces VLOGS_USERNAME/VLOGS_PASSWORD: do not insist on the pair there.
        names = only if only is not None else [v.argument for v in VARIABLES]
        only = [name for name in names if name != "auth"]
    try:
        return sink_from_env(VLogsSink, overrides, only=only)
    except (TypeError, ValueError) as exc:
        raise _UsageError(str(exc)) from None


# -- check ------------------------------------------------------------------------------------

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


def _status_hint(status: int) -> str:
    if status in _STATUS_HINTS:
        return _STATUS_HINTS[status]
    if status >= 500:
        return "server error: the server or a proxy in front of it is failing or overloaded"
    return f"unexpected HTTP {status}"


class _Checker:
    """Talks to one endpoint with urllib3 directly, to see every error as it is."""

    def __init__(self, settings: Any, endpoint: Any, timeout: float, wait: float) -> None:
        import urllib3

        from ._transport import USER_AGENT

        self.endpoint = endpoint
        self.timeout = timeout
        self.wait = wait
        self.headers = settings.request_headers(endpoint)
        self.read_headers = {k: v for k, v in self.headers.items() if k != "Content-Type"}
        tls: dict[str, Any] = {}
        if not settings.verify:
            tls["cert_reqs"] = "CERT_NONE"
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if settings.ca_certs:
            tls["ca_certs"] = settings.ca_certs
        if settings.client_cert:
            tls["cert_file"] = settings.client_cert
        if settings.client_key:
            tls["key_file"] = settings.client_key
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
                    f"HTTP {answer.status} {answer.body[:200]!r}: {_status_hint(answer.status)}",
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
            f"HTTP {answer.status}{body_text} -- {_status_hint(answer.status)}",
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
            if answer.status in (401, 403, 404, 405):
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


def _check(args: argparse.Namespace) -> int:
    sink = _build_sink(_connection_overrides(args), only=_CHECK_ARGUMENTS)
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


# -- ship -------------------------------------------------------------------------------------

#: Loguru's level numbers; other names are shipped with the number loguru gives INFO.
_LEVELS = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "SUCCESS": 25,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}
_ALIASES = {
    "WARN": "WARNING",
    "ERR": "ERROR",
    "FATAL": "CRITICAL",
    "CRIT": "CRITICAL",
    "NOTICE": "INFO",
    "INFORMATION": "INFO",
    "DBG": "DEBUG",
    "TRC": "TRACE",
    "EMERG": "CRITICAL",
    "ALERT": "CRITICAL",
}
_LEVEL_WORD = "|".join(sorted([*_LEVELS, *_ALIASES], key=len, reverse=True))
# "ERROR ...", "[warn] ...", "<INFO> ...", "error: ...", and loguru's default format
# "2024-05-01 12:00:00.000 | WARNING  | mod:fn:1 - ...".
_LEADING_LEVEL = re.compile(
    rf"^\s*(?:[\[(<]\s*)?({_LEVEL_WORD})\b|^[^|\n]{{0,40}}\|\s*({_LEVEL_WORD})\s*\|",
    re.IGNORECASE,
)
_MESSAGE_KEYS = ("_msg", "message", "msg")
_LEVEL_KEYS = ("level", "levelname", "severity", "lvl")
_TIME_KEYS = ("_time", "time", "timestamp", "ts", "@timestamp")
_NUMBER_LEVELS = {no: name for name, no in _LEVELS.items()}


class _Level(NamedTuple):
    name: str
    no: int
    icon: str = ""


class _File(NamedTuple):
    name: str | None
    path: str | None


class _Ident(NamedTuple):
    id: int | None
    name: str | None


_NO_FILE = _File(None, None)
_NO_IDENT = _Ident(None, None)


class _Line(str):
    """What loguru hands a sink: the text, with the record beside it as ``.record``."""

    record: dict[str, Any]


def _level(name: str) -> _Level:
    upper = name.upper()
    upper = _ALIASES.get(upper, upper)
    return _Level(upper, _LEVELS.get(upper, _LEVELS["INFO"]))


def level_of_text(line: str) -> _Level:
    """The level a plain text line announces in front, else INFO."""
    match = _LEADING_LEVEL.match(line)
    if match is None:
        return _Level("INFO", 20)
    return _level(match.group(1) or match.group(2))


def _level_of_value(value: Any) -> _Level | None:
    if isinstance(value, str) and value.strip():
        return _level(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return _Level(_NUMBER_LEVELS.get(value, f"Level {value}"), value)
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        no = value.get("no")
        found = _level(value["name"])
        return found._replace(no=no) if isinstance(no, int) else found
    return None


def _time_of_value(value: Any) -> datetime.datetime | None:
    """A JSON time: RFC 3339 / ISO 8601 text, or a Unix time in s, ms, µs or ns (by size)."""
    try:
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"-?\d+(\.\d+)?", text):
                value = float(text)
            else:
                if text.endswith(("Z", "z")):  # fromisoformat() takes "Z" only from 3.11 on
                    text = text[:-1] + "+00:00"
                moment = datetime.datetime.fromisoformat(text)
                return moment if moment.tzinfo is not None else moment.astimezone()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
            for _ in range(3):  # the server's guess: ns, µs, ms or s by magnitude
                if abs(seconds) < 1e11:
                    break
                seconds /= 1000.0
            return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).astimezone()
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _exception_type(name: str) -> type[BaseException]:
    # A stand-in class that reports the original name (the encoder writes __qualname__).
    return type(name, (Exception,), {"__module__": "builtins", "__qualname__": name})


class _Records:
    """Turns stdin lines into loguru-shaped records for ``VLogsSink.write``."""

    def __init__(self, *, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.started = datetime.datetime.now().astimezone()
        self._started_mono = time.monotonic()

    def _base(self, message: str, level: _Level, moment: datetime.datetime) -> dict[str, Any]:
        # Every key loguru provides, so the encoder takes its fast path; unknown ones are None
        # (the server drops nulls). elapsed: seconds since `ship` started.
        return {
            "message": message,
            "time": moment,
            "level": level,
            "name": None,
            "module": None,
            "function": None,
            "line": None,
            "file": _NO_FILE,
            "process": _NO_IDENT,
            "thread": _NO_IDENT,
            "elapsed": datetime.timedelta(seconds=time.monotonic() - self._started_mono),
            "exception": None,
            "extra": {},
        }

    def make(self, line: str) -> _Line:
        """One record from one line (without its line break)."""
        if self.json_lines and line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                record = obj.get("record")
                # A value the mapping cannot use (a type name with NUL, a huge number...)
                # sends the line as plain text rather than losing it.
                with contextlib.suppress(TypeError, ValueError, OverflowError):
                    if isinstance(obj.get("text"), str) and isinstance(record, dict):
                        return self._from_loguru(obj["text"], record, line)
                    return self._from_object(obj, line)
        now = datetime.datetime.now().astimezone()
        out = _Line(line)
        out.record = self._base(line, level_of_text(line), now)
        return out

    def _from_loguru(self, text: str, rec: dict[str, Any], line: str) -> _Line:
        """A line of loguru's ``serialize=True`` output, mapped to the sink's fields."""
        stamp = rec.get("time")
        moment = None
        if isinstance(stamp, dict):
            # "repr" is str(datetime): exact to the microsecond, with the zone offset.
            moment = _time_of_value(stamp.get("repr")) or _time_of_value(stamp.get("timestamp"))
        message = rec.get("message")
        base = self._base(
            message if isinstance(message, str) else text.rstrip("\n"),
            _level_of_value(rec.get("level")) or _Level("INFO", 20),
            moment or datetime.datetime.now().astimezone(),
        )
        for key in ("name", "module", "function", "line"):
            base[key] = rec.get(key)
        file_ = rec.get("file")
        if isinstance(file_, dict):
            base["file"] = _File(file_.get("name"), file_.get("path"))
        for key in ("process", "thread"):
            ident = rec.get(key)
            if isinstance(ident, dict):
                base[key] = _Ident(ident.get("id"), ident.get("name"))
        elapsed = rec.get("elapsed")
        if isinstance(elapsed, dict) and isinstance(elapsed.get("seconds"), (int, float)):
            base["elapsed"] = datetime.timedelta(seconds=elapsed["seconds"])
        extra = rec.get("extra")
        base["extra"] = extra if isinstance(extra, dict) else {}
        exc = rec.get("exception")
        if isinstance(exc, dict) and exc.get("type"):
            kind = _exception_type(str(exc["type"]))
            value = exc.get("value")
            # The traceback itself is in `text`, where the encoder finds it.
            base["exception"] = (kind, kind(value) if value is not None else None, None)
        out = _Line(text)
        out.record = base
        return out

    def _from_object(self, obj: dict[str, Any], line: str) -> _Line:
        """Any JSON object: known message/level/time keys used, every other key an extra."""
        extra = dict(obj)
        message = next((extra.pop(k) for k in _MESSAGE_KEYS if k in extra), None)
        level = None
        for key in _LEVEL_KEYS:
            if key in extra:
                level = _level_of_value(extra[key])
                if level is not None:
                    del extra[key]
                    break
        moment = None
        for key in _TIME_KEYS:
            if key in extra:
                moment = _time_of_value(extra[key])
                if moment is not None:
                    del extra[key]
                    break
        if message is None:
            text = line
        elif isinstance(message, str):
            text = message
        else:
            text = json.dumps(message)
        record = self._base(
            text, level or _Level("INFO", 20), moment or datetime.datetime.now().astimezone()
        )
        record["extra"] = extra
        out = _Line(text)
        out.record = record
        return out


class _Progress:
    """A self-rewriting status line on a terminal's stderr, twice a second."""

    def __init__(self, stream: IO[str], status: Callable[[], str]) -> None:
        self._stream = stream
        self._status = status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loguru-vlogs-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._stream.write("\r\x1b[K")
        self._stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._stream.write("\r\x1b[K" + self._status())
            self._stream.flush()


#: After SIGINT/SIGTERM, how long lines already read from stdin may take to reach the queue.
_STOP_GRACE = 0.05


class _Reader:
    """Reads stdin on a daemon thread, so the main thread can stop on a signal at any time.

    Signal handlers only set a flag: raising from them could land inside ``sink.write``
    (which swallows exceptions) or lose a line already read.
    """

    _EOF = None

    def __init__(self, stdin: IO[Any]) -> None:
        self._source: Iterable[Any] = getattr(stdin, "buffer", stdin)
        # Bounded: a fast producer waits on the pipe instead of filling memory.
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="loguru-vlogs-stdin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in self._source:
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                self._queue.put(text.rstrip("\r\n"))
        except (OSError, ValueError) as exc:  # a closed or broken stdin ends the input
            print(f"loguru-vlogs ship: reading stdin failed: {exc}", file=sys.stderr)
        finally:
            self._queue.put(self._EOF)

    def lines(self, stop: Callable[[], bool]) -> Iterator[str]:
        """Lines until EOF; once ``stop()`` is true, only those already read."""
        while True:
            stopping = stop()
            try:
                # Stopping: a short grace lets lines the thread has just read reach the queue.
                line = self._queue.get(timeout=_STOP_GRACE if stopping else 0.1)
            except queue.Empty:
                if stopping:
                    return
                continue
            if line is self._EOF:
                return
            yield line


def _ship(args: argparse.Namespace) -> int:
    overrides = _connection_overrides(args)
    if args.stream_fields is not None:
        overrides["stream_fields"] = args.stream_fields
    if args.service is not None:
        overrides["service"] = args.service
    elif not os.environ.get("VLOGS_SERVICE", "").strip():
        overrides["service"] = "loguru-vlogs-ship"
    if args.field:
        from ._env import sink_kwargs_from_env

        try:
            fields = dict(sink_kwargs_from_env().get("fields", {}))
        except ValueError as exc:
            raise _UsageError(str(exc)) from None
        for item in args.field:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise _UsageError(f"--field should be key=value, not: {item!r}")
            fields[key.strip()] = value
        overrides["fields"] = fields
    if args.spool_dir is not None:
        from ._sink import VLogsSink

        if "spool_dir" not in inspect.signature(VLogsSink).parameters:
            raise _UsageError("--spool-dir: this version of VLogsSink has no disk spool")
        overrides["spool_dir"] = args.spool_dir
    sink = _build_sink(overrides)
    return _pump(sink, _Records(json_lines=args.json), sys.stdin, sys.stderr)


def _pump(sink: Any, records: _Records, stdin: IO[Any], stderr: IO[str]) -> int:
    """Feed every stdin line to ``sink`` until EOF or a signal, then flush and report."""
    count = 0
    signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signals:  # a second signal: the user insists on leaving now
            stderr.write(f"loguru-vlogs ship: {signal.Signals(signum).name} again: aborting\n")
            stderr.flush()
            os._exit(EXIT_FAILED)
        signals.append(signum)

    def status() -> str:
        s = sink.stats()
        return (
            f"{count} lines read, {s['sent']} sent, {s['buffered'] + s['in_flight']} waiting, "
            f"{s['dropped_total']} dropped"
        )

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        progress = _Progress(stderr, status) if _isatty(stderr) else None
        if progress is not None:
            progress.start()
        try:
            for line in _Reader(stdin).lines(stop=lambda: bool(signals)):
                if line.strip():
                    sink.write(records.make(line))
                    count += 1
        finally:
            if progress is not None:
                progress.stop()
        if signals:
            print(
                f"loguru-vlogs ship: {signal.Signals(signals[0]).name}: sending what was read "
                f"(up to {sink.settings.shutdown_timeout:g} s)",
                file=stderr,
                flush=True,
            )
        delivered_all = sink.close()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    stats = sink.stats()
    spooled = stats.get("spool_pending", 0)
    waiting = stats["buffered"] + stats["in_flight"] + spooled
    ok = delivered_all and stats["dropped_total"] == 0 and waiting == 0
    summary = (
        f"loguru-vlogs ship: {count} lines read, {stats['sent']} records sent "
        f"in {stats['requests']} requests"
    )
    if stats.get("spool_sent"):
        summary += f" ({stats['spool_sent']} of them from the spool)"
    if spooled:
        summary += f", {spooled} kept in the spool {sink.settings.spool_dir}"
    if stats["dropped_total"]:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(stats["dropped"].items()) if v)
        summary += f", {stats['dropped_total']} dropped ({reasons})"
    if not ok and stats["last_error"]:
        summary += f"; last error: {stats['last_error']}"
    print(summary, file=stderr, flush=True)
    return EXIT_OK if ok else EXIT_FAILED


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- spool ------------------------------------------------------------------------------------


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} bytes"  # pragma: no cover - the loop always returns


def _open_spool(args: argparse.Namespace) -> Any:
    """The spool named by --spool-dir or VLOGS_SPOOL_DIR, holding every orphaned segment."""
    from ._spool import Spool, SpoolError

    directory = args.spool_dir or os.environ.get("VLOGS_SPOOL_DIR", "").strip()
    if not directory:
        raise _UsageError("give --spool-dir DIR or set VLOGS_SPOOL_DIR")
    if not os.path.isdir(directory):
        raise _UsageError(f"there is no spool directory at {directory!r}")
    try:
        return Spool(directory)
    except (SpoolError, TypeError, ValueError) as exc:
        raise _UsageError(str(exc)) from None


def _spool_summary(spool: Any) -> str:
    stats = spool.stats()
    lines = [
        f"{spool.directory}: {stats['pending_records']} records "
        f"({_size(int(stats['pending_bytes']))}) waiting to be sent"
    ]
    if stats["foreign_bytes"]:
        lines.append(
            f"  and {_size(int(stats['foreign_bytes']))} in segments held by running "
            "processes (they send their own)"
        )
    lost = {k: v for k, v in dict(stats["dropped"]).items() if v}
    if lost or stats["corrupt_unknown"]:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(lost.items()))
        damaged = stats["corrupt_unknown"]
        lines.append(f"  lost: {reasons or 'none counted'}; damaged regions: {damaged}")
    return "\n".join(lines)


def _spool_status(args: argparse.Namespace) -> int:
    with _open_spool(args) as spool:
        print(_spool_summary(spool))
    return EXIT_OK


def _spool_send(args: argparse.Namespace) -> int:
    from ._retry import classify
    from ._transport import Urllib3Transport, make_compressor

    only = (*_CHECK_ARGUMENTS, "stream_fields", "compression", "compression_level")
    overrides = _connection_overrides(args)
    if args.stream_fields is not None:
        overrides["stream_fields"] = args.stream_fields
    settings = _build_sink(overrides, only=only).settings
    encoding, compress = make_compressor(settings.compression, settings.compression_level)
    headers = []
    for endpoint in settings.endpoints:
        request_headers = settings.request_headers(endpoint)
        if encoding:
            request_headers["Content-Encoding"] = encoding
        headers.append(request_headers)
    transport = Urllib3Transport(settings)
    sent = requests = 0
    failure = ""
    with _open_spool(args) as spool:
        total = spool.pending()[0]
        bar = _Bar(sys.stderr, total) if _isatty(sys.stderr) else None
        rescanned = False
        while True:
            entry = spool.peek()
            if entry is None and not rescanned:
                spool.rescan()  # segments whose writer exited meanwhile
                rescanned = True
                continue
            if entry is None:
                break
            body = compress(entry.payload)
            # Each endpoint once, in turn; the first that accepts the batch wins.
            for index, endpoint in enumerate(settings.endpoints):
                outcome = transport.send(endpoint, body, headers[index], settings.timeout)
                requests += 1
                verdict = classify(outcome.status)
                if verdict == "ok":
                    break
                failure = f"{endpoint.display}: " + (
                    f"HTTP {outcome.status} {outcome.body[:200]!r}"
                    if outcome.status is not None
                    else str(outcome.error)
                )
            if verdict != "ok":
                break
            spool.ack(entry)
            sent += entry.records
            if bar is not None:
                bar.update(sent)
        if bar is not None:
            bar.done()
        left = spool.pending()[0]
    transport.close()
    print(f"sent {sent} records in {requests} requests; {left} left in the spool")
    if left:
        print(f"stopped: {failure or 'the server did not accept a batch'}; run it again later")
        return EXIT_FAILED
    return EXIT_OK


class _Bar:
    """A progress bar on a terminal's stderr."""

    def __init__(self, stream: IO[str], total: int) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done < self._total:
            return
        self._last = now
        filled = min(30, 30 * done // self._total)
        self._stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self._total} records")
        self._stream.flush()

    def done(self) -> None:
        self._stream.write("\r\x1b[K")
        self._stream.flush()


def _spool_purge(args: argparse.Namespace) -> int:
    with _open_spool(args) as spool:
        records, nbytes = spool.pending()
        print(_spool_summary(spool))
        if not records:
            print("nothing to delete")
            return EXIT_OK
        if not args.yes:
            if not _isatty(sys.stdin):
                raise _UsageError(
                    "not deleting without confirmation: run it on a terminal or add --yes"
                )
            answer = input(f"delete {records} records ({_size(nbytes)}) for good? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return EXIT_FAILED
        deleted = 0
        while (entry := spool.peek()) is not None:
            spool.ack(entry)  # acknowledged without sending: deleted once its segment is done
            deleted += entry.records
        print(f"deleted {deleted} records")
    return EXIT_OK


# -- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from .testing import serve

    def ready(url: str) -> None:
        print(f"VictoriaLogs-compatible receiver listening on {url} (Ctrl-C to stop)", flush=True)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it
        serve(args.port, args.data, host=args.host, on_ready=ready, retention=None)
    return EXIT_OK


# -- the parser -------------------------------------------------------------------------------


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"it should be an integer, not: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"it should be >= 0, not: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"it should be a number of seconds, not: {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"it should be > 0, not: {text}")
    return value


def _connection_options() -> argparse.ArgumentParser:
    """Options shared by ``check`` and ``ship``; each defaults to its environment variable."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection (defaults from the VLOGS_* environment)")
    group.add_argument(
        "--url",
        help="server base URL, or several separated by commas (env VLOGS_URL)",
    )
    group.add_argument(
        "--account-id", type=_nonnegative_int, help="tenant AccountID (env VLOGS_ACCOUNT_ID)"
    )
    group.add_argument(
        "--project-id", type=_nonnegative_int, help="tenant ProjectID (env VLOGS_PROJECT_ID)"
    )
    group.add_argument(
        "--bearer-token", help="Authorization: Bearer token (env VLOGS_BEARER_TOKEN)"
    )
    group.add_argument("--user", help="basic auth user (env VLOGS_USERNAME)")
    group.add_argument(
        "--password",
        help="basic auth password (env VLOGS_PASSWORD; prefer the variable: "
        "command lines are visible to other users)",
    )
    group.add_argument("--ca-certs", help="CA bundle to verify TLS with (env VLOGS_CA_CERTS)")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates (env VLOGS_VERIFY=0)",
    )
    group.add_argument(
        "--timeout", type=_seconds, help="seconds per request (env VLOGS_TIMEOUT, default 5)"
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="loguru-vlogs",
        description="Ship loguru logs to VictoriaLogs.",
        epilog="Exit codes: 0 success, 1 failure, 2 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="log a realistic burst through VLogsSink and read it back",
        description="Start the built-in receiver (or use --url), log a burst with extras and an "
        "exception through VLogsSink, read the rows back and print what arrived.",
    )
    demo.add_argument("--url", help="a real VictoriaLogs base URL (default: built-in receiver)")
    demo.add_argument("--records", type=int, default=200, help="records to log (default: 200)")
    demo.set_defaults(handler=_demo)

    connection = _connection_options()
    check = commands.add_parser(
        "check",
        parents=[connection],
        help="check that a server accepts and stores records, and say why not",
        description="Resolve the host, GET /health and /insert/ready, send one test record "
        "(POST /insert/jsonline), read it back with /select/logsql/query, and print the "
        "latency of each step, or what is wrong (DNS, refused, TLS, timeout, 4xx with the "
        "server's message, a 200 that stored nothing). Exit code 0 when the server is usable, "
        "1 when not.",
    )
    check.add_argument(
        "--wait",
        type=_seconds,
        default=5.0,
        help="seconds to wait for the test record to become visible (default: 5)",
    )
    check.set_defaults(handler=_check)

    ship = commands.add_parser(
        "ship",
        parents=[connection],
        help="ship stdin lines to VictoriaLogs (e.g. mytool 2>&1 | loguru-vlogs ship)",
        description="Read lines from stdin and send each as a record through a VLogsSink "
        "(same batching, retries and delivery accounting as the sink). A plain line becomes "
        "_msg, with the level of a leading level word (ERROR, [warn], ...) or INFO. With "
        "--json each line is a JSON object: loguru's serialize=True lines map to the sink's "
        "usual fields; other objects give _msg/message/msg, level, time and extra fields. "
        "Stops on EOF, SIGINT or SIGTERM after sending what was read (within "
        "VLOGS_SHUTDOWN_TIMEOUT, default 5 s). Exit code 0 when every line was delivered.",
    )
    ship.add_argument(
        "--field",
        action="append",
        metavar="KEY=VALUE",
        help="a static field on every record (repeatable; adds to VLOGS_FIELDS)",
    )
    ship.add_argument(
        "--stream-fields",
        metavar="A,B",
        help="fields that make the stream (env VLOGS_STREAM_FIELDS, default service,host)",
    )
    ship.add_argument("--json", action="store_true", help="each line is a JSON object")
    ship.add_argument(
        "--service",
        help="the service field (env VLOGS_SERVICE, default loguru-vlogs-ship)",
    )
    ship.add_argument("--spool-dir", help="disk spool directory (env VLOGS_SPOOL_DIR)")
    ship.set_defaults(handler=_ship)

    spool = commands.add_parser(
        "spool",
        help="inspect, send or delete what a disk spool holds",
        description="Work on a spool directory (spool_dir / VLOGS_SPOOL_DIR): segments left by "
        "processes that have exited are taken over (those of running processes are left to "
        "them).",
    )
    spool_commands = spool.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    spool_dir = argparse.ArgumentParser(add_help=False)
    spool_dir.add_argument("--spool-dir", help="the spool directory (env VLOGS_SPOOL_DIR)")
    status = spool_commands.add_parser(
        "status",
        parents=[spool_dir],
        help="what is waiting",
        description="Show how many records and bytes wait in the spool.",
    )
    status.set_defaults(handler=_spool_status)
    send = spool_commands.add_parser(
        "send",
        parents=[spool_dir, connection],
        help="send it now",
        description="Send the waiting batches, oldest first, and delete each once the server "
        "accepted it (a progress bar on a terminal). Stops at the first batch no endpoint "
        "accepts; exit code 0 when the spool is empty afterwards.",
    )
    send.add_argument(
        "--stream-fields",
        metavar="A,B",
        help="stream fields to send with (env VLOGS_STREAM_FIELDS, default service,host): "
        "use the writing application's",
    )
    send.set_defaults(handler=_spool_send)
    purge = spool_commands.add_parser(
        "purge",
        parents=[spool_dir],
        help="delete it after confirmation",
        description="Delete every waiting batch without sending it, after a confirmation "
        "(--yes to skip it, required without a terminal).",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=_spool_purge)

    serve = commands.add_parser(
        "serve",
        help="run the built-in VictoriaLogs-compatible receiver for local development",
        description="Run loguru_vlogs.testing's VictoriaLogs-compatible receiver in the "
        "foreground until Ctrl-C: POST /insert/jsonline, /select/logsql/query, /health. "
        "For development and tests, not for production.",
    )
    serve.add_argument("--port", type=_nonnegative_int, default=9428, help="port (default: 9428)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--data", metavar="FILE", help="also append every stored row to FILE as a JSON line"
    )
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loguru-vlogs`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except _UsageError as exc:
        print(f"loguru-vlogs {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
