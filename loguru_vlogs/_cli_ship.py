"""``loguru-vlogs ship``: stdin lines -> VictoriaLogs through a ``VLogsSink``.

Each line becomes a loguru-shaped record (plain text with a leading level word, or a JSON
object, loguru's ``serialize=True`` output included) handed to ``VLogsSink.write``, so the
sink's batching, retries and delivery accounting apply unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import IO, Any, NamedTuple

from ._cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    build_sink,
    connection_overrides,
    flag_overrides,
    isatty,
)

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


#: How long a wait for input lasts before the stop flag is looked at again (a signal also
#: ends the wait: Python runs the handler, which sets the flag, then waits again).
_POLL = 0.1
#: Bytes asked for per read.
_CHUNK = 65536


class _Reader:
    """Reads stdin in the main thread, so that a signal stops it at any moment.

    No thread is ever left blocked in ``sys.stdin``: at interpreter shutdown, a daemon thread
    inside stdin's buffered reader holds its lock, and the interpreter aborts ("Fatal Python
    error: _enter_buffered_busy"). On POSIX the file descriptor is read with ``select`` and
    ``os.read``; another stream (in-memory, or on Windows) is iterated line by line.
    Signal handlers only set a flag: raising from them could land inside ``sink.write``
    (which swallows exceptions) or lose a line already read.
    """

    def __init__(self, stdin: IO[Any]) -> None:
        self._stdin = stdin
        self._fd: int | None = None
        if os.name == "posix":
            with contextlib.suppress(AttributeError, OSError, ValueError):
                self._fd = stdin.fileno()

    def lines(self, stop: Callable[[], bool]) -> Iterator[str]:
        """Lines until EOF or until ``stop()`` is true (then the lines already read)."""
        if self._fd is None:
            yield from self._iterate(stop)
        else:
            yield from self._poll(self._fd, stop)

    def _iterate(self, stop: Callable[[], bool]) -> Iterator[str]:
        try:
            for raw in getattr(self._stdin, "buffer", self._stdin):
                yield _text(raw)
                if stop():
                    return
        except (OSError, ValueError) as exc:  # a closed or broken stdin ends the input
            print(f"loguru-vlogs ship: reading stdin failed: {exc}", file=sys.stderr)

    def _poll(self, fd: int, stop: Callable[[], bool]) -> Iterator[str]:
        pending = b""
        while not stop():
            if not select.select([fd], [], [], _POLL)[0]:
                continue
            try:
                chunk = os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:  # a broken stdin ends the input
                print(f"loguru-vlogs ship: reading stdin failed: {exc}", file=sys.stderr)
                break
            if not chunk:
                break
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                yield _text(raw)
        if pending:  # read, though its line break has not come (EOF, or stopped)
            yield _text(pending)


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text.rstrip("\r\n")


def ship(args: argparse.Namespace) -> int:
    overrides = connection_overrides(args)
    overrides.update(
        flag_overrides(
            args, ("stream_fields", "service", "spool_dir", "time_window", "max_message_bytes")
        )
    )
    if "service" not in overrides and not os.environ.get("VLOGS_SERVICE", "").strip():
        overrides["service"] = "loguru-vlogs-ship"
    if args.field:
        from ._env import sink_kwargs_from_env

        try:
            fields = dict(sink_kwargs_from_env().get("fields", {}))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        for item in args.field:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--field should be key=value, not: {item!r}")
            fields[key.strip()] = value
        overrides["fields"] = fields
    sink = build_sink(overrides)
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
        progress = _Progress(stderr, status) if isatty(stderr) else None
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
