"""What VictoriaLogs does with a line, modelled independently of the encoder, and the limits.

The model follows ``docs/server.md`` and the recorded conformance cases (``tests/data/``): nested
objects are flattened with dots, arrays are stored as their compact JSON text, numbers and
booleans as their JSON text; ``null``, ``""`` and ``{}`` are dropped. Counting keeps the dropped
ones too (the encoder must stay inside the limit either way).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import orjson
from loguru import logger

from loguru_vlogs._record import (
    BUILTIN_FIELDS,
    DEFAULT_MAX_FIELDS,
    DEFAULT_MAX_LINE_BYTES,
    MAX_KEY_BYTES,
)

RFC3339_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$")
MARKER = re.compile(r"…\[truncated (\d+) bytes\]$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_NAMES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
HASHED = re.compile(r"~[0-9a-f]{8}$")
DEDUPED = re.compile(r"~\d+$")
SERVER_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def same_stored_text(expected: str, actual: str) -> bool:
    """``actual`` is ``expected`` as the real server reads it back.

    Equal, or both plain decimal numbers within float64 rounding: the server stores a column
    whose values in one block are all numbers as float64, through a conversion that can miss
    the nearest double (``0.3`` comes back as ``0.30000000000000004``, ``7.0`` as ``7``).
    """
    if expected == actual:
        return True
    if not (DECIMAL.match(expected) and DECIMAL.match(actual)):
        return False
    want, got = float(expected), float(actual)
    return math.isfinite(want) and math.isclose(want, got, rel_tol=1e-12, abs_tol=1e-300)


def assert_same_row(expected: Mapping[str, str], actual: Mapping[str, str]) -> None:
    """Same names; each value the same text, or its float64 read-back (see same_stored_text)."""
    assert sorted(expected) == sorted(actual)
    differ = {k: (v, actual[k]) for k, v in expected.items() if not same_stored_text(v, actual[k])}
    assert {} == differ


def server_pairs(line: bytes) -> list[tuple[str, object]]:
    """(flattened key, JSON value) pairs as the server walks the object, empties included."""
    obj = orjson.loads(line)
    assert isinstance(obj, dict), f"not one JSON object: {line[:80]!r}"
    pairs: list[tuple[str, object]] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        else:
            pairs.append((prefix, value))

    walk("", obj)
    return pairs


def stored_fields(line: bytes) -> dict[str, str]:
    """The row the server would store: every value as text, empties dropped."""
    row: dict[str, str] = {}
    for key, value in server_pairs(line):
        if value is None or value == "" or value == {}:
            continue
        if isinstance(value, str):
            row[key] = value
        else:
            row[key] = orjson.dumps(value).decode()
    return row


def assert_within_limits(
    line: bytes,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_fields: int = DEFAULT_MAX_FIELDS,
) -> dict[str, Any]:
    """Assert every server limit and the schema invariants; return the parsed object."""
    assert isinstance(line, bytes)
    assert len(line) <= max_line_bytes, f"line of {len(line)} bytes"
    assert b"\n" not in line
    assert b"\r" not in line
    line.decode("utf-8")  # strict: valid UTF-8
    obj = orjson.loads(line)  # raises on trailing data: exactly one value
    assert isinstance(obj, dict)
    pairs = server_pairs(line)
    assert len(pairs) <= max_fields, f"{len(pairs)} fields"
    keys = [key for key, _value in pairs]
    assert len(keys) == len(set(keys)), "duplicate flattened keys"
    for key in keys:
        assert 0 < len(key.encode("utf-8")) <= MAX_KEY_BYTES, f"key {key[:40]!r}"
    assert "_stream" not in obj
    assert "_stream_id" not in obj
    assert [k for k in obj if k.startswith("_")] == ["_msg", "_time"]
    assert isinstance(obj["_msg"], str)
    assert obj["_msg"]
    assert RFC3339_MICROS.match(obj["_time"]), obj["_time"]
    return obj


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@contextmanager
def capture(**options: Any) -> Iterator[list[Any]]:
    """Collect loguru messages (str with .record) of a handler added with ``options``."""
    messages: list[Any] = []
    options.setdefault("format", "{message}")
    handler_id = logger.add(messages.append, **options)
    try:
        yield messages
    finally:
        logger.remove(handler_id)


def record_of(log: Callable[[], object], **options: Any) -> tuple[dict[str, Any], str]:
    """Run ``log`` with a capturing handler; the one record and the text loguru formatted."""
    with capture(**options) as messages:
        log()
        logger.complete()
    assert len(messages) == 1
    message = messages[0]
    return message.record, str(message)


# ---------------------------------------------------------------------- the documented rules


def repaired(value: str) -> str:
    """Text as the README says it is sent: lone surrogates -> U+FFFD, pairs joined."""
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def documented_name(key: str, static_names: Iterable[str]) -> str:
    """The top-level name an extra key is stored under (before shortening and '~n')."""
    statics = set(static_names)
    name = repaired(key)
    name = CONTROL.sub(lambda m: CONTROL_NAMES.get(m.group(), f"\\x{ord(m.group()):02x}"), name)
    name = name or "(empty)"
    prefixes = {p.split(".")[0] for p in [*BUILTIN_FIELDS, *statics]}
    if (
        name.startswith(("_", "extra."))
        or name in BUILTIN_FIELDS
        or name in statics
        or name in prefixes
        or name == "extra"
    ):
        name = "extra." + name
    return name


def head_bytes(name: str, size: int = 119) -> str:
    """The first whole characters of ``name`` that fit in ``size`` UTF-8 bytes."""
    return name.encode("utf-8")[:size].decode("utf-8", "ignore")


def shortened(name: str) -> str:
    """README, *Names*: a name over 128 bytes keeps its first whole characters up to 119
    bytes, then ``~`` and the first 8 hex digits of the SHA-256 of the full name."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{head_bytes(name)}~{digest}"


