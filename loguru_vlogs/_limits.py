"""The server's limits and fitting a line inside them: sizes, cuts, key names.

A line is measured field by field (:func:`measure`); when it is too long the biggest texts
are cut to a common cap (:func:`water_level`, :func:`cut_to`) and each cut text ends with a
marker saying how many bytes were removed. Keys are made acceptable to the server here too:
control characters escaped, long keys shortened with a hash, clashes numbered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Final

import orjson

from ._text import utf8_len

#: Longest line (bytes, without the newline) the encoder produces. The server drops lines of
#: 256 KiB or more; 1 KiB of margin covers the newline and anything a proxy adds.
DEFAULT_MAX_LINE_BYTES: Final = 255 * 1024
#: Most fields per line. The server drops rows with more than 1000 fields (counted after it
#: flattens nested objects); the margin leaves room for ``extra_fields`` added server-side.
DEFAULT_MAX_FIELDS: Final = 990
#: Most distinct field names in one block of the server. It keeps the rows of a stream in blocks
#: and drops a row -- with every later row of that block -- when the names already in the block
#: plus the row's own field count pass this (``ignoring N rows in the block, because they
#: contain more than 2000 unique field names``), answering 200. A block is not one request: the
#: server gathers a second of requests before it builds blocks, and its background merges put
#: rows of one stream and day together again (up to 2 MiB of rows a block), dropping rows then.
SERVER_BLOCK_NAMES: Final = 2000
#: Room for fields the server adds itself (``extra_fields``), as in DEFAULT_MAX_FIELDS.
_SERVER_ADDED_FIELDS: Final = 10
#: Longest key in UTF-8 bytes. A longer top-level key makes the server store the whole line as
#: one ``_msg`` string with the ingestion time.
MAX_KEY_BYTES: Final = 128
#: (max age, max future) in seconds of the record times a default server stores
#: (``-retentionPeriod=7d``; rows later than now + 2 days are dropped).
DEFAULT_TIME_WINDOW: Final = (7 * 86400.0, 2 * 86400.0)


def check_max_message_bytes(
    shown: str, value: object, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> int | None:
    """None, or an int from 256 to ``max_line_bytes`` (``shown``: the name errors give it)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"Invalid {shown}: it should be an int, not: {type(value).__name__}")
    if not 256 <= value <= max_line_bytes:
        raise ValueError(
            f"Invalid {shown}: it should be between 256 and {max_line_bytes}, not: {value}"
        )
    return value


def check_time_window(shown: str, value: object) -> tuple[float, float] | None:
    """None, or a ``(max_age, max_future)`` pair of non-negative seconds, as floats (a list
    too: configuration files such as ``dictConfig``'s JSON have no tuples)."""
    if value is None:
        return None
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1e12 for x in value
        )
    ):
        raise ValueError(
            f"Invalid {shown}: it should be None or a (max_age, max_future) tuple of "
            f"non-negative seconds, not: {value!r}"
        )
    return (float(value[0]), float(value[1]))


def name_budget(max_fields: int) -> int:
    """Most distinct field names one encoder ever sends (built-in and static ones included).

    No block of the server can then pass :data:`SERVER_BLOCK_NAMES`, whichever of the
    encoder's rows it holds: the names before a row are at most this many, and the row brings
    at most ``max_fields`` (1,000 names for the default 990 fields).
    """
    return SERVER_BLOCK_NAMES - max_fields - _SERVER_ADDED_FIELDS


#: Bytes (JSON, quotes included) of the longest cut marker: a value this short is never cut.
MIN_CUT: Final = 40
_EMPTY_KEY: Final = "(empty)"

CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NAMES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class Field:
    """One output field.

    tier -1: conditional (omitted while None); 0: never cut; 1: message-like (``_msg``,
    ``exception.traceback``), keeps at least half the room; 2: any other text.
    """

    __slots__ = ("key", "tier", "value")

    def __init__(self, key: str, value: object, tier: int = 0) -> None:
        self.key = key
        self.value = value
        self.tier = tier


