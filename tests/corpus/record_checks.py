"""What VictoriaLogs does with a line, modelled independently of the encoder, and the limits.

The model follows ``/work/shared/VICTORIALOGS.md`` and the recorded conformance cases: nested
objects are flattened with dots, arrays are stored as their compact JSON text, numbers and
booleans as their JSON text; ``null``, ``""`` and ``{}`` are dropped. Counting keeps the dropped
ones too (the encoder must stay inside the limit either way).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from loguru import logger

from loguru_vlogs._record import DEFAULT_MAX_FIELDS, DEFAULT_MAX_LINE_BYTES, MAX_KEY_BYTES

RFC3339_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$")
MARKER = re.compile(r"…\[truncated (\d+) bytes\]$")


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
