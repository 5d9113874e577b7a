"""Property tests: any record gives one valid line inside every limit, by the documented rules."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import logging
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loguru_vlogs._logrecord import STANDARD_ATTRIBUTES as LOG_RECORD_ATTRIBUTES
from loguru_vlogs._logrecord import LogRecordEncoder
from loguru_vlogs._record import RecordEncoder, exception_fields

from .corpus.record_checks import (
    assert_within_limits,
    check_extras,
    check_message,
    documented_name,
    stored_under,
)
from .corpus.strategies import (
    exceptions,
    extras,
    fillers,
    key_text,
    make_record,
    messages,
    text,
    values,
    with_filler,
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STATIC = {"service": "api", "host": "web-1"}
TRACE = {
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "trace_flags": 1,
}


@pytest.mark.slow
@SETTINGS
@given(message=messages, extra=extras, exc=exceptions, filler=fillers)
def test_any_record_gives_one_line_inside_every_limit(
    message: str,
    extra: dict[Any, Any],
    exc: tuple[BaseException, bool] | None,
    filler: tuple[int, int],
) -> None:
    """Valid JSON, one object, every limit kept, _msg and extras where the rules say."""
    extra = with_filler(extra, filler)
    record, text = make_record(message, extra, exc)
    line = RecordEncoder(static_fields=STATIC).encode(record, text)
    assert line == RecordEncoder(static_fields=STATIC).encode(record, text)
    obj = assert_within_limits(line)
    assert "encode_error" not in obj
    check_message(obj, message)
    check_extras(obj, extra, STATIC)
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
    assert stored_under(documented_name(key, STATIC), list(obj))


plain_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text)
clean_keys = st.from_regex(r"[a-z][a-z0-9_.]{0,12}", fullmatch=True)
plain_keys = st.one_of(st.text(st.sampled_from("ab._"), max_size=4), key_text)
plain_values = st.one_of(
    plain_scalars,
    st.lists(plain_scalars, max_size=40),
    st.tuples(plain_scalars, plain_scalars),
    st.dictionaries(plain_keys, st.one_of(plain_scalars, st.lists(plain_scalars, max_size=3))),
)


#: Record times around now (the fast path takes those inside the time window): offsets in
#: whole minutes, sometimes a zero fraction (orjson would omit it).
moments = st.builds(
    lambda seconds, micro, minutes: (
        dt.datetime.fromtimestamp(time.time() + seconds, dt.timezone.utc).replace(microsecond=micro)
    ).astimezone(dt.timezone(dt.timedelta(minutes=minutes))),
    st.integers(-60, 60) | st.integers(-86400, 86400) | st.integers(-8 * 86400, 3 * 86400),
    st.sampled_from([0, 1, 999_999]) | st.integers(0, 999_999),
    st.integers(-1439, 1439),
)


@SETTINGS
@given(
    extra=st.dictionaries(clean_keys, plain_values, max_size=8)
    | st.dictionaries(plain_keys, plain_values, max_size=8),
    message=text,
    exc=exceptions,
    moment=moments,
    static=st.sampled_from([STATIC, {}, {"run": {"id": 7, "tags": ["a"]}}]),
    window=st.sampled_from([(7 * 86400.0, 2 * 86400.0), None, (3600.0, 60.0)]),
    trace=st.sampled_from([None, TRACE, {"trace_id": "0" * 32}]),
)
def test_fast_path_agrees_with_the_careful_path(
    extra: dict[str, Any],
    message: str,
    exc: tuple[BaseException, bool] | None,
    moment: dt.datetime,
    static: dict[str, Any],
    window: tuple[float, float] | None,
    trace: dict[str, object] | None,
) -> None:
    """Whatever the fast path accepts, the careful path renders to the very same bytes
    (trace fields included: after the extras, the record's own keys winning)."""
    record, text = make_record(message, extra, exc)
    record["time"] = moment
    encoder = RecordEncoder(static_fields=static, time_window=window)
    exc_fields = exception_fields(record, text)
    for _attempt in range(2):  # the second time from the fast path's caches
        try:
            fast = encoder._encode_fast(record, exc_fields, trace)
        except (TypeError, orjson.JSONEncodeError):  # refused by orjson: encode() goes careful
            fast = None
        event("fast path" if fast is not None else "careful path only")
        if fast is not None:
            assert encoder._encode_careful(record, exc_fields, 64, trace) == fast
            assert_within_limits(fast)


def log_record(
    message: str,
    extra: dict[str, Any],
    exc: tuple[BaseException, bool] | None,
    created: float,
    task: str | None,
    stack: str | None,
) -> logging.LogRecord:
    """A LogRecord as logging makes it, with ``extra`` set as ``Logger.makeRecord`` does."""
    exc_info = None if exc is None else (type(exc[0]), exc[0], exc[0].__traceback__)
    record = logging.LogRecord(
        "app.orders", logging.WARNING, "/srv/app/orders.py", 42, message, None, exc_info, "pay"
    )
    record.created = created
    record.taskName = task
    record.stack_info = stack
    for key, value in extra.items():
        record.__dict__[key] = value
    return record


@settings(SETTINGS, max_examples=60)
@given(
    extra=st.dictionaries(clean_keys, plain_values, max_size=8).filter(
        lambda d: not set(d) & LOG_RECORD_ATTRIBUTES
    ),
    message=text,
    exc=exceptions,
    seconds=st.integers(-60, 60) | st.integers(-8 * 86400, 3 * 86400),
    micro=st.sampled_from([0, 1, 999_999]) | st.integers(0, 999_999),
    task=st.sampled_from([None, "Task-3"]),
    stack=st.sampled_from([None, "Stack (most recent call last):\n  File ..."]),
    trace=st.sampled_from([None, TRACE]),
)
def test_the_log_record_fast_path_agrees_with_the_careful_path(
    extra: dict[str, Any],
    message: str,
    exc: tuple[BaseException, bool] | None,
    seconds: int,
    micro: int,
    task: str | None,
    stack: str | None,
    trace: dict[str, object] | None,
) -> None:
    """The stdlib handler's own fast path gives the bytes the careful path gives for the same
    record (its loguru-shaped view), inside every limit."""
    created = float(int(time.time()) + seconds) + micro / 1e6
    record = log_record(message, extra, exc, created, task, stack)
    encoder = LogRecordEncoder(static_fields=STATIC)
    exc_fields = exception_fields({"exception": record.exc_info}, None) if exc else None
    own = {k: v for k, v in vars(record).items() if k not in LOG_RECORD_ATTRIBUTES}
    for _attempt in range(2):
        try:
            fast = encoder._encode_fast_record(record, message, own, exc_fields, trace)
        except (TypeError, orjson.JSONEncodeError):
            fast = None
        event("fast path" if fast is not None else "careful path only")
        line = encoder.encode_record(record, message, trace)
        if fast is not None:
            assert fast == line
            view = encoder._view(record, message, own)
            assert encoder.encode_careful(view, exc_fields, trace) == fast
        assert_within_limits(line)
