"""Loguru record -> one VictoriaLogs JSON line.

Pure and synchronous: the sink calls :meth:`RecordEncoder.encode` from loguru's ``write()`` for
every record, so the common case is one ``orjson.dumps`` of a flat dict (the *fast path*).
Anything unusual -- a value orjson refuses or would silently change, a key the server would
mangle, a line over a server limit -- falls through to the *careful path*, which renders every
value by documented rules, flattens nested mappings itself and fits the line inside the limits
of VictoriaLogs. The rules as users read them are in docs/schema.md.

VictoriaLogs answers 200 and silently drops a line of 256 KiB or more, a row with more than
1000 fields after flattening, a key longer than 128 bytes (the whole line becomes one ``_msg``),
rows whose time is outside its retention window, and rows that take a block of one stream past
2,000 distinct field names. Every line produced here avoids all five: the last by a budget of
distinct names per encoder (:func:`._limits.name_budget`); extras with names past it go, with
their values, into ``extra.overflow``.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import orjson

from ._limits import (
    CONTROL_RE,
    DEFAULT_MAX_FIELDS,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_TIME_WINDOW,
    MAX_KEY_BYTES,
    MIN_CUT,
    Field,
    assemble,
    check_max_message_bytes,
    check_time_window,
    claim,
    cut_to,
    measure,
    name_budget,
    sanitize_component,
    size_lower_bound,
    water_level,
)
from ._text import qualname, repair, repair_if_needed, safe_text, utf8_len
from ._traceback import (
    format_traceback,
    traceback_from_text,
    value_from_traceback,
)
from ._values import (
    MAX_DEPTH,
    NODES_PER_RECORD,
    NODES_PER_VALUE,
    Ctx,
    ValueRenderer,
    json_default,
    snapshot_items,
)

__all__ = [
    "BUILTIN_FIELDS",
    "DEFAULT_MAX_FIELDS",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_TIME_WINDOW",
    "MAX_KEY_BYTES",
    "REPAIR_REASONS",
    "RecordEncoder",
    "exception_fields",
    "format_time",
]

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
    "names_overflow",
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
#: Room kept for the size fields (``message_size``, ``exception.traceback_size``) when cutting.
_SIZE_FIELDS_RESERVE: Final = 96
#: Longest ``original_time`` text kept (it is not cut with the other values).
_MAX_ORIGINAL_TIME: Final = 256
_MAX_ENCODE_ERROR: Final = 1024

_EMPTY_MESSAGE: Final = "(empty message)"
_OVERFLOW_KEY: Final = "extra.overflow"
_RENAME_PREFIX: Final = "extra."
_FALLBACK_LINE: Final = (
    b'{"_msg":"(unencodable record)","level":"ERROR","encode_error":"fallback failed"}'
)

_UTC: Final = _dt.timezone.utc
_MINUTE: Final = _dt.timedelta(minutes=1)


def _loguru_time_types() -> frozenset[type]:
    """The classes loguru puts in ``record["time"]``: its datetime subclass, or a plain one
    after ``patch()``."""
    try:
        from loguru._datetime import datetime as loguru_datetime
    except ImportError:  # pragma: no cover - loguru is a dependency; the module stays usable
        return frozenset({_dt.datetime})
    return frozenset({_dt.datetime, loguru_datetime})


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


class RecordEncoder(ValueRenderer):
    """Turns loguru records into VictoriaLogs JSON lines (bytes, no newline). Never raises."""

    def __init__(
        self,
        *,
        static_fields: Mapping[str, object] = {},
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_message_bytes: int | None = None,
        time_window: tuple[float, float] | None = DEFAULT_TIME_WINDOW,
        names: Mapping[str, str] = {},
        record_fields: tuple[tuple[str, int], ...] = (),
        loguru_records: bool = True,
    ) -> None:
        """``names``: how errors name each argument (the sink calls ``static_fields``
        ``fields``, or a ``VLOGS_*`` variable). ``record_fields``: further built-in fields
        ``(name, tier)`` a record may carry under the same key (the stdlib handler's
        ``task_name`` and ``stack_info``), written after ``elapsed`` when not None; tier 1
        is cut like a traceback, 2 like any other text. Extras cannot take their names.
        ``loguru_records=False``: the records never come from loguru (loguru is not imported).
        """

        def label(argument: str) -> str:
            return names.get(argument, argument)

        _check_int(label("max_line_bytes"), max_line_bytes, _MIN_LINE_BYTES, 256 * 1024 - 1)
        _check_int(label("max_fields"), max_fields, _MIN_FIELDS, 1000)
        check_max_message_bytes(label("max_message_bytes"), max_message_bytes, max_line_bytes)
        window = check_time_window(label("time_window"), time_window)
        if not isinstance(static_fields, Mapping):
            raise TypeError(
                f"Invalid {label('static_fields')}: it should be a mapping of str to values, not: "
                f"{type(static_fields).__name__}"
            )
        #: Records repaired, by reason (see REPAIR_REASONS). Read by the sink's stats().
        self.repairs: dict[str, int] = dict.fromkeys(REPAIR_REASONS, 0)
        self._max_line = max_line_bytes
        self._max_fields = max_fields
        self._max_message = max_message_bytes
        self._window = window

        self._record_fields = record_fields
        self._time_types = _loguru_time_types() if loguru_records else frozenset({_dt.datetime})
        builtin_paths = frozenset(BUILTIN_FIELDS) | {name for name, _tier in record_fields}
        ctx = Ctx(set(), max_line_bytes, MAX_DEPTH)
        statics: list[Field] = []
        for key, value in static_fields.items():
            _check_static_key(key, builtin_paths, label("static_fields"))
            self._flatten(key, value, 1, ctx, statics)
        keys = [f.key for f in statics]
        for key in keys:
            if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES or key in builtin_paths:
                raise ValueError(
                    f"Invalid {label('static_fields')}: a flattened key is longer than {MAX_KEY_BYTES} "
                    f"bytes or names a built-in field: {key!r}"
                )
        if len(set(keys)) != len(keys):
            raise ValueError(f"Invalid {label('static_fields')}: flattened keys collide: {keys!r}")
        if len(builtin_paths) + len(statics) + 8 > max_fields:
            raise ValueError(
                f"Invalid {label('static_fields')}: their {len(statics)} fields leave no room for extras "
                f"within max_fields={max_fields}"
            )
        for field in statics:
            field.tier = 2 if isinstance(field.value, str) else 0
        self._statics = statics
        self._static_dict = {f.key: f.value for f in statics}
        #: the static fields as the fast path writes them (after the built-ins)
        self.static_values: Mapping[str, object] = self._static_dict
        if len(orjson.dumps(self._static_dict)) > max_line_bytes // 4:
            raise ValueError(
                f"Invalid {label('static_fields')}: their JSON text should stay under a quarter of "
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
        # Every field name this encoder has sent or may send; never more than the budget, so
        # the server's blocks of these rows stay under its limit of distinct names.
        self._names: set[str] = set(self._fixed_paths)
        self._name_budget = name_budget(max_fields)
        # Caches of the fast path, all bounded: extra keys and flattened paths known to be safe
        # as they are and within the name budget, tzinfo objects with whole-minute offsets,
        # calendar days inside the time window.
        self._ok_keys: set[str] = set()
        self._ok_paths: set[str] = set()
        self._good_tz: set[object] = set()
        self._ok_days: dict[bytes, float] = {}
        # The built-in keys then the static fields, in line order: a record without an
        # exception copies it and sets the built-ins in place (order kept, ~0.1 us cheaper
        # than building the dict and then adding the statics).
        self._template: dict[str, object] = dict.fromkeys(BUILTIN_FIELDS[:14])
        self._template.update(self._static_dict)
        # 14 built-ins + the record's own + 3 exception fields + statics are all the fast
        # path ever writes.
        self._fast_max_extras = max_fields - 17 - len(record_fields) - len(statics)
        #: the longest ``_msg`` (in characters) the fast path takes as it is
        self.fast_message_chars = (
            max_line_bytes if max_message_bytes is None else max_message_bytes // 4
        )
        #: ``(max_age, max_future)`` in seconds, or None (every time as it is)
        self.time_window = window

    # ------------------------------------------------------------------ entry point

    def encode(
        self,
        record: Mapping[str, Any],
        text: str | None = None,
        trace: Mapping[str, object] | None = None,
    ) -> bytes:
        """Return one JSON object (UTF-8 bytes, no newline) inside every server limit.

        ``trace``: fields added as extras unless the record's extra has the same key (the
        current span's ids, see :mod:`._trace`).
        """
        exc_fields: list[Field] | None = None
        try:
            if record["exception"] is not None:
                exc_fields = exception_fields(record, text)
            line = self._encode_fast(record, exc_fields, trace)
            if line is not None:
                return line
        except Exception:  # noqa: BLE001, S110 - anything odd is the careful path's job
            pass
        if exc_fields is None:
            exc_fields = exception_fields(record, text)
        return self.encode_careful(record, exc_fields, trace)

    def encode_careful(
        self,
        record: Mapping[str, Any],
        exc_fields: list[Field] | None,
        trace: Mapping[str, object] | None = None,
    ) -> bytes:
        """The careful path, then the last-resort line: a record-shaped mapping (loguru's
        keys, plus ``record_fields``) with its exception fields already made. Never raises."""
        error: Exception | None = None
        for max_depth in (MAX_DEPTH, 8):
            try:
                return self._encode_careful(record, exc_fields, max_depth, trace)
            except RecursionError as exc:  # logged from deep recursion: retry shallower
                error = exc
            except Exception as exc:  # noqa: BLE001 - never raise into loguru
                error = exc
                break
        return self._encode_fallback(record, error)

    # ------------------------------------------------------------------ fast path

    def _encode_fast(
        self,
        record: Mapping[str, Any],
        exc_fields: list[Field] | None,
        trace: Mapping[str, object] | None = None,
    ) -> bytes | None:
        msg = record["message"]
        if type(msg) is not str or not msg or len(msg) > self.fast_message_chars:
            return None
        moment = record["time"]
        if type(moment) not in self._time_types:
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
        stamp = _from_state(raw, tz) if moment.microsecond else format_time(moment)
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
        return self.fast_extras(out, record["extra"], trace)

    def fast_extras(  # noqa: PLR0911 - one flat run of early exits (hot path)
        self, out: dict[str, object], extra: object, trace: Mapping[str, object] | None = None
    ) -> bytes | None:
        """The fast path's second half: ``out`` holds the built-in, exception and static
        fields; add the extras (and ``trace`` where the extras lack its keys) and serialize.
        None when anything needs the careful path."""
        if type(extra) is not dict:
            return None
        if trace is not None:
            # The record's own keys win; the trace fields follow its extras.
            extra = {**extra, **{k: v for k, v in trace.items() if k not in extra}}
        if len(extra) > self._fast_max_extras:
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
                if not sub or "." in sub or not self._plain_key(path) or not self._admit(path):
                    return False
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
        if type(key) is not str or not self._plain_key(key) or not self._admit(key):
            return False
        self._ok_keys.add(key)
        return True

    def _admit(self, name: str) -> bool:
        """Whether ``name`` may be sent as a field: sent before, or the name budget has room."""
        names = self._names
        if name in names:
            return True
        if len(names) >= self._name_budget:
            return False
        names.add(name)
        return True

    def _plain_key(self, key: str) -> bool:
        """True when an extra's key can be sent as is: not reserved, short, clean."""
        if not key or key[0] == "_" or key in self._reserved or key.startswith(_RENAME_PREFIX):
            return False
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            return False
        return size <= MAX_KEY_BYTES and CONTROL_RE.search(key) is None

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
        self,
        record: Mapping[str, Any],
        exc_fields: list[Field] | None,
        max_depth: int,
        trace: Mapping[str, object] | None = None,
    ) -> bytes:
        reasons: set[str] = set()
        ctx = Ctx(reasons, 2 * self._max_line, max_depth)
        get = record.get

        raw_msg = get("message")
        msg = raw_msg if type(raw_msg) is str else self._leaf_text(raw_msg, ctx)
        msg = self._clean_str(msg, ctx)
        msg_field = Field("_msg", msg, 1)
        size_field = Field("message_size", None, -1)
        sources: dict[int, tuple[str, int]] = {}
        if not msg:
            # The server would store "missing _msg field; see https://docs...".
            msg_field.value = _EMPTY_MESSAGE
            reasons.add("message_empty")
        elif self._max_message is not None and len(msg) * 4 > self._max_message:
            size = utf8_len(msg)
            if size > self._max_message:
                sources[id(msg_field)] = (msg, size)
                msg_field.value = cut_to(msg, size, self._max_message)
                size_field.value = size
                reasons.add("message_truncated")

        stamp, original = self._time_fields(get("time"), ctx)
        fields = [msg_field, Field("_time", stamp)]
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
            fields.append(Field(key, rendered, 2 if isinstance(rendered, str) else 0))
        for key, tier in self._record_fields:
            value = get(key)
            if value is not None:
                text = self._clean_str(
                    value if type(value) is str else self._leaf_text(value, ctx), ctx
                )
                fields.append(Field(key, text, tier))
        fields.append(size_field)
        if original is not None:
            fields.append(Field("original_time", original))
        tb_size_field = Field("exception.traceback_size", None, -1)
        size_fields = {id(msg_field): size_field}
        if exc_fields is not None:
            for field in exc_fields:
                copy = Field(field.key, field.value, field.tier)
                fields.append(copy)
                if field.key == "exception.traceback":
                    size_fields[id(copy)] = tb_size_field
            fields.append(tb_size_field)
        fields.extend(Field(f.key, f.value, f.tier) for f in self._statics)

        taken = set(self._fixed_paths)
        extras: list[Field] = []
        extra = get("extra")
        items = snapshot_items(extra) if isinstance(extra, Mapping) else None
        if items is None:  # not a mapping (a patch() put something else there)
            items = [] if extra is None else [("extra", extra)]
        if trace is not None:
            own = {key for key, _value in items if type(key) is str}
            items = items + [(k, v) for k, v in trace.items() if k not in own]
        for raw_key, raw_value in items:
            name, changed = sanitize_component(self._key_text(raw_key, ctx))
            if changed:
                reasons.add("key_sanitized")
            if name[0] == "_" or name in self._reserved or name.startswith(_RENAME_PREFIX):
                name = _RENAME_PREFIX + name
                reasons.add("extra_renamed")
            ctx.node_limit = min(NODES_PER_RECORD, ctx.nodes + NODES_PER_VALUE)
            start = len(extras)
            self._flatten(name, raw_value, 1, ctx, extras)
            for field in extras[start:]:
                field.key = claim(field.key, taken, reasons)
                if isinstance(field.value, str):
                    field.tier = 2

        room = self._max_fields - len(fields)
        overflow: list[Field] = []
        if len(extras) > room:
            overflow = extras[room - 1 :]
            del extras[room - 1 :]
            reasons.add("fields_overflow")
        folded = [field for field in extras if not self._admit(field.key)]
        if folded:
            # New names past the budget: their values still go out, inside extra.overflow.
            extras = [field for field in extras if field.key in self._names]
            overflow = folded + overflow
            reasons.add("names_overflow")
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

    def _time_fields(self, moment: object, ctx: Ctx) -> tuple[str, str | None]:
        """``_time`` (RFC 3339, explicit offset, 6 fraction digits) and ``original_time``."""
        reasons = ctx.reasons
        stamp: str | None = None
        seconds = 0.0
        try:
            value = _to_aware(moment, reasons)
            if value is not None:
                value = _whole_minute_offset(value, reasons)
                stamp = format_time(value)
                seconds = value.timestamp()
        except (ValueError, OverflowError, OSError, TypeError):
            stamp = None
        now = time.time()
        if stamp is None:
            original = self._leaf_text(moment, ctx)
            original = cut_to(original, utf8_len(original), _MAX_ORIGINAL_TIME)
        elif self._window is None or now - self._window[0] <= seconds <= now + self._window[1]:
            return stamp, None
        else:
            original = stamp
        reasons.add("time_adjusted")
        local = _dt.datetime.fromtimestamp(now, _UTC).astimezone()
        return format_time(_whole_minute_offset(local, reasons)), original

    # ------------------------------------------------------------------ limits

    def _fit(
        self,
        *,
        fields: list[Field],
        extras: list[Field],
        overflow: list[Field],
        size_fields: dict[int, Field],
        sources: dict[int, tuple[str, int]],
        ctx: Ctx,
    ) -> bytes:
        """Assemble the line; when too long, cut the biggest values first until it fits."""
        limit = self._max_line - _SIZE_FIELDS_RESERVE
        overshoot = 0
        overflow_field: Field | None = None
        for _attempt in range(8):
            line_fields = fields + extras
            if overflow:
                if overflow_field is None:
                    overflow_field = Field(_OVERFLOW_KEY, self._overflow_text(overflow, ctx), 2)
                line_fields.append(overflow_field)
            # Serializing a line that is sure to be too long can cost 100s of ms (1000 values
            # of 100 KB): a lower bound from the string lengths skips that.
            size = size_lower_bound(line_fields)
            if size <= self._max_line:
                line = assemble(line_fields)
                if len(line) <= self._max_line:
                    return line
                size = len(line)
            if overshoot:  # a cut pass ran and the line is still long: leave more room
                limit -= size - self._max_line + 64
            plan = measure(line_fields)
            deficit = plan.fixed - limit
            if deficit > 0:
                # Keys and numbers alone do not fit (hundreds of long keys): move extras from
                # the end into the overflow text, which can be cut.
                if not extras:
                    raise ValueError("the built-in fields alone exceed max_line_bytes")
                freed = 0
                while extras and freed < deficit + 2 * MIN_CUT:
                    moved = extras.pop()
                    freed += plan.cost.get(id(moved), 0)
                    overflow.insert(0, moved)
                if overflow_field is not None:  # rebuilt below with the moved fields
                    sources.pop(id(overflow_field), None)
                    overflow_field = None
                ctx.reasons.add("fields_overflow")
                continue
            room = limit - plan.fixed
            need_a = sum(size - MIN_CUT for _f, size in plan.tier_a)
            need_b = sum(size - MIN_CUT for _f, size in plan.tier_b)
            # Message-like text keeps at least half the room when it needs it; either group
            # takes what the other does not need.
            share_a = min(need_a, max(room // 2, room - need_b))
            for group, share in ((plan.tier_a, share_a), (plan.tier_b, room - share_a)):
                cap = water_level([size for _f, size in group], share)
                for field, size in group:
                    if size > cap:
                        self._cut_field(field, cap, size_fields, sources, ctx)
            overshoot = 1
        raise ValueError("could not fit the record into max_line_bytes")

    def _cut_field(
        self,
        field: Field,
        target: int,
        size_fields: dict[int, Field],
        sources: dict[int, tuple[str, int]],
        ctx: Ctx,
    ) -> None:
        source = sources.get(id(field))
        if source is None:
            text = cast(str, field.value)
            source = sources[id(field)] = (text, utf8_len(text))
        field.value = cut_to(source[0], source[1], target - 2, json=True)
        size_field = size_fields.get(id(field))
        if size_field is not None:
            size_field.value = source[1]
        if field.key == "_msg":
            ctx.reasons.add("message_truncated")
        elif field.key == "exception.traceback":
            ctx.reasons.add("traceback_truncated")
        else:
            ctx.reasons.add("value_truncated")

    def _overflow_text(self, overflow: list[Field], ctx: Ctx) -> str:
        budget = Ctx(ctx.reasons, 2 * self._max_line, ctx.max_depth)
        data = {
            f.key: self._text_str(f.value, budget) if isinstance(f.value, str) else f.value
            for f in overflow
        }
        return orjson.dumps(data, default=json_default).decode("utf-8")

    # ------------------------------------------------------------------ last resort

    def _encode_fallback(self, record: object, error: Exception | None) -> bytes:
        self.repairs["encode_fallback"] = self.repairs.get("encode_fallback", 0) + 1
        try:
            get = record.get if isinstance(record, Mapping) else (lambda _key: None)
            msg = get("message")
            text = repair(msg if isinstance(msg, str) else safe_text(msg))
            text = cut_to(text, utf8_len(text), self._max_line // 2) or _EMPTY_MESSAGE
            level_name = getattr(get("level"), "name", None)
            detail = repair(f"{qualname(type(error))}: {safe_text(error)}")
            out = {
                "_msg": text,
                "_time": format_time(_dt.datetime.fromtimestamp(time.time(), _UTC)),
                "level": repair(level_name) if isinstance(level_name, str) else "ERROR",
                "encode_error": cut_to(detail, utf8_len(detail), _MAX_ENCODE_ERROR),
            }
            line = orjson.dumps(out)
            if len(line) <= self._max_line:
                return line
        except Exception:  # noqa: BLE001, S110 - the constant line below cannot fail
            pass
        return _FALLBACK_LINE


# ---------------------------------------------------------------------- exception fields


def exception_fields(record: Mapping[str, Any], text: str | None) -> list[Field] | None:
    """exception.type / .value / .traceback of ``record["exception"]`` (loguru's
    ``(type, value, traceback)``, or a ``LogRecord``'s ``exc_info``), or None without an
    exception. ``text``: loguru's formatted text, where the traceback is when the record
    lost its traceback object (``enqueue=True``). Never raises."""
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
            type_name = qualname(etype)
        elif value is not None:
            type_name = qualname(type(value))
        else:
            type_name = safe_text(etype)
        tb_text = format_traceback(etype, value, tb, type_name)
        if tb_text is None and text:
            # enqueue=True pickles the record: the traceback object is gone, but loguru's
            # formatted text (built in the caller) still holds the traceback.
            tb_text = traceback_from_text(text, record.get("message"))
        if tb_text is None:
            # As Python prints an exception: no ": " when its text is empty.
            detail = "" if value is None else safe_text(value)
            tb_text = f"{type_name}: {detail}" if detail else type_name
        tb_text = tb_text.rstrip("\n")
        if value is not None:
            value_text = safe_text(value)
        else:  # an unpicklable exception arrives as None: loguru's text still names it
            value_text = value_from_traceback(tb_text, type_name)
        return [
            Field("exception.type", repair_if_needed(type_name), 2),
            Field("exception.value", repair_if_needed(value_text), 2),
            Field("exception.traceback", repair_if_needed(tb_text), 1),
        ]
    except Exception:  # noqa: BLE001 - the record still goes out, with what is known
        return [Field("exception.type", "<unavailable>", 2)]


# ---------------------------------------------------------------------- helpers


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


def format_time(value: _dt.datetime) -> str:
    """``_time``'s text: RFC 3339, the value's own offset, always 6 fraction digits."""
    return value.isoformat(timespec="microseconds")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"Invalid {name}: it should be an int, not: {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"Invalid {name}: it should be between {low} and {high}, not: {value}")


def _check_static_key(key: object, builtin_paths: frozenset[str], argument: str) -> None:
    if not isinstance(key, str):
        raise TypeError(f"Invalid {argument}: keys should be str, not: {type(key).__name__}")
    problem = None
    if not key:
        problem = "is empty"
    elif key[0] == "_" or key == "extra" or key.startswith(_RENAME_PREFIX):
        problem = "is reserved"
    elif key in builtin_paths or any(p.startswith(key + ".") for p in builtin_paths):
        problem = "names a built-in field"
    elif CONTROL_RE.search(key):
        problem = "contains control characters"
    if problem is not None:
        raise ValueError(f"Invalid {argument}: the key {key!r} {problem}")
