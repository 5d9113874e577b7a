"""Loguru record -> one VictoriaLogs JSON line.

Pure and synchronous: the sink calls :meth:`RecordEncoder.encode` from loguru's ``write()`` for
every record, so the common case is one ``orjson.dumps`` of a flat dict (the *fast path*).
Anything unusual -- a value orjson refuses or would silently change, a key the server would
mangle, a line over a server limit -- falls through to the *careful path*, which renders every
value by documented rules, flattens nested mappings itself and fits the line inside the limits
of VictoriaLogs. The rules as users read them are in the README ("Record fields").

VictoriaLogs answers 200 and silently drops a line of 256 KiB or more, a row with more than
1000 fields after flattening, a key longer than 128 bytes (the whole line becomes one ``_msg``)
and rows whose time is outside its retention window. Every line produced here avoids all four.
"""

from __future__ import annotations

import builtins
import codecs
import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import itertools
import linecache
import math
import pathlib
import re
import sys
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, cast

import orjson

__all__ = [
    "BUILTIN_FIELDS",
    "DEFAULT_MAX_FIELDS",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_TIME_WINDOW",
    "MAX_KEY_BYTES",
    "REPAIR_REASONS",
    "RecordEncoder",
]

#: Longest line (bytes, without the newline) the encoder produces. The server drops lines of
#: 256 KiB or more; 1 KiB of margin covers the newline and anything a proxy adds.
DEFAULT_MAX_LINE_BYTES: Final = 255 * 1024
#: Most fields per line. The server drops rows with more than 1000 fields (counted after it
#: flattens nested objects); the margin leaves room for ``extra_fields`` added server-side.
DEFAULT_MAX_FIELDS: Final = 990
#: Longest key in UTF-8 bytes. A longer top-level key makes the server store the whole line as
#: one ``_msg`` string with the ingestion time.
MAX_KEY_BYTES: Final = 128
#: (max age, max future) in seconds of the record times a default server stores
#: (``-retentionPeriod=7d``; rows later than now + 2 days are dropped).
DEFAULT_TIME_WINDOW: Final = (7 * 86400.0, 2 * 86400.0)

#: The record fields in the order they are written (the conditional ones only when present).
BUILTIN_FIELDS: Final = (
    "_msg",
    "_time",
    "level",
    "level_no",
    "logger",
    "module",
    "function",
    "line",
    "file",
    "process",
    "process_name",
    "thread",
    "thread_name",
    "elapsed",
    "message_size",
    "original_time",
    "exception.type",
    "exception.value",
    "exception.traceback",
    "exception.traceback_size",
    "encode_error",
    "extra.overflow",
)

#: Keys of :attr:`RecordEncoder.repairs`; each counts the records that needed that repair.
REPAIR_REASONS: Final = (
    "message_empty",
    "message_truncated",
    "traceback_truncated",
    "value_truncated",
    "fields_overflow",
    "key_shortened",
    "key_sanitized",
    "key_deduplicated",
    "extra_renamed",
    "value_converted",
    "value_unprintable",
    "string_repaired",
    "structure_limited",
    "time_converted",
    "time_adjusted",
    "encode_fallback",
)

_MIN_LINE_BYTES: Final = 8 * 1024
_MIN_FIELDS: Final = 64
#: Nested mappings become dotted keys down to this many key levels (the extra's own key is
#: level 1); a mapping deeper than that is stored as its JSON text.
_FLATTEN_DEPTH: Final = 10
#: Nesting deeper than this (any container) is replaced by ``_TOO_DEEP``.
_MAX_DEPTH: Final = 64
#: Values visited per top-level value and per record; containers stop early past it.
_NODES_PER_VALUE: Final = 20_000
_NODES_PER_RECORD: Final = 100_000
#: Room kept for the size fields (``message_size``, ``exception.traceback_size``) when cutting.
_SIZE_FIELDS_RESERVE: Final = 96
#: Bytes (JSON, quotes included) of the longest cut marker: a value this short is never cut.
_MIN_CUT: Final = 40
#: Longest ``original_time`` text kept (it is not cut with the other values).
_MAX_ORIGINAL_TIME: Final = 256
_MAX_ENCODE_ERROR: Final = 1024

_EMPTY_MESSAGE: Final = "(empty message)"
_EMPTY_KEY: Final = "(empty)"
_CYCLE: Final = "<cycle>"
_TOO_DEEP: Final = "<too deep>"
_OVERFLOW_KEY: Final = "extra.overflow"
_RENAME_PREFIX: Final = "extra."
_FALLBACK_LINE: Final = (
    b'{"_msg":"(unencodable record)","level":"ERROR","encode_error":"fallback failed"}'
)

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NAMES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ANSI_RE: Final = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_TB_HEADER: Final = "Traceback (most recent call last"
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_UTC: Final = _dt.timezone.utc
_MINUTE: Final = _dt.timedelta(minutes=1)

# The classes loguru puts in record["time"]: its datetime subclass, or plain after patch().
try:
    from loguru._datetime import datetime as _loguru_datetime

    _FAST_TIME_TYPES: frozenset[type] = frozenset({_dt.datetime, _loguru_datetime})
except ImportError:  # pragma: no cover - loguru is a dependency; the module stays usable
    _FAST_TIME_TYPES = frozenset({_dt.datetime})

#: datetime(state, tzinfo): the unpickling constructor (10-byte state from __reduce__()).
_from_state = cast(Callable[[bytes, object], _dt.datetime], _dt.datetime)

#: Longest list / dict the fast path renders itself (longer ones are rare: careful path).
_FAST_ITEMS: Final = 32
_PLAIN_ITEM_TYPES: Final = frozenset({str, int, bool, type(None)})


def _plain_items(items: list[Any] | tuple[Any, ...]) -> bool:
    """True for a short list of JSON scalars orjson writes exactly as the careful path would."""
    if len(items) > _FAST_ITEMS:
        return False
    for item in items:
        kind = type(item)
        if kind is float:
            if item - item != 0.0:  # NaN / infinity: orjson would write null
                return False
        elif kind not in _PLAIN_ITEM_TYPES:
            return False
    return True


# One-level classification of a value by the careful path.
_SCALAR: Final = 0
_MAP: Final = 1
_SEQ: Final = 2
_SET: Final = 3


