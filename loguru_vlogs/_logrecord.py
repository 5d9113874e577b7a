"""Stdlib ``logging.LogRecord`` -> one VictoriaLogs JSON line, in the loguru sink's schema.

The same field names and forms as :mod:`._record` (docs/schema.md): ``_msg`` is the message
(``getMessage()``, or what the handler's own formatter makes), ``_time`` comes from
``created`` (microseconds, the local UTC offset of that moment), ``level``/``level_no`` from
``levelname``/``levelno``, ``logger`` from ``name``, ``function`` from ``funcName``, ``line``
from ``lineno``, ``file`` from ``pathname``, ``process``/``process_name``/``thread``/
``thread_name`` as named, ``elapsed`` from ``relativeCreated`` (seconds), ``exception.*`` from
``exc_info``, plus two fields loguru records do not have: ``task_name`` (``taskName``, Python
3.12+, when the record was made in an asyncio task) and ``stack_info`` (``stack_info=True``).
Every attribute that is not one of ``LogRecord``'s own (what ``extra=`` adds, or a record
factory) is an extra, named, rendered and limited exactly as loguru extras are.

The common record takes a fast path of its own (a flat dict, one ``orjson.dumps``) that shares
the extras' half with the loguru encoder; anything unusual goes through the loguru encoder's
careful path, given a loguru-shaped view of the record. Both give the same bytes
(``tests/test_record_properties.py``).
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from ._record import RecordEncoder, exception_fields, format_time

__all__ = ["STANDARD_ATTRIBUTES", "LogRecordEncoder"]

#: Attributes every ``LogRecord`` has (or that formatting adds: ``message``, ``asctime``): not
#: extras. ``taskName`` is Python 3.12+.
STANDARD_ATTRIBUTES: Final = frozenset(
    {
        "args",
        "asctime",
        "created",
        "exc_info",
        "exc_text",
        "filename",
        "funcName",
        "levelname",
        "levelno",
        "lineno",
        "message",
        "module",
        "msecs",
        "msg",
        "name",
        "pathname",
        "process",
        "processName",
        "relativeCreated",
        "stack_info",
        "taskName",
        "thread",
        "threadName",
    }
) | frozenset(vars(logging.makeLogRecord({})))

#: The built-in fields a LogRecord may add to loguru's, with their cut tier (1: cut like a
#: traceback, 2: like any other text).
RECORD_FIELDS: Final = (("task_name", 2), ("stack_info", 1))

#: UTC offsets change only at whole quarter hours of UTC time (zones' offsets are multiples
#: of 15 minutes and so are their transitions); one lookup per quarter serves every record.
_QUARTER: Final = 900


class _Level(NamedTuple):
    name: str
    no: int


class _Named(NamedTuple):
    id: object
    name: object


class _LocalZones:
    """The local time zone at a Unix time, as a fixed-offset ``timezone``, cached per quarter
    hour (``time.localtime`` costs more than the rest of a record's time)."""

    def __init__(self) -> None:
        # One tuple, replaced whole: threads read it without a lock.
        self._cached: tuple[int, _dt.timezone | None] = (-1, None)

    def at(self, seconds: float) -> _dt.timezone | None:
        """The zone at ``seconds``, or None when its offset has seconds (the server reads
        ``+hh:mm`` only; the careful path writes such a time in UTC)."""
        quarter = int(seconds // _QUARTER)
        cached = self._cached
        if cached[0] == quarter:
            return cached[1]
        local = time.localtime(seconds)
        offset = local.tm_gmtoff
        zone = (
            _dt.timezone(_dt.timedelta(seconds=offset), local.tm_zone) if offset % 60 == 0 else None
        )
        self._cached = (quarter, zone)
        return zone


class LogRecordEncoder(RecordEncoder):
    """Turns ``logging.LogRecord`` objects into VictoriaLogs JSON lines. Never raises."""

    def __init__(self, **options: Any) -> None:
        """``options``: those of :class:`._record.RecordEncoder`."""
        super().__init__(**options, record_fields=RECORD_FIELDS, loguru_records=False)
        self._zones = _LocalZones()
        self._own_attributes = len(vars(logging.makeLogRecord({})))

    def encode_record(
        self,
        record: logging.LogRecord,
        message: str,
        trace: Mapping[str, object] | None = None,
    ) -> bytes:
        """One JSON object (UTF-8 bytes, no newline) inside every server limit.

        ``message`` is ``_msg`` (the caller made it: ``getMessage()`` or its formatter's
        text); ``trace`` as for :meth:`._record.RecordEncoder.encode`.
        """
        exc_info = getattr(record, "exc_info", None)
        exc_fields = exception_fields({"exception": exc_info}, None) if exc_info else None
        extra: dict[str, object] = {}
        try:
            attributes = record.__dict__
            if len(attributes) > self._own_attributes:
                extra = {k: v for k, v in attributes.items() if k not in STANDARD_ATTRIBUTES}
            line = self._encode_fast_record(record, message, extra, exc_fields, trace)
            if line is not None:
                return line
        except Exception:  # noqa: BLE001, S110 - anything odd is the careful path's job
            pass
        return self.encode_careful(self._view(record, message, extra), exc_fields, trace)

    def _encode_fast_record(  # noqa: PLR0911 - one flat run of early exits (hot path)
        self,
        record: logging.LogRecord,
        msg: str,
        extra: dict[str, object],
        exc_fields: list[Any] | None,
        trace: Mapping[str, object] | None,
    ) -> bytes | None:
        if type(msg) is not str or not msg or len(msg) > self.fast_message_chars:
            return None
        created = record.created
        if type(created) is not float:
            return None
        window = self.time_window
        if window is not None:
            now = time.time()
            if not now - window[0] <= created <= now + window[1]:
                return None
        zone = self._zones.at(created)
        if zone is None:
            return None
        moment = _dt.datetime.fromtimestamp(created, zone)
        # orjson writes a datetime ~5x faster than isoformat(), but omits a zero fraction.
        out: dict[str, object] = {
            "_msg": msg,
            "_time": moment if moment.microsecond else format_time(moment),
            "level": record.levelname,
            "level_no": record.levelno,
            "logger": record.name,
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
            "file": record.pathname,
            "process": record.process,
            "process_name": record.processName,
            "thread": record.thread,
            "thread_name": record.threadName,
            "elapsed": round(record.relativeCreated / 1000.0, 6),
        }
        task = getattr(record, "taskName", None)
        if task is not None:
            if type(task) is not str:
                return None
            out["task_name"] = task
        stack = record.stack_info
        if stack is not None:
            if type(stack) is not str:
                return None
            out["stack_info"] = stack
        if exc_fields is not None:
            for field in exc_fields:
                out[field.key] = field.value
        out.update(self.static_values)
        return self.fast_extras(out, extra, trace)

    def _view(
        self, record: logging.LogRecord, message: str, extra: dict[str, object]
    ) -> dict[str, Any]:
        """The record as the careful path reads a loguru record (never raises)."""
        get = record.__dict__.get
        created = get("created")
        moment: object = created
        try:
            if isinstance(created, (int, float)) and not isinstance(created, bool):
                zone = self._zones.at(created)
                moment = (
                    _dt.datetime.fromtimestamp(created, zone)
                    if zone is not None
                    else _dt.datetime.fromtimestamp(created).astimezone()
                )
        except (ValueError, OverflowError, OSError):
            moment = created  # the careful path says it is not a time (original_time)
        relative = get("relativeCreated")
        elapsed = (
            round(relative / 1000.0, 6)
            if isinstance(relative, (int, float)) and not isinstance(relative, bool)
            else relative
        )
        levelname, levelno = get("levelname"), get("levelno")
        return {
            "message": message,
            "time": moment,
            "level": _Level(levelname, levelno) if levelname is not None else None,  # type: ignore[arg-type]
            "name": get("name"),
            "module": get("module"),
            "function": get("funcName"),
            "line": get("lineno"),
            "file": get("pathname"),
            "process": _Named(get("process"), get("processName")),
            "thread": _Named(get("thread"), get("threadName")),
            "elapsed": elapsed,
            "exception": get("exc_info") or None,
            "extra": extra,
            "task_name": get("taskName"),
            "stack_info": get("stack_info"),
        }