class KeyIndex:
    """The output keys, indexed to answer "is the extra documented as ``name`` stored?"."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = set(keys)
        self.names: set[str] = set()
        #: heads (first 119 bytes) of the keys that were shortened
        self.hashed_heads: set[str] = set()
        for key in self.keys:
            if HASHED.search(key):
                self.hashed_heads.add(key[:-9])
            for variant in (key, DEDUPED.sub("", key)):
                parts = variant.split(".")
                self.names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))

    def holds(self, name: str) -> bool:
        """The name itself, a flattened path under it, or -- for a name over 128 bytes -- its
        documented short form (a path under a long name is shortened as a whole: its head,
        which is the name's head, is what can be checked)."""
        if name in self.names or shortened(name) in self.keys:
            return True
        # A path under the name, shortened as a whole: its kept head begins with the name.
        if len(name.encode("utf-8")) >= 119:
            return head_bytes(name) in self.hashed_heads
        return any(head.startswith(name + ".") for head in self.hashed_heads)


def stored_under(name: str, keys: Iterable[str]) -> bool:
    """Whether some output key holds (part of) the extra documented as ``name``."""
    return KeyIndex(keys).holds(name)


def renders_empty(value: object, depth: int = 0) -> bool:
    """Whether an extra renders to nothing the server keeps: ``""``, empty bytes, or a
    non-empty mapping whose values all render so (the server drops empty values)."""
    if isinstance(value, str):
        return not value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value) == 0
    if isinstance(value, Mapping) and depth < 9:  # deeper: kept as JSON text
        try:
            children = list(value.values())
        except Exception:  # a broken mapping renders as its str()
            return False
        return bool(children) and all(renders_empty(child, depth + 1) for child in children)
    return False


def check_message(obj: Mapping[str, Any], message: str) -> None:
    """``_msg`` is the message, ``(empty message)``, or its cut with marker and size."""
    expected = repaired(message)
    if not expected:
        assert "(empty message)" == obj["_msg"]
        return
    if "message_size" not in obj:
        assert expected == obj["_msg"]
        return
    size = len(expected.encode())
    assert size == int(obj["message_size"])  # a number in a line, its text in a stored row
    match = MARKER.search(obj["_msg"])
    assert match is not None
    prefix = obj["_msg"][: match.start()]
    assert expected.startswith(prefix)
    assert size - len(prefix.encode()) == int(match.group(1))