class _Cut:
    """A string already cut inside a JSON text tree (orjson writes it through the default)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _json_default(obj: object) -> object:
    if isinstance(obj, _Cut):
        return obj.text
    raise TypeError  # pragma: no cover - trees only hold JSON types and _Cut


class _Field:
    """One output field.

    tier -1: conditional (omitted while None); 0: never cut; 1: message-like (``_msg``,
    ``exception.traceback``), keeps at least half the room; 2: any other text.
    """

    __slots__ = ("key", "tier", "value")

    def __init__(self, key: str, value: object, tier: int = 0) -> None:
        self.key = key
        self.value = value
        self.tier = tier


class _Ctx:
    """Per-record state of the careful path."""

    __slots__ = ("max_depth", "node_limit", "nodes", "reasons", "stack", "text_chars")

    def __init__(self, reasons: set[str], text_chars: int, max_depth: int) -> None:
        self.reasons = reasons
        self.nodes = 0
        self.node_limit = _NODES_PER_RECORD
        self.text_chars = text_chars
        self.max_depth = max_depth
        self.stack: set[int] = set()


class RecordEncoder:
    """Turns loguru records into VictoriaLogs JSON lines (bytes, no newline). Never raises."""

    def __init__(
        self,
        *,
        static_fields: Mapping[str, object] = {},
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_message_bytes: int | None = None,
        time_window: tuple[float, float] | None = DEFAULT_TIME_WINDOW,
    ) -> None:
        _check_int("max_line_bytes", max_line_bytes, _MIN_LINE_BYTES, 256 * 1024 - 1)
        _check_int("max_fields", max_fields, _MIN_FIELDS, 1000)
        if max_message_bytes is not None:
            _check_int("max_message_bytes", max_message_bytes, 256, max_line_bytes)
        if time_window is not None and not (
            isinstance(time_window, tuple)
            and len(time_window) == 2
            and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1e12
                for x in time_window
            )
        ):
            raise ValueError(
                "Invalid time_window, it should be None or a (max_age, max_future) tuple of "
                f"non-negative seconds, not: {time_window!r}"
            )
        if not isinstance(static_fields, Mapping):
            raise TypeError(
                "Invalid static_fields, it should be a mapping of str to values, not: "
                f"{type(static_fields).__name__}"
            )
        #: Records repaired, by reason (see REPAIR_REASONS). Read by the sink's stats().
        self.repairs: dict[str, int] = dict.fromkeys(REPAIR_REASONS, 0)
        self._max_line = max_line_bytes
        self._max_fields = max_fields
        self._max_message = max_message_bytes
        self._window = (float(time_window[0]), float(time_window[1])) if time_window else None

        builtin_paths = frozenset(BUILTIN_FIELDS)
        ctx = _Ctx(set(), max_line_bytes, _MAX_DEPTH)
        statics: list[_Field] = []
        for key, value in static_fields.items():
            _check_static_key(key, builtin_paths)
            self._flatten(key, value, 1, ctx, statics)
        keys = [f.key for f in statics]
        for key in keys:
            if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES or key in builtin_paths:
                raise ValueError(
                    f"Invalid static_fields, a flattened key is longer than {MAX_KEY_BYTES} "
                    f"bytes or names a built-in field: {key!r}"
                )
        if len(set(keys)) != len(keys):
            raise ValueError(f"Invalid static_fields, flattened keys collide: {keys!r}")
        if len(BUILTIN_FIELDS) + len(statics) + 8 > max_fields:
            raise ValueError(
                f"Invalid static_fields, their {len(statics)} fields leave no room for extras "
                f"within max_fields={max_fields}"
            )
        for field in statics:
            field.tier = 2 if isinstance(field.value, str) else 0
        self._statics = statics
        self._static_dict = {f.key: f.value for f in statics}
        if len(orjson.dumps(self._static_dict)) > max_line_bytes // 4:
            raise ValueError(
                "Invalid static_fields, their JSON text should stay under a quarter of "
                f"max_line_bytes ({max_line_bytes // 4} bytes)"
            )
        # The names an extra may not use as is: the built-in and static fields and their dotted
        # prefixes (an extra "exception" holding {"type": ...} would fake exception.type).
        self._fixed_paths = builtin_paths | frozenset(keys)
        reserved = set(self._fixed_paths)
        for path in self._fixed_paths:
            parts = path.split(".")
            reserved.update(".".join(parts[:i]) for i in range(1, len(parts)))
        reserved.add("extra")
        self._reserved = frozenset(reserved)
        # Caches of the fast path, all bounded: extra keys known to be safe as they are,
        # tzinfo objects with whole-minute offsets, calendar days inside the time window.
        self._ok_keys: set[str] = set()
        self._ok_paths: set[str] = set()
        self._good_tz: set[object] = set()
        self._ok_days: dict[bytes, float] = {}
        # The built-in keys then the static fields, in line order: a record without an
        # exception copies it and sets the built-ins in place (order kept, ~0.1 us cheaper
        # than building the dict and then adding the statics).
        self._template: dict[str, object] = dict.fromkeys(BUILTIN_FIELDS[:14])
        self._template.update(self._static_dict)
        # 14 built-ins + 3 exception fields + statics are all the fast path ever writes.
        self._fast_max_extras = max_fields - 17 - len(statics)
        self._fast_msg_chars = (
            max_line_bytes if max_message_bytes is None else max_message_bytes // 4
        )

    # ------------------------------------------------------------------ entry point

    def encode(self, record: Mapping[str, Any], text: str | None = None) -> bytes:
        """Return one JSON object (UTF-8 bytes, no newline) inside every server limit."""
        exc_fields: list[_Field] | None = None
        try:
            if record["exception"] is not None:
                exc_fields = _exception_fields(record, text)
            line = self._encode_fast(record, exc_fields)
            if line is not None:
                return line
        except Exception:  # noqa: BLE001, S110 - anything odd is the careful path's job
            pass
        if exc_fields is None:
            exc_fields = _exception_fields(record, text)
        error: Exception | None = None
        for max_depth in (_MAX_DEPTH, 8):
            try:
                return self._encode_careful(record, exc_fields, max_depth)
            except RecursionError as exc:  # logged from deep recursion: retry shallower
                error = exc
            except Exception as exc:  # noqa: BLE001 - never raise into loguru
                error = exc
                break
        return self._encode_fallback(record, error)

    # ------------------------------------------------------------------ fast path

    def _encode_fast(  # noqa: PLR0911 - one flat run of early exits (hot path)
        self, record: Mapping[str, Any], exc_fields: list[_Field] | None
    ) -> bytes | None:
        msg = record["message"]
        if type(msg) is not str or not msg or len(msg) > self._fast_msg_chars:
            return None
        moment = record["time"]
        if type(moment) not in _FAST_TIME_TYPES:
            return None
        # __reduce__ gives the 10-byte pickle state and the tzinfo; a plain datetime rebuilt
        # from them is formatted by orjson about 5x faster than isoformat() (orjson refuses
        # loguru's datetime subclass).
        state = moment.__reduce__()[1]
        if len(state) != 2:  # naive: the careful path adds the local zone
            return None
        raw, tz = state
        if tz not in self._good_tz and not self._learn_tz(tz):
            return None
        day = raw[:4]
        if time.time() > self._ok_days.get(day, 0.0) and not self._in_window(moment, day):
            return None
        # orjson omits a zero fraction; the schema has always six digits.
        stamp = _from_state(raw, tz) if moment.microsecond else _format_time(moment)
        level = record["level"]
        process = record["process"]
        thread = record["thread"]
        if exc_fields is None:
            out = self._template.copy()
            out["_msg"] = msg
            out["_time"] = stamp
            out["level"] = level.name
            out["level_no"] = level.no
            out["logger"] = record["name"]
            out["module"] = record["module"]
            out["function"] = record["function"]
            out["line"] = record["line"]
            out["file"] = record["file"].path
            out["process"] = process.id
            out["process_name"] = process.name
            out["thread"] = thread.id
            out["thread_name"] = thread.name
            out["elapsed"] = record["elapsed"].total_seconds()
        else:
            out = {
                "_msg": msg,
                "_time": stamp,
                "level": level.name,
                "level_no": level.no,
                "logger": record["name"],
                "module": record["module"],
                "function": record["function"],
                "line": record["line"],
                "file": record["file"].path,
                "process": process.id,
                "process_name": process.name,
                "thread": thread.id,
                "thread_name": thread.name,
                "elapsed": record["elapsed"].total_seconds(),
            }
            for field in exc_fields:
                out[field.key] = field.value
            out.update(self._static_dict)
        extra = record["extra"]
        if type(extra) is not dict or len(extra) > self._fast_max_extras:
            return None
        ok_keys = self._ok_keys
        flattened = False
        for key, value in extra.items():
            if key not in ok_keys and not self._learn_key(key):
                return None
            kind = type(value)
            if kind is str or kind is int or kind is bool:
                out[key] = value
            elif kind is float:
                if value - value != 0.0:  # NaN or infinity: orjson would write null
                    return None
                out[key] = value
            elif value is None:
                out[key] = "null"  # the server drops null: keep the value visible
            elif kind is list or kind is tuple:
                if not _plain_items(value):
                    return None
                out[key] = orjson.dumps(value).decode("utf-8")
            elif kind is dict:
                # One level of str keys and plain values, as the careful path flattens it.
                if not self._flat_dict(key, value, out):
                    return None
                flattened = True
            else:
                return None
        if flattened:
            # A dotted extra key ("user.id") could meet a flattened one: the careful path
            # dedups. Without flattening, _fast_max_extras already bounds the field count.
            if any("." in key for key in extra):
                return None
            if len(out) > self._max_fields:
                return None
        # No default=: an unknown type, a >64-bit int or a lone surrogate raises here.
        line = orjson.dumps(out)
        if len(line) > self._max_line:
            return None
        return line

    def _flat_dict(self, key: str, mapping: dict[Any, Any], out: dict[str, object]) -> bool:
        if not mapping or len(mapping) > _FAST_ITEMS:
            return False
        ok_paths = self._ok_paths
        for sub, value in mapping.items():
            if type(sub) is not str:
                return False
            path = f"{key}.{sub}"
            if path not in ok_paths:
                if not sub or "." in sub or not self._plain_key(path):
                    return False
                if len(ok_paths) < 4096:
                    ok_paths.add(path)
            kind = type(value)
            if kind is str or kind is int or kind is bool:
                out[path] = value
            elif kind is float:
                if value - value != 0.0:
                    return False
                out[path] = value
            elif value is None:
                out[path] = "null"
            elif (kind is list or kind is tuple) and _plain_items(value):
                out[path] = orjson.dumps(value).decode("utf-8")
            else:
                return False
        return True

    def _learn_tz(self, tz: object) -> bool:
        # orjson silently drops the seconds of an offset such as LMT's +00:09:21.
        if type(tz) is not _dt.timezone or tz.utcoffset(None) % _MINUTE:
            return False
        if len(self._good_tz) < 64:
            self._good_tz.add(tz)
        return True

    def _learn_key(self, key: object) -> bool:
        if type(key) is not str or not self._plain_key(key):
            return False
        if len(self._ok_keys) < 4096:
            self._ok_keys.add(key)
        return True

    def _plain_key(self, key: str) -> bool:
        """True when an extra's key can be sent as is: not reserved, short, clean."""
        if not key or key[0] == "_" or key in self._reserved or key.startswith(_RENAME_PREFIX):
            return False
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            return False
        return size <= MAX_KEY_BYTES and _CONTROL_RE.search(key) is None

    def _in_window(self, moment: _dt.datetime, day: bytes) -> bool:
        if self._window is None:  # every time is sent as it is: remember the day for good
            self._remember_day(day, math.inf)
            return True
        now = time.time()
        max_age, max_future = self._window
        if not now - max_age <= moment.timestamp() <= now + max_future:
            return False
        # Remember the calendar day when all of it, in any UTC offset (< 24 h), is inside the
        # window: later records of that day skip timestamp() (0.4 us) until the expiry.
        year, month, mday = int.from_bytes(day[:2], "big"), day[2] & 0x7F, day[3]
        midnight = _dt.datetime(year, month, mday, tzinfo=_UTC).timestamp()
        first, last = midnight - 86400.0, midnight + 2 * 86400.0
        if last <= now + max_future and now <= first + max_age:
            self._remember_day(day, first + max_age)
        return True

    def _remember_day(self, day: bytes, expiry: float) -> None:
        if len(self._ok_days) >= 32:
            self._ok_days.clear()
        self._ok_days[day] = expiry

    # ------------------------------------------------------------------ careful path

    def _encode_careful(
        self, record: Mapping[str, Any], exc_fields: list[_Field] | None, max_depth: int
    ) -> bytes:
        reasons: set[str] = set()
        ctx = _Ctx(reasons, 2 * self._max_line, max_depth)
        get = record.get

        raw_msg = get("message")
        msg = raw_msg if type(raw_msg) is str else self._leaf_text(raw_msg, ctx)
        msg = self._clean_str(msg, ctx)
        msg_field = _Field("_msg", msg, 1)
        size_field = _Field("message_size", None, -1)
        sources: dict[int, tuple[str, int]] = {}
        if not msg:
            # The server would store "missing _msg field; see https://docs...".
            msg_field.value = _EMPTY_MESSAGE
            reasons.add("message_empty")
        elif self._max_message is not None and len(msg) * 4 > self._max_message:
            size = _utf8_len(msg)
            if size > self._max_message:
                sources[id(msg_field)] = (msg, size)
                msg_field.value = _cut_to(msg, size, self._max_message)
                size_field.value = size
                reasons.add("message_truncated")

        stamp, original = self._time_fields(get("time"), ctx)
        fields = [msg_field, _Field("_time", stamp)]
        level = get("level")
        process = get("process")
        thread = get("thread")
        elapsed = get("elapsed")
        file = get("file")
        builtins: tuple[tuple[str, object], ...] = (
            ("level", getattr(level, "name", level)),
            ("level_no", getattr(level, "no", None)),
            ("logger", get("name")),
            ("module", get("module")),
            ("function", get("function")),
            ("line", get("line")),
            ("file", getattr(file, "path", file)),
            ("process", getattr(process, "id", process)),
            ("process_name", getattr(process, "name", None)),
            ("thread", getattr(thread, "id", thread)),
            ("thread_name", getattr(thread, "name", None)),
            (
                "elapsed",
                elapsed.total_seconds() if isinstance(elapsed, _dt.timedelta) else elapsed,
            ),
        )
        for key, value in builtins:
            # None stays JSON null (the server drops it), exactly as on the fast path.
            rendered = None if value is None else self._leaf(value, 1, ctx)
            fields.append(_Field(key, rendered, 2 if isinstance(rendered, str) else 0))
        fields.append(size_field)
        if original is not None:
            fields.append(_Field("original_time", original))
        tb_size_field = _Field("exception.traceback_size", None, -1)
        size_fields = {id(msg_field): size_field}
        if exc_fields is not None:
            for field in exc_fields:
                copy = _Field(field.key, field.value, field.tier)
                fields.append(copy)
                if field.key == "exception.traceback":
                    size_fields[id(copy)] = tb_size_field
            fields.append(tb_size_field)
        fields.extend(_Field(f.key, f.value, f.tier) for f in self._statics)

        taken = set(self._fixed_paths)
        extras: list[_Field] = []
        extra = get("extra")
        items = _snapshot_items(extra) if isinstance(extra, Mapping) else None
        if items is None:  # not a mapping (a patch() put something else there)
            items = [] if extra is None else [("extra", extra)]
        for raw_key, raw_value in items:
            name, changed = _sanitize_component(self._key_text(raw_key, ctx))
            if changed:
                reasons.add("key_sanitized")
            if name[0] == "_" or name in self._reserved or name.startswith(_RENAME_PREFIX):
                name = _RENAME_PREFIX + name
                reasons.add("extra_renamed")
            ctx.node_limit = min(_NODES_PER_RECORD, ctx.nodes + _NODES_PER_VALUE)
            start = len(extras)
            self._flatten(name, raw_value, 1, ctx, extras)
            for field in extras[start:]:
                field.key = _claim(field.key, taken, reasons)
                if isinstance(field.value, str):
                    field.tier = 2

        room = self._max_fields - len(fields)
        overflow: list[_Field] = []
        if len(extras) > room:
            overflow = extras[room - 1 :]
            del extras[room - 1 :]
            reasons.add("fields_overflow")
        line = self._fit(
            fields=fields,
            extras=extras,
            overflow=overflow,
            size_fields=size_fields,
            sources=sources,
            ctx=ctx,
        )
        for reason in reasons:
            self.repairs[reason] = self.repairs.get(reason, 0) + 1
        return line

    def _time_fields(self, moment: object, ctx: _Ctx) -> tuple[str, str | None]:
        """``_time`` (RFC 3339, explicit offset, 6 fraction digits) and ``original_time``."""
        reasons = ctx.reasons
        stamp: str | None = None
        seconds = 0.0
        try:
            value = _to_aware(moment, reasons)
            if value is not None:
                value = _whole_minute_offset(value, reasons)
                stamp = _format_time(value)
                seconds = value.timestamp()
        except (ValueError, OverflowError, OSError, TypeError):
            stamp = None
        now = time.time()
        if stamp is None:
            original = self._leaf_text(moment, ctx)
            original = _cut_to(original, _utf8_len(original), _MAX_ORIGINAL_TIME)
        elif self._window is None or now - self._window[0] <= seconds <= now + self._window[1]:
            return stamp, None
        else:
            original = stamp
        reasons.add("time_adjusted")
        local = _dt.datetime.fromtimestamp(now, _UTC).astimezone()
        return _format_time(_whole_minute_offset(local, reasons)), original

    # ------------------------------------------------------------------ value rendering

    def _classify(self, value: object, ctx: _Ctx) -> tuple[int, Any]:  # noqa: PLR0911 - dispatch
        """One level of the value rules: (_SCALAR, JSON scalar) or (kind, container)."""
        kind = type(value)
        if kind is str:
            return _SCALAR, self._clean_str(cast(str, value), ctx)
        if kind is bool or value is None:
            return _SCALAR, value
        if kind is int:
            return _SCALAR, self._int(cast(int, value), ctx)
        if kind is float:
            return _SCALAR, self._float(cast(float, value), ctx)
        if kind is dict:
            return _MAP, value
        if kind is list or kind is tuple:
            return _SEQ, value
        if isinstance(value, enum.Enum):  # before int/str: IntEnum and StrEnum are both
            ctx.reasons.add("value_converted")
            inner = _safe_attr(value, "value")
            if isinstance(inner, enum.Enum):
                return _SCALAR, self._object_text(inner, ctx)
            return self._classify(inner, ctx)
        if isinstance(value, str):
            return _SCALAR, self._clean_str(str.__str__(value), ctx)
        if isinstance(value, int):
            return _SCALAR, self._int(int.__int__(value), ctx)
        if isinstance(value, float):
            return _SCALAR, self._float(float.__float__(value), ctx)
        ctx.reasons.add("value_converted")
        module = getattr(kind, "__module__", None)
        if isinstance(module, str) and (module == "numpy" or module.startswith("numpy.")):
            return self._numpy(value, ctx)
        if isinstance(value, (bytes, bytearray, memoryview)):
            # Text-like bytes stay readable; invalid UTF-8 shows as \xNN (nothing lost). The
            # whole buffer is decoded so a cut's marker counts what was really removed.
            try:
                return _SCALAR, codecs.decode(value, "utf-8", "backslashreplace")
            except BufferError:  # a non-contiguous memoryview: copy it first
                return _SCALAR, bytes(value).decode("utf-8", "backslashreplace")
        if isinstance(value, Mapping):
            return _MAP, value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = dataclasses.fields(value)
            return _MAP, {f.name: _safe_attr(value, f.name) for f in fields}
        if isinstance(value, _dt.datetime):
            return _SCALAR, _dt.datetime.isoformat(value)
        if isinstance(value, (_dt.date, _dt.time)):
            return _SCALAR, value.isoformat()
        if isinstance(value, _dt.timedelta):
            return _SCALAR, value.total_seconds()
        if isinstance(value, (decimal.Decimal, uuid.UUID, pathlib.PurePath, complex)):
            return _SCALAR, self._clean_str(str(value), ctx)
        if isinstance(value, (list, tuple, deque)):
            return _SEQ, value
        if isinstance(value, (set, frozenset)):
            return _SET, value
        if isinstance(value, BaseException):
            name = _qualname(kind)
            text = _safe_text(value)
            return _SCALAR, self._clean_str(f"{name}: {text}" if text else name, ctx)
        return _SCALAR, self._object_text(value, ctx)

    def _numpy(self, value: Any, ctx: _Ctx) -> tuple[int, Any]:
        # Duck-typed, numpy is never imported: scalars have .item(), arrays .tolist().
        if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
            item = value.item()
            if type(item).__module__ == "numpy":  # pragma: no cover - defensive
                return _SCALAR, self._object_text(value, ctx)
            return self._classify(item, ctx)
        size = getattr(value, "size", None)
        if (
            isinstance(size, int)
            and size <= _NODES_PER_VALUE
            and callable(getattr(value, "tolist", None))
        ):
            return _SEQ, value.tolist()
        return _SCALAR, self._object_text(value, ctx)

    def _int(self, value: int, ctx: _Ctx) -> int | str:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        ctx.reasons.add("value_converted")
        try:
            return str(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            return hex(value)

    def _float(self, value: float, ctx: _Ctx) -> float | str:
        if value - value == 0.0:
            return value
        ctx.reasons.add("value_converted")
        return repr(value)  # "nan", "inf", "-inf"

    def _clean_str(self, text: str, ctx: _Ctx) -> str:
        if text.isascii():
            return text
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            ctx.reasons.add("string_repaired")
            return _repair(text)
        return text

    def _object_text(self, value: object, ctx: _Ctx) -> str:
        kind = type(value)
        if kind.__str__ is object.__str__ and kind.__repr__ is object.__repr__:
            # The default repr carries a memory address: without it equal objects render
            # alike from one run to the next.
            return f"<{_qualname(kind)} object>"
        text = _safe_text(value, None)
        if text is None:
            ctx.reasons.add("value_unprintable")
            return f"<unprintable {_qualname(kind)} object>"
        return self._clean_str(text, ctx)

    def _key_text(self, key: object, ctx: _Ctx) -> str:
        if type(key) is str:
            return self._clean_str(key, ctx)
        ctx.reasons.add("key_sanitized")
        return self._leaf_text(key, ctx)

    def _leaf_text(self, value: object, ctx: _Ctx) -> str:
        leaf = self._leaf(value, _FLATTEN_DEPTH, ctx)
        return leaf if isinstance(leaf, str) else orjson.dumps(leaf).decode("utf-8")

    def _leaf(self, value: object, depth: int, ctx: _Ctx) -> object:
        """A value that is not flattened: a JSON scalar; a container as its JSON text."""
        kind, payload = self._classify(value, ctx)
        if kind == _SCALAR:
            return "null" if payload is None else payload
        tree = self._tree_of(kind, payload, id(value), depth, ctx)
        if isinstance(tree, (dict, list)):
            return orjson.dumps(tree, default=_json_default).decode("utf-8")
        return tree

    def _tree(self, value: object, depth: int, ctx: _Ctx) -> object:
        """A JSON-able tree (dicts, lists, scalars, _Cut) of a value written as JSON text."""
        ctx.nodes += 1
        kind, payload = self._classify(value, ctx)
        if kind == _SCALAR:
            return self._text_str(payload, ctx) if isinstance(payload, str) else payload
        return self._tree_of(kind, payload, id(value), depth, ctx)

    def _tree_of(self, kind: int, payload: Any, ident: int, depth: int, ctx: _Ctx) -> object:
        if depth >= ctx.max_depth:
            ctx.reasons.add("structure_limited")
            return _TOO_DEEP
        if ident in ctx.stack:
            ctx.reasons.add("structure_limited")
            return _CYCLE
        ctx.stack.add(ident)
        try:
            if kind == _MAP:
                return self._tree_map(payload, depth, ctx)
            items, more = _take(payload, ctx)
            children = [self._tree(item, depth + 1, ctx) for item in items]
            if kind == _SET:
                children = _sorted_set(items, children)
            if more:
                children.append(f"…[+{more} more]")
            return children
        finally:
            ctx.stack.discard(ident)

    def _tree_map(self, mapping: object, depth: int, ctx: _Ctx) -> object:
        pairs = _snapshot_items(mapping)
        if pairs is None:
            return self._object_text(mapping, ctx)
        out: dict[str, object] = {}
        for index, (key, child) in enumerate(pairs):
            if ctx.nodes >= ctx.node_limit:
                ctx.reasons.add("structure_limited")
                out[_unique("…", out)] = f"[+{len(pairs) - index} more]"
                break
            # Non-str keys rendered as text may clash ({1: ..., "1": ...}): keep both.
            out[_unique(self._key_text(key, ctx), out)] = self._tree(child, depth + 1, ctx)
        return out

    def _text_str(self, text: str, ctx: _Ctx) -> str | _Cut:
        """A string inside JSON text, charged to the record's text budget (bounds the work)."""
        budget = ctx.text_chars
        if len(text) <= budget:
            ctx.text_chars = budget - len(text)
            return text
        keep = max(budget, 32)
        ctx.text_chars = max(0, budget - keep)
        ctx.reasons.add("value_truncated")
        head = text[:keep]
        return _Cut(head + _marker(_utf8_len(text) - _utf8_len(head)))

    def _flatten(self, path: str, value: object, level: int, ctx: _Ctx, out: list[_Field]) -> None:
        """Append the fields of ``value`` stored at ``path``; mappings become dotted keys."""
        ctx.nodes += 1
        kind, payload = self._classify(value, ctx)
        if kind == _SCALAR:
            out.append(_Field(path, "null" if payload is None else payload))
            return
        if kind != _MAP or level >= _FLATTEN_DEPTH:
            tree = self._tree_of(kind, payload, id(value), level, ctx)
            if isinstance(tree, (dict, list)):
                tree = orjson.dumps(tree, default=_json_default).decode("utf-8")
            out.append(_Field(path, tree))
            return
        ident = id(value)
        if ident in ctx.stack:
            ctx.reasons.add("structure_limited")
            out.append(_Field(path, _CYCLE))
            return
        pairs = _snapshot_items(payload)
        if pairs is None:
            out.append(_Field(path, self._object_text(value, ctx)))
            return
        if not pairs:
            out.append(_Field(path, "{}"))  # the server drops {}: keep it visible
            return
        ctx.stack.add(ident)
        try:
            for index, (key, child) in enumerate(pairs):
                if ctx.nodes >= ctx.node_limit:
                    ctx.reasons.add("structure_limited")
                    out.append(_Field(f"{path}.…", f"[+{len(pairs) - index} more]"))
                    break
                name, changed = _sanitize_component(self._key_text(key, ctx))
                if changed:
                    ctx.reasons.add("key_sanitized")
                self._flatten(f"{path}.{name}", child, level + 1, ctx, out)
        finally:
            ctx.stack.discard(ident)

    # ------------------------------------------------------------------ limits

    def _fit(
        self,
        *,
        fields: list[_Field],
        extras: list[_Field],
        overflow: list[_Field],
        size_fields: dict[int, _Field],
        sources: dict[int, tuple[str, int]],
        ctx: _Ctx,
    ) -> bytes:
        """Assemble the line; when too long, cut the biggest values first until it fits."""
        limit = self._max_line - _SIZE_FIELDS_RESERVE
        overshoot = 0
        overflow_field: _Field | None = None
        for _attempt in range(8):
            line_fields = fields + extras
            if overflow:
                if overflow_field is None:
                    overflow_field = _Field(_OVERFLOW_KEY, self._overflow_text(overflow, ctx), 2)
                line_fields.append(overflow_field)
            # Serializing a line that is sure to be too long can cost 100s of ms (1000 values
            # of 100 KB): a lower bound from the string lengths skips that.
            size = _size_lower_bound(line_fields)
            if size <= self._max_line:
                line = _assemble(line_fields)
                if len(line) <= self._max_line:
                    return line
                size = len(line)
            if overshoot:  # a cut pass ran and the line is still long: leave more room
                limit -= size - self._max_line + 64
            plan = _measure(line_fields)
            deficit = plan.fixed - limit
            if deficit > 0:
                # Keys and numbers alone do not fit (hundreds of long keys): move extras from
                # the end into the overflow text, which can be cut.
                if not extras:
                    raise ValueError("the built-in fields alone exceed max_line_bytes")
                freed = 0
                while extras and freed < deficit + 2 * _MIN_CUT:
                    moved = extras.pop()
                    freed += plan.cost.get(id(moved), 0)
                    overflow.insert(0, moved)
                if overflow_field is not None:  # rebuilt below with the moved fields
                    sources.pop(id(overflow_field), None)
                    overflow_field = None
                ctx.reasons.add("fields_overflow")
                continue
            room = limit - plan.fixed
            need_a = sum(size - _MIN_CUT for _f, size in plan.tier_a)
            need_b = sum(size - _MIN_CUT for _f, size in plan.tier_b)
            # Message-like text keeps at least half the room when it needs it; either group
            # takes what the other does not need.
            share_a = min(need_a, max(room // 2, room - need_b))
            for group, share in ((plan.tier_a, share_a), (plan.tier_b, room - share_a)):
                cap = _water_level([size for _f, size in group], share)
                for field, size in group:
                    if size > cap:
                        self._cut_field(field, cap, size_fields, sources, ctx)
            overshoot = 1
        raise ValueError("could not fit the record into max_line_bytes")

    def _cut_field(
        self,
        field: _Field,
        target: int,
        size_fields: dict[int, _Field],
        sources: dict[int, tuple[str, int]],
        ctx: _Ctx,
    ) -> None:
        source = sources.get(id(field))
        if source is None:
            text = cast(str, field.value)
            source = sources[id(field)] = (text, _utf8_len(text))
        field.value = _cut_to(source[0], source[1], target - 2, json=True)
        size_field = size_fields.get(id(field))
        if size_field is not None:
            size_field.value = source[1]
        if field.key == "_msg":
            ctx.reasons.add("message_truncated")
        elif field.key == "exception.traceback":
            ctx.reasons.add("traceback_truncated")
        else:
            ctx.reasons.add("value_truncated")

    def _overflow_text(self, overflow: list[_Field], ctx: _Ctx) -> str:
        budget = _Ctx(ctx.reasons, 2 * self._max_line, ctx.max_depth)
        data = {
            f.key: self._text_str(f.value, budget) if isinstance(f.value, str) else f.value
            for f in overflow
        }
        return orjson.dumps(data, default=_json_default).decode("utf-8")

    # ------------------------------------------------------------------ last resort

    def _encode_fallback(self, record: object, error: Exception | None) -> bytes:
        self.repairs["encode_fallback"] = self.repairs.get("encode_fallback", 0) + 1
        try:
            get = record.get if isinstance(record, Mapping) else (lambda _key: None)
            msg = get("message")
            text = _repair(msg if isinstance(msg, str) else _safe_text(msg))
            text = _cut_to(text, _utf8_len(text), self._max_line // 2) or _EMPTY_MESSAGE
            level_name = getattr(get("level"), "name", None)
            detail = _repair(f"{_qualname(type(error))}: {_safe_text(error)}")
            out = {
                "_msg": text,
                "_time": _format_time(_dt.datetime.fromtimestamp(time.time(), _UTC)),
                "level": _repair(level_name) if isinstance(level_name, str) else "ERROR",
                "encode_error": _cut_to(detail, _utf8_len(detail), _MAX_ENCODE_ERROR),
            }
            line = orjson.dumps(out)
            if len(line) <= self._max_line:
                return line
        except Exception:  # noqa: BLE001, S110 - the constant line below cannot fail
            pass
        return _FALLBACK_LINE


# ---------------------------------------------------------------------- exception fields


def _exception_fields(record: Mapping[str, Any], text: str | None) -> list[_Field] | None:
    """exception.type / .value / .traceback, or None without an exception. Never raises."""
    try:
        exc = record.get("exception")
        if exc is None:
            return None
        try:
            etype, value, tb = exc
        except Exception:  # noqa: BLE001 - a patch() put something else there
            etype, value, tb = type(exc), exc, None
        if etype is None and value is None and tb is None:
            # logger.opt(exception=True) outside an except block: nothing to report.
            return None
        if isinstance(etype, type):
            type_name = _qualname(etype)
        elif value is not None:
            type_name = _qualname(type(value))
        else:
            type_name = _safe_text(etype)
        tb_text = _format_traceback(etype, value, tb, type_name)
        if tb_text is None and text:
            # enqueue=True pickles the record: the traceback object is gone, but loguru's
            # formatted text (built in the caller) still holds the traceback.
            tb_text = _traceback_from_text(text, record.get("message"))
        if tb_text is None:
            # As Python prints an exception: no ": " when its text is empty.
            detail = "" if value is None else _safe_text(value)
            tb_text = f"{type_name}: {detail}" if detail else type_name
        tb_text = tb_text.rstrip("\n")
        if value is not None:
            value_text = _safe_text(value)
        else:  # an unpicklable exception arrives as None: loguru's text still names it
            value_text = _value_from_traceback(tb_text, type_name)
        return [
            _Field("exception.type", _repair_if_needed(type_name), 2),
            _Field("exception.value", _repair_if_needed(value_text), 2),
            _Field("exception.traceback", _repair_if_needed(tb_text), 1),
        ]
    except Exception:  # noqa: BLE001 - the record still goes out, with what is known
        return [_Field("exception.type", "<unavailable>", 2)]


def _format_traceback(etype: object, value: object, tb: object, type_name: str) -> str | None:
    """Python's traceback text of the record's exception; None without a traceback object."""
    if tb is None:
        return None
    try:
        if value is None:  # a patch() left the traceback without its exception
            lines = ["Traceback (most recent call last):\n"]
            _format_stack(cast(TracebackType, tb), lines, time.monotonic())
            return f"{''.join(lines)}{type_name}"
        if not isinstance(value, BaseException):
            return None  # as traceback.format_exception, which fails on it
        return _format_exception(value, cast(TracebackType, tb))
    except Exception:  # noqa: BLE001 - a hostile exception: fall back to loguru's text
        return None


# ---------------------------------------------------------------------- traceback text
#
# traceback.format_exception() costs 90-350 us per exception on 3.11: it stats every source
# file (linecache.checkcache) and parses source lines to draw "^^^" carets. The formatter
# below writes the same layout without the carets, from a cache of formatted frames that
# checks each source file at most every _SOURCE_RECHECK seconds: a few us per exception.

#: Frames formatted per exception: the outermost _TB_HEAD and the innermost _TB_TAIL, with a
#: marker line counting those left out between them.
_TB_HEAD: Final = 100
_TB_TAIL: Final = 100
#: Exceptions formatted per chain of causes and contexts (the most recent ones).
_TB_CHAIN: Final = 32
#: Identical consecutive frames shown before "[Previous line repeated N more times]", as
#: Python's traceback module does.
_RECURSIVE_CUTOFF: Final = 3
_MAX_NOTES: Final = 200
#: Seconds between two linecache.checkcache() of a source file (an edited file shows its new
#: lines after at most this long).
_SOURCE_RECHECK: Final = 30.0
_SOURCE_FILES: Final = 1024
_SOURCE_FRAMES: Final = 4096
_SOURCE_MAX_CACHED: Final = 4096
_CAUSE_MESSAGE: Final = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT_MESSAGE: Final = (
    "\nDuring handling of the above exception, another exception occurred:\n\n"
)
_CHAIN_OMITTED: Final = "[... earlier chained exceptions omitted ...]\n"
_TRACEBACK_HEADER: Final = "Traceback (most recent call last):\n"
# Exception groups and notes exist from 3.11 (looked up so that mypy checks 3.10 too).
_GROUP_TYPES: Final[tuple[type[BaseException], ...]] = tuple(
    getattr(builtins, name) for name in ("BaseExceptionGroup",) if hasattr(builtins, name)
)
_PRINTS_NOTES: Final[bool] = sys.version_info >= (3, 11)


_FrameKey = tuple[str, "int | None", str]


class _FrameTexts:
    """Formatted frames ('  File "f", line N, in name' + its source line) by (file, line, name).

    A file's entries are kept while linecache keeps the same lines for it; linecache is asked
    to re-stat the file at most every _SOURCE_RECHECK seconds. Bounded in entries. Only dict
    operations: concurrent callers may format a frame twice, never wrongly.
    """

    __slots__ = ("checked", "texts")

    def __init__(self) -> None:
        self.texts: dict[_FrameKey, str] = {}
        #: filename -> time.monotonic() of its last linecache.checkcache().
        self.checked: dict[str, float] = {}

    def check(self, filename: str, now: float) -> None:
        before = linecache.cache.get(filename)
        linecache.checkcache(filename)
        changed = before is None or linecache.cache.get(filename) is not before
        if changed and filename in self.checked:
            # Changed, gone or not from a file: its frames are formatted again (a scan of at
            # most _SOURCE_FRAMES keys, once per _SOURCE_RECHECK). A file never checked has
            # no entries: texts only holds frames of files in `checked`.
            for key in [k for k in list(self.texts) if k[0] == filename]:
                self.texts.pop(key, None)
        if len(self.checked) >= _SOURCE_FILES:
            self.checked.clear()
            self.texts.clear()
        self.checked[filename] = now

    def add(self, key: _FrameKey, globs: dict[str, Any]) -> str:
        filename, lineno, name = key
        text = f'  File "{filename}", line {lineno}, in {name}\n'
        if lineno is not None:
            source = linecache.getline(filename, lineno, globs).strip()
            if source:
                text = f"{text}    {source}\n"
        if len(text) <= _SOURCE_MAX_CACHED:
            if len(self.texts) >= _SOURCE_FRAMES:
                self.texts.clear()
            self.texts[key] = text
        return text


_FRAME_TEXTS: Final = _FrameTexts()


def _format_exception(value: BaseException, tb: TracebackType | None) -> str:
    """``traceback.format_exception(value)`` without caret lines, at bounded cost."""
    # The chain, newest first, as traceback.TracebackException(compact=True) walks it: each
    # exception with the separator that introduces it after the older one it links to.
    chain: list[tuple[str | None, BaseException, TracebackType | None]] = []
    seen = {id(value)}
    exc: BaseException = value
    exc_tb = tb
    while True:
        if isinstance(exc, _GROUP_TYPES):  # the nested tree layout: rare, left to Python
            return "".join(traceback.format_exception(type(value), value, tb))
        cause = exc.__cause__
        context = exc.__context__
        link: BaseException | None = None
        message: str | None = None
        if cause is not None and id(cause) not in seen:
            link, message = cause, _CAUSE_MESSAGE
        elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
            link, message = context, _CONTEXT_MESSAGE
        chain.append((message, exc, exc_tb))
        if link is None or len(chain) >= _TB_CHAIN:
            break
        seen.add(id(link))
        exc = link
        exc_tb = link.__traceback__
    now = time.monotonic()
    out: list[str] = []
    for message, exc, exc_tb in reversed(chain):
        if message is not None:
            if not out:  # the oldest kept one still links to an older exception
                out.append(_CHAIN_OMITTED)
            out.append(message)
        if exc_tb is not None:
            out.append(_TRACEBACK_HEADER)
            _format_stack(exc_tb, out, now)
        out.extend(_exception_only(exc))
    return "".join(out)


def _format_stack(tb: TracebackType | None, out: list[str], now: float) -> None:
    """The frames of ``tb``, outermost first, with Python's collapsing of repeated lines."""
    total = 0
    probe = tb
    while probe is not None:
        total += 1
        probe = probe.tb_next
    omitted = max(0, total - _TB_HEAD - _TB_TAIL)
    cache = _FRAME_TEXTS
    texts = cache.texts
    checked = cache.checked
    stale = now - _SOURCE_RECHECK
    last: _FrameKey | None = None
    count = index = 0
    while tb is not None:
        if index == _TB_HEAD and omitted:
            if count > _RECURSIVE_CUTOFF:
                out.append(_repeated(count - _RECURSIVE_CUTOFF))
            out.append(f"  [... {omitted} frames omitted ...]\n")
            last = None
            count = 0
            for _skip in range(omitted):
                tb = cast(TracebackType, tb.tb_next)  # counted above: never None here
            index += omitted
        frame = tb.tb_frame
        code = frame.f_code
        lineno = tb.tb_lineno
        filename = code.co_filename
        key = (filename, lineno, code.co_name)
        if key != last or lineno is None:
            if count > _RECURSIVE_CUTOFF:
                out.append(_repeated(count - _RECURSIVE_CUTOFF))
            last = key
            count = 0
        count += 1
        if count <= _RECURSIVE_CUTOFF:
            if checked.get(filename, -math.inf) < stale:
                cache.check(filename, now)
            out.append(texts.get(key) or cache.add(key, frame.f_globals))
        index += 1
        tb = tb.tb_next
    if count > _RECURSIVE_CUTOFF:
        out.append(_repeated(count - _RECURSIVE_CUTOFF))


def _repeated(count: int) -> str:
    return f"  [Previous line repeated {count} more time{'s' if count > 1 else ''}]\n"


def _exception_only(exc: BaseException) -> list[str]:
    """The 'Type: value' line (and notes), as traceback.format_exception_only() writes it."""
    kind = type(exc)
    if issubclass(kind, SyntaxError):  # the offending source line and its caret: rare
        return traceback.format_exception_only(kind, exc)
    name = kind.__qualname__
    module = kind.__module__
    if module not in ("__main__", "builtins"):
        name = f"{module if isinstance(module, str) else '<unknown>'}.{name}"
    text = _safe_call(str, exc, "exception")
    lines = [f"{name}: {text}\n" if text else f"{name}\n"]
    if _PRINTS_NOTES:
        try:
            notes = getattr(exc, "__notes__", None)
        except Exception:  # noqa: BLE001 - a hostile property
            notes = None
        if isinstance(notes, Sequence):
            for note in itertools.islice(notes, _MAX_NOTES):
                note_text = note if isinstance(note, str) else _safe_call(str, note, "note")
                lines.extend(f"{part}\n" for part in note_text.split("\n"))
        elif notes is not None:
            lines.append(f"{_safe_call(repr, notes, '__notes__')}\n")
    return lines


def _safe_call(render: Callable[[object], str], value: object, what: str) -> str:
    """``render(value)``, else traceback's placeholder ("<note str() failed>")."""
    try:
        return render(value)
    except Exception:  # noqa: BLE001 - as traceback's _safe_string()
        return f"<{what} {render.__name__}() failed>"


def _traceback_from_text(text: str, message: object) -> str | None:
    """The traceback loguru appends to the formatted message, after the message's line."""
    text = _ANSI_RE.sub("", text)
    if isinstance(message, str):
        start = text.find(message) if message else 0
        if start >= 0:
            newline = text.find("\n", start + len(message))
            if newline >= 0 and text[newline + 1 :].strip():
                return text[newline + 1 :]
    header = text.find(_TB_HEADER)
    return text[header:] if header >= 0 else None


def _value_from_traceback(tb_text: str, type_name: str) -> str:
    lines = [line for line in tb_text.splitlines() if line.strip()]
    if lines:
        last = lines[-1]
        for name in (type_name, type_name.rsplit(".", 1)[-1]):
            if last.startswith(name + ": "):
                return last[len(name) + 2 :]
    return ""


# ---------------------------------------------------------------------- helpers


class _Plan:
    """Sizes of a line: the fixed part and, per text that can be cut, its JSON size."""

    __slots__ = ("cost", "fixed", "tier_a", "tier_b")

    def __init__(self) -> None:
        self.fixed = 1  # "{" + "}" - the comma after the last field
        self.cost: dict[int, int] = {}
        self.tier_a: list[tuple[_Field, int]] = []
        self.tier_b: list[tuple[_Field, int]] = []


def _measure(fields: list[_Field]) -> _Plan:
    plan = _Plan()
    for field in fields:
        value = field.value
        if field.tier < 0 and value is None:
            continue  # an absent size field: _SIZE_FIELDS_RESERVE covers it
        key_cost = _json_len(field.key) + 2  # ':' and ','
        if field.tier > 0 and isinstance(value, str):
            # A string longer than any line is cut anyway: no need to measure it exactly.
            size = len(value) + 2 if len(value) >= 256 * 1024 else _json_len(value)
            if size > _MIN_CUT:
                plan.fixed += key_cost + _MIN_CUT
                plan.cost[id(field)] = key_cost + _MIN_CUT
                (plan.tier_a if field.tier == 1 else plan.tier_b).append((field, size))
                continue
        else:
            size = _json_len(value)
        plan.fixed += key_cost + size
        plan.cost[id(field)] = key_cost + size
    return plan


def _water_level(sizes: list[int], share: int) -> int:
    """The largest cap C with sum(min(size, C) - _MIN_CUT) <= share: cut values above C."""
    if not sizes:
        return 0
    top = max(sizes)

    def used(cap: int) -> int:
        return sum(min(size, cap) - _MIN_CUT for size in sizes)

    if used(top) <= share:
        return top
    low, high = _MIN_CUT, top
    while low < high:
        mid = (low + high + 1) // 2
        if used(mid) <= share:
            low = mid
        else:
            high = mid - 1
    return low


def _marker(removed: int) -> str:
    return f"…[truncated {removed} bytes]"


def _cut_to(text: str, size: int, limit: int, *, json: bool = False) -> str:
    """``text`` (``size`` UTF-8 bytes) cut to ``limit`` bytes, marker included.

    With ``json`` the limit is on the JSON-escaped bytes (quotes excluded). The marker says how
    many UTF-8 bytes of the original were removed.
    """
    if json:
        if len(text) <= limit and _json_len(text) - 2 <= limit:
            return text
    elif size <= limit:
        return text
    keep = max(0, min(len(text), limit - len(_marker(size))))
    while True:
        head = text[:keep]
        candidate = head + _marker(size - _utf8_len(head))
        length = _json_len(candidate) - 2 if json else len(candidate.encode("utf-8"))
        if length <= limit or keep == 0:
            return candidate
        keep = max(0, keep - (length - limit))


def _size_lower_bound(fields: list[_Field]) -> int:
    """At most the JSON size of the line: keys and string values count one byte a character."""
    return sum(len(f.key) + (len(f.value) if isinstance(f.value, str) else 1) + 4 for f in fields)


def _assemble(fields: list[_Field]) -> bytes:
    return orjson.dumps({f.key: f.value for f in fields if f.tier >= 0 or f.value is not None})


def _claim(path: str, taken: set[str], reasons: set[str]) -> str:
    """The final unique key of ``path``: shortened over 128 bytes, then "~2", "~3"... on clash."""
    candidate = path
    number = 1
    while True:
        key = _shorten(candidate)
        if key is not candidate:
            reasons.add("key_shortened")
        if key not in taken:
            taken.add(key)
            return key
        number += 1
        candidate = f"{path}~{number}"
        reasons.add("key_deduplicated")


def _shorten(key: str) -> str:
    """A key over MAX_KEY_BYTES -> its first 119 bytes + "~" + 8 hex digits of its SHA-256."""
    raw = key.encode("utf-8")
    if len(raw) <= MAX_KEY_BYTES:
        return key
    digest = hashlib.sha256(raw).hexdigest()[:8]
    # "ignore" drops a character cut in half at the end: the prefix stays valid UTF-8.
    return raw[: MAX_KEY_BYTES - 9].decode("utf-8", "ignore") + "~" + digest


def _unique(name: str, existing: Mapping[str, object]) -> str:
    candidate = name
    number = 1
    while candidate in existing:
        number += 1
        candidate = f"{name}~{number}"
    return candidate


def _sanitize_component(name: str) -> tuple[str, bool]:
    """A key as a field-name part: control characters escaped, the empty key named."""
    if not name:
        return _EMPTY_KEY, True
    if _CONTROL_RE.search(name) is None:
        return name, False
    return _CONTROL_RE.sub(_escape_control, name), True


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return _CONTROL_NAMES.get(char) or f"\\x{ord(char):02x}"


def _snapshot_items(mapping: object) -> list[tuple[object, object]] | None:
    """The items of a mapping (at most _NODES_PER_VALUE), or None when they cannot be read."""
    for _attempt in range(3):
        try:
            items = mapping.items()  # type: ignore[attr-defined]
            return list(itertools.islice(items, _NODES_PER_VALUE))
        except RuntimeError:  # changed size during iteration (another thread): retry
            continue
        except Exception:  # noqa: BLE001 - a hostile mapping
            return None
    return None


def _take(container: Any, ctx: _Ctx) -> tuple[list[object], int]:
    """What the node budget allows of a sequence or set, and how many items were left out."""
    room = max(0, ctx.node_limit - ctx.nodes)
    try:
        total = len(container)
    except Exception:  # noqa: BLE001 - a hostile __len__
        total = -1
    items: list[object] = []
    for _attempt in range(3):
        try:
            items = list(itertools.islice(container, room))
            break
        except RuntimeError:  # changed size during iteration (another thread): retry
            continue
    more = max(0, total - len(items))
    if more:
        ctx.reasons.add("structure_limited")
    return items, more


def _sorted_set(items: list[object], children: list[object]) -> list[object]:
    """Set elements in a stable order: natural for numbers or strings, else by JSON text."""
    numbers = all(type(i) is int or _is_number(i) for i in items)
    if numbers or all(type(i) is str for i in items):
        order = sorted(range(len(items)), key=cast(Any, items).__getitem__)
        return [children[i] for i in order]
    return sorted(children, key=lambda c: orjson.dumps(c, default=_json_default))


def _is_number(value: object) -> bool:
    return isinstance(value, float) and type(value) is float and not math.isnan(value)


def _to_aware(moment: object, reasons: set[str]) -> _dt.datetime | None:
    """A record time as an aware datetime (naive = local time); None when it is not a time."""
    if isinstance(moment, str):
        moment = _dt.datetime.fromisoformat(moment)
        reasons.add("time_converted")
    if isinstance(moment, _dt.datetime):
        if moment.utcoffset() is None:
            reasons.add("time_converted")
            return moment.astimezone()
        return moment
    if isinstance(moment, _dt.date):
        reasons.add("time_converted")
        return _dt.datetime(moment.year, moment.month, moment.day).astimezone()
    if isinstance(moment, (int, float)) and not isinstance(moment, bool):
        reasons.add("time_converted")
        return _dt.datetime.fromtimestamp(moment, _UTC).astimezone()
    return None


def _whole_minute_offset(value: _dt.datetime, reasons: set[str]) -> _dt.datetime:
    # The server accepts +hh:mm only: an offset with seconds (LMT) is written in UTC.
    offset = value.utcoffset()
    if offset is not None and offset % _MINUTE:
        reasons.add("time_converted")
        return value.astimezone(_UTC)
    return value


def _format_time(value: _dt.datetime) -> str:
    return value.isoformat(timespec="microseconds")


def _json_len(value: object) -> int:
    return len(orjson.dumps(value))


def _utf8_len(text: str) -> int:
    # isascii() is O(1) in CPython: only non-ASCII text pays for an encode.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _repair(text: str) -> str:
    """Lone surrogates -> U+FFFD; a surrogate pair becomes the character it encodes."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _repair_if_needed(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _repair(text)
    return text


def _qualname(cls: object) -> str:
    """``module.Qualname`` (``builtins.`` omitted), for exception types and objects."""
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None)
    if not isinstance(name, str):
        name = getattr(cls, "__name__", None)
    if not isinstance(name, str):
        return "?"
    if not isinstance(module, str) or module == "builtins":
        return name
    return f"{module}.{name}"


def _safe_attr(obj: object, name: str) -> object:
    try:
        return getattr(obj, name)
    except Exception:  # noqa: BLE001 - a property may raise anything
        return f"<unavailable {name}>"


_UNPRINTABLE: Final = object()


def _safe_text(value: object, default: Any = _UNPRINTABLE) -> Any:
    """str(value), else repr(value), else ``default`` (an "<unprintable ...>" text)."""
    for render in (str, repr):
        try:
            text = render(value)
            return text if type(text) is str else str.__str__(text)
        except Exception:  # noqa: BLE001, S112 - __str__ / __repr__ may raise anything
            continue
    if default is _UNPRINTABLE:
        return f"<unprintable {_qualname(type(value))} object>"
    return default


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"Invalid {name}, it should be an int, not: {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"Invalid {name}, it should be between {low} and {high}, not: {value}")


def _check_static_key(key: object, builtin_paths: frozenset[str]) -> None:
    if not isinstance(key, str):
        raise TypeError(f"Invalid static_fields, keys should be str, not: {type(key).__name__}")
    problem = None
    if not key:
        problem = "is empty"
    elif key[0] == "_" or key == "extra" or key.startswith(_RENAME_PREFIX):
        problem = "is reserved"
    elif key in builtin_paths or any(p.startswith(key + ".") for p in builtin_paths):
        problem = "names a built-in field"
    elif _CONTROL_RE.search(key):
        problem = "contains control characters"
    if problem is not None:
        raise ValueError(f"Invalid static_fields, the key {key!r} {problem}")