class _Plan:
    """Sizes of a line: the fixed part and, per text that can be cut, its JSON size."""

    __slots__ = ("cost", "fixed", "tier_a", "tier_b")

    def __init__(self) -> None:
        self.fixed = 1  # "{" + "}" - the comma after the last field
        self.cost: dict[int, int] = {}
        self.tier_a: list[tuple[Field, int]] = []
        self.tier_b: list[tuple[Field, int]] = []


def measure(fields: list[Field]) -> _Plan:
    plan = _Plan()
    for field in fields:
        value = field.value
        if field.tier < 0 and value is None:
            continue  # an absent size field: _SIZE_FIELDS_RESERVE covers it
        key_cost = _json_len(field.key) + 2  # ':' and ','
        if field.tier > 0 and isinstance(value, str):
            # A string longer than any line is cut anyway: no need to measure it exactly.
            size = len(value) + 2 if len(value) >= 256 * 1024 else _json_len(value)
            if size > MIN_CUT:
                plan.fixed += key_cost + MIN_CUT
                plan.cost[id(field)] = key_cost + MIN_CUT
                (plan.tier_a if field.tier == 1 else plan.tier_b).append((field, size))
                continue
        else:
            size = _json_len(value)
        plan.fixed += key_cost + size
        plan.cost[id(field)] = key_cost + size
    return plan


def water_level(sizes: list[int], share: int) -> int:
    """The largest cap C with sum(min(size, C) - MIN_CUT) <= share: cut values above C."""
    if not sizes:
        return 0
    top = max(sizes)

    def used(cap: int) -> int:
        return sum(min(size, cap) - MIN_CUT for size in sizes)

    if used(top) <= share:
        return top
    low, high = MIN_CUT, top
    while low < high:
        mid = (low + high + 1) // 2
        if used(mid) <= share:
            low = mid
        else:
            high = mid - 1
    return low


def marker(removed: int) -> str:
    return f"…[truncated {removed} bytes]"


def cut_to(text: str, size: int, limit: int, *, json: bool = False) -> str:
    """``text`` (``size`` UTF-8 bytes) cut to ``limit`` bytes, marker included.

    With ``json`` the limit is on the JSON-escaped bytes (quotes excluded). The marker says how
    many UTF-8 bytes of the original were removed.
    """
    if json:
        if len(text) <= limit and _json_len(text) - 2 <= limit:
            return text
    elif size <= limit:
        return text
    keep = max(0, min(len(text), limit - len(marker(size))))
    while True:
        head = text[:keep]
        candidate = head + marker(size - utf8_len(head))
        length = _json_len(candidate) - 2 if json else len(candidate.encode("utf-8"))
        if length <= limit or keep == 0:
            return candidate
        keep = max(0, keep - (length - limit))


def size_lower_bound(fields: list[Field]) -> int:
    """At most the JSON size of the line: keys and string values count one byte a character."""
    return sum(len(f.key) + (len(f.value) if isinstance(f.value, str) else 1) + 4 for f in fields)


def assemble(fields: list[Field]) -> bytes:
    return orjson.dumps({f.key: f.value for f in fields if f.tier >= 0 or f.value is not None})


def claim(path: str, taken: set[str], reasons: set[str]) -> str:
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


def unique(name: str, existing: Mapping[str, object]) -> str:
    candidate = name
    number = 1
    while candidate in existing:
        number += 1
        candidate = f"{name}~{number}"
    return candidate


def sanitize_component(name: str) -> tuple[str, bool]:
    """A key as a field-name part: control characters escaped, the empty key named."""
    if not name:
        return _EMPTY_KEY, True
    if CONTROL_RE.search(name) is None:
        return name, False
    return CONTROL_RE.sub(_escape_control, name), True


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return _CONTROL_NAMES.get(char) or f"\\x{ord(char):02x}"


def _json_len(value: object) -> int:
    return len(orjson.dumps(value))