def scalar_text(value: object) -> str | None:
    """README, *Values*: the text a str, bool, int, float or None is stored as; None for
    other types (their rules are checked elsewhere)."""
    kind = type(value)
    if kind is str:
        return repaired(cast(str, value))
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        try:
            return str(value)
        except ValueError:  # past Python's 4300-digit limit the README says hex
            return hex(cast(int, value))
    if kind is float:
        number = cast(float, value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return repr(number)
    if value is None:
        return "null"
    return None


def check_no_unknown_fields(
    row: Mapping[str, Any], extra: Mapping[Any, Any], static_names: Iterable[str]
) -> None:
    """Every field of the row is a documented built-in or static field, or comes from one of
    the record's extras (its name, a path under it, a ``~n`` twin, or its shortened form)."""
    statics = set(static_names)
    names = [documented_name(key, statics) for key in extra if isinstance(key, str)]
    if len(names) < len(extra):  # non-str keys are named by their rendering: not modelled here
        return
    unknown = []
    for key in row:
        if key in BUILTIN_FIELDS or key in statics or key in ("_stream", "_stream_id"):
            continue
        plain = DEDUPED.sub("", key)
        head = key[:-9] if HASHED.search(key) else None
        if any(
            plain == name
            or plain.startswith(name + ".")
            or (head is not None and (head == head_bytes(name) or head.startswith(name + ".")))
            for name in names
        ):
            continue
        unknown.append(key)
    assert [] == unknown


def key_in_json_text(name: str, text: str) -> bool:
    """Whether a JSON object text holds a key for the extra named ``name``: the name itself,
    a path under it, a ``~n`` twin, or its shortened form (schema, *Names*). Whole keys only:
    ``"k"`` must not match the key ``"kk"``."""

    def quoted(part: str) -> str:
        return orjson.dumps(part).decode()[:-1]  # '"' and the escaped text, no closing quote

    starts = [quoted(name) + end for end in ('"', ".", "~")]
    if len(name.encode("utf-8")) >= 119:
        starts.append(quoted(head_bytes(name)) + "~")
    return any(start in text for start in starts)


def check_extras(
    obj: Mapping[str, Any],
    extra: Mapping[Any, Any],
    static_names: Iterable[str],
    *,
    stored: bool = False,
) -> None:
    """Every str-keyed extra is retrievable under its documented name (or in extra.overflow,
    unless that was cut); a str value is stored as is unless cut. ``stored``: ``obj`` is a row
    read back from the server, which dropped the values that render empty."""
    statics = list(static_names)
    overflow_text = obj.get("extra.overflow", "{}")
    cut = MARKER.search(overflow_text)
    overflow: dict[str, Any] = {} if cut else orjson.loads(overflow_text)
    index = KeyIndex([*obj, *overflow])
    missing: list[str] = []
    for key, value in extra.items():
        if not isinstance(key, str) or (stored and renders_empty(value)):
            continue
        name = documented_name(key, statics)
        if not index.holds(name):
            missing.append(name)
            continue
        text = scalar_text(value)
        if text is None or (stored and not text):
            continue
        # A dotted key and a flattened mapping may share the name: the later one has "~n".
        candidates = [
            source[key]
            for source in (obj, overflow)
            for key in itertools.takewhile(
                source.__contains__, (name, *(f"{name}~{n}" for n in range(2, 10)))
            )
        ]
        if candidates and not any(isinstance(v, str) and MARKER.search(v) for v in candidates):
            texts = [c if isinstance(c, str) else orjson.dumps(c).decode() for c in candidates]
            assert any(same_stored_text(text, c) for c in texts), (name, text, texts)
    if cut is None:
        assert [] == missing
    else:
        # extra.overflow was cut: the names still in its text are there; the ones the cut
        # removed are the last ones (its JSON keeps the extras' order).
        head = overflow_text[: cut.start()]
        # Only plain names are followed into the text: a name with dots, backslashes or
        # empty parts is renamed by rules this model does not repeat (schema, *Names*).
        plain = [name for name in missing if PLAIN_NAME.match(name)]
        found = [key_in_json_text(name, head) for name in plain]
        assert sorted(found, reverse=True) == found, plain


def parse_server_time(text: str) -> dt.datetime:
    """VictoriaLogs prints RFC3339Nano in UTC with trailing zeros trimmed."""
    match = SERVER_TIME.match(text)
    assert match, text
    base = dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    fraction = (match.group(2) or "").ljust(9, "0")
    assert "000" == fraction[6:], f"sub-microsecond digits in {text}"
    return base.replace(microsecond=int(fraction[:6]), tzinfo=dt.timezone.utc)
