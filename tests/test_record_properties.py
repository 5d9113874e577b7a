"""Property tests: any record gives one valid line inside every limit, by the documented rules."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import hashlib
import re
import traceback
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger
from loguru._recattrs import RecordException

from loguru_vlogs._record import BUILTIN_FIELDS, RecordEncoder

from .corpus.hostile_values import (
    BothRaise,
    Color,
    FakeNumpyScalar,
    Level,
    Plain,
    Point,
    StrRaises,
    self_dict,
)
from .corpus.record_checks import MARKER, assert_within_limits, record_of

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STATIC = {"service": "api", "host": "web-1"}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_NAMES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
HASHED = re.compile(r"~[0-9a-f]{8}$")
DEDUPED = re.compile(r"~\d+$")

any_char = st.characters(exclude_categories=())
text = st.text(any_char, max_size=40)
key_text = st.one_of(
    st.text(st.sampled_from("ab._~\n\x00é"), max_size=6),
    st.text(any_char, max_size=10),
    st.text(st.sampled_from("ké"), min_size=60, max_size=160),
    st.sampled_from(
        [
            "_msg",
            "_time",
            "_stream",
            "_stream_id",
            "level",
            "service",
            "exception",
            "exception.type",
            "extra",
            "extra.overflow",
            "",
            "a.b",
            "a",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, 2**64 - 1]),
    st.floats(),
    text,
    st.binary(max_size=20),
    st.decimals(),
    st.datetimes(),
    st.uuids(),
    st.sampled_from([Color.RED, Level.HIGH, ValueError("v"), KeyError()]),
    st.builds(Plain),
    st.builds(BothRaise),
    st.builds(StrRaises),
    st.builds(Point, st.integers(), text),
    st.builds(FakeNumpyScalar),
)
hashable = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), text, st.tuples(st.integers())
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.one_of(key_text, hashable), children, max_size=4),
        st.frozensets(hashable, max_size=4),
        st.builds(self_dict),
    ),
    max_leaves=20,
)
extras = st.dictionaries(st.one_of(key_text, key_text, hashable), values, max_size=12)
messages = st.one_of(
    text,
    st.sampled_from(["", "\ud800", "\x00", "line\nline", '"\x01\\' * 50_000]),
    st.builds(lambda c, n: c * n, any_char, st.sampled_from([1000, 140_000, 300_000])),
)
# Wide records: many extras sharing one value (cheap to build, costly to fit), or one extra
# holding a wide mapping.
fillers = st.sampled_from(
    [(0, 0)] * 6 + [(1200, 10), (1200, 100_000), (300, 5_000), (-1500, 10), (-300, 3_000)]
)


def raised(message: str) -> BaseException:
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        return exc


exceptions = st.one_of(
    st.none(),
    st.tuples(st.builds(raised, st.one_of(text, st.just("e" * 300_000))), st.booleans()),
)


@functools.lru_cache(maxsize=1)
def _base() -> tuple[dict[str, Any], str]:
    return record_of(lambda: logger.info("base"))


def make_record(
    message: str, extra: dict[Any, Any], exc: tuple[BaseException, bool] | None
) -> tuple[dict[str, Any], str]:
    base, _text = _base()
    record = dict(base)
    record["message"] = message
    record["extra"] = extra
    record["time"] = dt.datetime.now(dt.timezone.utc)
    text = message + "\n"
    if exc is not None:
        error, keep_traceback = exc
        tb = error.__traceback__
        text += "".join(traceback.format_exception(type(error), error, tb))
        # keep_traceback=False is what enqueue=True delivers: the traceback object is gone.
        record["exception"] = RecordException(type(error), error, tb if keep_traceback else None)
    return record, text


def repaired(value: str) -> str:
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def documented_name(key: str) -> str:
    """The top-level name an extra key is stored under (before shortening and '~n')."""
    name = repaired(key)
    name = CONTROL.sub(lambda m: CONTROL_NAMES.get(m.group(), f"\\x{ord(m.group()):02x}"), name)
    name = name or "(empty)"
    prefixes = {p.split(".")[0] for p in [*BUILTIN_FIELDS, *STATIC]}
    if (
        name.startswith(("_", "extra."))
        or name in BUILTIN_FIELDS
        or name in STATIC
        or name in prefixes
        or name == "extra"
    ):
        name = "extra." + name
    return name


class KeyIndex:
    """The output keys, indexed to answer "is the extra documented as ``name`` stored?"."""

    def __init__(self, keys: list[str]) -> None:
        self.names: set[str] = set()
        self.hashed_heads: list[str] = []
        for key in keys:
            if HASHED.search(key):  # shortened: only its kept prefix is known
                self.hashed_heads.append(key[:-9])
            for variant in (key, DEDUPED.sub("", key)):
                parts = variant.split(".")
                self.names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))

    def holds(self, name: str) -> bool:
        if name in self.names:
            return True
        return any(name.startswith(h) or h.startswith(name) for h in self.hashed_heads)


def stored_under(name: str, keys: list[str]) -> bool:
    """Whether some output key holds (part of) the extra documented as ``name``."""
    return KeyIndex(keys).holds(name)


def check_message(obj: dict[str, Any], message: str) -> None:
    expected = repaired(message)
    if not expected:
        assert "(empty message)" == obj["_msg"]
        return
    if "message_size" not in obj:
        assert expected == obj["_msg"]
        return
    size = len(expected.encode())
    assert size == obj["message_size"]
    match = MARKER.search(obj["_msg"])
    assert match is not None
    prefix = obj["_msg"][: match.start()]
    assert expected.startswith(prefix)
    assert size - len(prefix.encode()) == int(match.group(1))


def check_extras(obj: dict[str, Any], extra: dict[Any, Any]) -> None:
    keys = list(obj)
    overflow_text = obj.get("extra.overflow", "{}")
    overflow_cut = MARKER.search(overflow_text) is not None
    if not overflow_cut:
        keys += list(orjson.loads(overflow_text))
    index = KeyIndex(keys)
    for key, value in extra.items():
        if not isinstance(key, str):
            continue
        name = documented_name(key)
        assert index.holds(name) or overflow_cut, name
        stored = obj.get(name)
        if type(value) is str and isinstance(stored, str) and not MARKER.search(stored):
            assert repaired(value) == stored


@SETTINGS
@given(message=messages, extra=extras, exc=exceptions, filler=fillers)
def test_any_record_gives_one_line_inside_every_limit(
    message: str,
    extra: dict[Any, Any],
    exc: tuple[BaseException, bool] | None,
    filler: tuple[int, int],
) -> None:
    """Valid JSON, one object, every limit kept, _msg and extras where the rules say."""
    count, size = filler
    shared = "f" * size
    if count >= 0:
        extra = {**extra, **{f"filler{i}": shared for i in range(count)}}
    else:
        extra = {**extra, "wide": {f"k{i}": shared for i in range(-count)}}
    record, text = make_record(message, extra, exc)
    line = RecordEncoder(static_fields=STATIC).encode(record, text)
    assert line == RecordEncoder(static_fields=STATIC).encode(record, text)
    obj = assert_within_limits(line)
    assert "encode_error" not in obj
    check_message(obj, message)
    check_extras(obj, extra)
    if exc is None:
        assert not [k for k in obj if k.startswith("exception")]
    else:
        assert "RuntimeError" == obj["exception.type"]
        assert obj["exception.traceback"].startswith("Traceback (most recent call last):")


@SETTINGS
@given(value=values)
def test_any_extra_value_renders_stably(value: object) -> None:
    """The same value renders to the same text, with the value under its documented key."""
    record, text = make_record("m", {"v": value}, None)
    first = RecordEncoder().encode(record, text)
    assert first == RecordEncoder().encode(record, text)
    obj = assert_within_limits(first)
    assert stored_under("v", list(obj))


@SETTINGS
@given(
    number=st.one_of(st.integers(), st.floats(), st.decimals(allow_nan=False)),
)
def test_numbers_keep_their_value(number: int | float | decimal.Decimal) -> None:
    """Ints in 64 bits stay numbers; others, NaN and infinities become exact text."""
    record, text = make_record("m", {"n": number}, None)
    stored = assert_within_limits(RecordEncoder().encode(record, text))["n"]
    if isinstance(number, decimal.Decimal):
        assert str(number) == stored
    elif isinstance(number, int) and -(2**63) <= number < 2**64:
        assert number == stored
    elif isinstance(number, int):
        assert number == int(stored, 0)
    elif number != number:
        assert "nan" == stored
    elif number in (float("inf"), float("-inf")):
        assert repr(number) == stored
    else:
        assert number == stored


def test_hashed_key_format_is_the_documented_one() -> None:
    """The helper's idea of a shortened key matches the encoder's (guards the property test)."""
    key = "é" * 80
    record, text = make_record("m", {key: 1}, None)
    obj = assert_within_limits(RecordEncoder().encode(record, text))
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    assert 1 == obj["é" * 59 + "~" + digest]
    assert stored_under(documented_name(key), list(obj))


plain_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text)
plain_keys = st.one_of(st.text(st.sampled_from("ab._"), max_size=4), key_text)
plain_values = st.one_of(
    plain_scalars,
    st.lists(plain_scalars, max_size=40),
    st.tuples(plain_scalars, plain_scalars),
    st.dictionaries(plain_keys, st.one_of(plain_scalars, st.lists(plain_scalars, max_size=3))),
)


@SETTINGS
@given(extra=st.dictionaries(plain_keys, plain_values, max_size=8), message=text)
def test_fast_path_agrees_with_the_careful_path(extra: dict[str, Any], message: str) -> None:
    """Whatever the fast path accepts, the careful path renders to the very same bytes."""
    record, _text = make_record(message, extra, None)
    encoder = RecordEncoder(static_fields=STATIC)
    try:
        fast = encoder._encode_fast(record, None)
    except (TypeError, orjson.JSONEncodeError):  # refused by orjson: encode() goes careful
        fast = None
    if fast is not None:
        assert encoder._encode_careful(record, None, 64) == fast
        assert_within_limits(fast)
