"""The record -> JSON line schema: fields, order, times, exceptions, collisions, statics."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
import time
from typing import Any

import orjson
import pytest
from loguru import logger
from loguru._recattrs import RecordException

from loguru_vlogs._record import (
    BUILTIN_FIELDS,
    DEFAULT_MAX_FIELDS,
    DEFAULT_MAX_LINE_BYTES,
    MAX_KEY_BYTES,
    REPAIR_REASONS,
    RecordEncoder,
)

from .corpus.record_checks import (
    MARKER,
    assert_within_limits,
    capture,
    parse_time,
    record_of,
    stored_fields,
)

CORE = [
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
]
STATIC = {"service": "api", "host": "web-1"}


class PaymentError(Exception):
    """A user-defined exception (its qualified name includes the module)."""


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def encode(record: dict[str, Any], text: str | None = None, **options: Any) -> dict[str, Any]:
    options.setdefault("static_fields", STATIC)
    line = RecordEncoder(**options).encode(record, text)
    return assert_within_limits(line)


def at(moment: dt.datetime) -> Any:
    """A patch() function that sets the record time."""
    return lambda record: record.update(time=moment)


def test_typical_record_has_every_field_in_schema_order() -> None:
    """Built-ins first, then static fields, then extras, each with the record's value."""
    record, text = record_of(lambda: logger.bind(user_id=42).info("order {} paid", 7, amount=1.5))
    obj = encode(record, text)
    assert [*CORE, "service", "host", "user_id", "amount"] == list(obj)
    expected = {
        "_msg": "order 7 paid",
        "level": "INFO",
        "level_no": 20,
        "logger": __name__,
        "module": "test_record",
        "function": "<lambda>",
        "line": record["line"],
        "file": record["file"].path,
        "process": os.getpid(),
        "process_name": record["process"].name,
        "thread": threading.get_ident(),
        "thread_name": threading.current_thread().name,
        "elapsed": record["elapsed"].total_seconds(),
        "service": "api",
        "host": "web-1",
        "user_id": 42,
        "amount": 1.5,
    }
    assert expected == {k: v for k, v in obj.items() if k != "_time"}


def test_time_is_the_record_time_exact_to_the_microsecond() -> None:
    """_time has six fraction digits and the record's own offset, and parses back equal."""
    record, _ = record_of(lambda: logger.info("m"))
    obj = encode(record)
    assert record["time"].isoformat(timespec="microseconds") == obj["_time"]
    assert record["time"] == parse_time(obj["_time"])


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (
            dt.datetime(2026, 11, 20, 8, 15, 30, 123456, dt.timezone(dt.timedelta(hours=1))),
            "2026-11-20T08:15:30.123456+01:00",
        ),
        (
            dt.datetime(2026, 11, 20, 8, 15, 30, 0, dt.timezone(dt.timedelta(hours=5, minutes=30))),
            "2026-11-20T08:15:30.000000+05:30",
        ),
        (
            dt.datetime(2026, 11, 20, 8, 15, 30, 1, dt.timezone(-dt.timedelta(hours=3))),
            "2026-11-20T08:15:30.000001-03:00",
        ),
        (
            dt.datetime(2026, 11, 20, 8, 15, 30, 999999, dt.timezone.utc),
            "2026-11-20T08:15:30.999999+00:00",
        ),
    ],
)
def test_time_keeps_its_offset_with_six_fraction_digits(moment: dt.datetime, expected: str) -> None:
    """Any fixed offset is written as +hh:mm, and a zero fraction still has six digits."""
    record, _ = record_of(lambda: logger.patch(at(moment)).info("m"))
    assert expected == encode(record, time_window=None)["_time"]


def test_naive_time_gets_the_local_zone() -> None:
    """A naive datetime (from patch()) is local time: written with the local offset."""
    naive = dt.datetime.now().replace(microsecond=654321)  # naive on purpose
    record, _ = record_of(lambda: logger.patch(at(naive)).info("m"))
    encoder = RecordEncoder()
    obj = assert_within_limits(encoder.encode(record))
    assert naive.astimezone() == parse_time(obj["_time"])
    assert obj["_time"].endswith(naive.astimezone().isoformat()[-6:])
    assert 1 == encoder.repairs["time_converted"]


def test_offset_with_seconds_is_written_in_utc() -> None:
    """An offset the server cannot read (+00:09:21, LMT) becomes UTC at the same instant."""
    lmt = dt.timezone(dt.timedelta(minutes=9, seconds=21))
    moment = dt.datetime(2026, 11, 20, 8, 15, 30, 5, lmt)
    record, _ = record_of(lambda: logger.patch(at(moment)).info("m"))
    obj = encode(record, time_window=None)
    assert "2026-11-20T08:06:09.000005+00:00" == obj["_time"]
    assert moment == parse_time(obj["_time"])


@pytest.mark.parametrize("shift", [dt.timedelta(days=-10), dt.timedelta(days=3)])
def test_time_outside_the_server_window_is_delivered_now_with_the_original(
    shift: dt.timedelta,
) -> None:
    """Older than 7 days or later than now+2 days: _time is the encoding time."""
    moment = dt.datetime.now(dt.timezone.utc) + shift
    record, _ = record_of(lambda: logger.patch(at(moment)).info("m"))
    encoder = RecordEncoder()
    before = time.time()
    obj = assert_within_limits(encoder.encode(record))
    after = time.time()
    assert before - 1e-6 <= parse_time(obj["_time"]).timestamp() <= after + 1e-6
    assert moment.isoformat(timespec="microseconds") == obj["original_time"]
    assert 1 == encoder.repairs["time_adjusted"]
    assert list(obj).index("original_time") == len(CORE)


def test_time_window_none_keeps_any_time() -> None:
    """time_window=None disables the check: a 1970 time stays."""
    moment = dt.datetime(1970, 1, 2, tzinfo=dt.timezone.utc)
    record, _ = record_of(lambda: logger.patch(at(moment)).info("m"))
    obj = encode(record, time_window=None)
    assert "1970-01-02T00:00:00.000000+00:00" == obj["_time"]
    assert "original_time" not in obj


def test_time_just_inside_a_custom_window_is_kept() -> None:
    """The window is (max age, max future) seconds: one minute old passes a 2-minute window."""
    moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    record, _ = record_of(lambda: logger.patch(at(moment)).info("m"))
    assert moment == parse_time(encode(record, time_window=(120, 0))["_time"])
    late = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3)
    record, _ = record_of(lambda: logger.patch(at(late)).info("m"))
    assert "original_time" in encode(record, time_window=(120, 0))


def raise_payment_error() -> None:
    raise PaymentError("card declined")


def test_exception_fields_come_from_the_traceback_object() -> None:
    """type (qualified), value and the formatted traceback follow the built-ins."""

    def log() -> None:
        try:
            raise_payment_error()
        except PaymentError:
            logger.exception("payment failed")

    record, text = record_of(log)
    obj = encode(record, text)
    assert [*CORE, "exception.type", "exception.value", "exception.traceback"] == list(obj)[:17]
    assert f"{__name__}.PaymentError" == obj["exception.type"]
    assert "card declined" == obj["exception.value"]
    tb = obj["exception.traceback"]
    assert tb.startswith("Traceback (most recent call last):\n")
    assert 'in raise_payment_error\n    raise PaymentError("card declined")' in tb
    assert tb.endswith(f"{__name__}.PaymentError: card declined")


@pytest.mark.parametrize(
    "fmt", ["{message}", "{time} | {level: <8} | {name}:{function}:{line} - {message}"]
)
def test_exception_traceback_comes_from_the_text_with_enqueue(fmt: str) -> None:
    """enqueue=True drops the traceback object: the traceback is taken from loguru's text."""

    def log() -> None:
        try:
            raise_payment_error()
        except PaymentError:
            logger.exception("payment\nfailed")

    record, text = record_of(log, enqueue=True, format=fmt, backtrace=False, diagnose=False)
    assert record["exception"].traceback is None
    obj = encode(record, text)
    assert f"{__name__}.PaymentError" == obj["exception.type"]
    assert "card declined" == obj["exception.value"]
    tb = obj["exception.traceback"]
    assert tb.startswith("Traceback (most recent call last):\n")
    assert "in raise_payment_error" in tb
    assert tb.endswith("PaymentError: card declined")
    assert "payment\nfailed" == obj["_msg"]


def test_exception_without_any_traceback_uses_type_and_value() -> None:
    """opt(exception=instance) of a never-raised exception: 'Type: value'."""
    record, text = record_of(lambda: logger.opt(exception=ValueError("bad input")).error("x"))
    obj = encode(record, text)
    assert "ValueError" == obj["exception.type"]
    assert "bad input" == obj["exception.value"]
    assert "ValueError: bad input" == obj["exception.traceback"]


def test_exception_without_traceback_or_text_is_named_like_python_prints_it() -> None:
    """No traceback and no loguru text (raw=True): 'Type' alone when str() is empty."""
    record, text = record_of(lambda: logger.opt(exception=ValueError(""), raw=True).error("x"))
    assert "x" == text
    assert "ValueError" == encode(record, text)["exception.traceback"]


def test_exception_true_outside_except_adds_no_exception_fields() -> None:
    """opt(exception=True) with nothing being handled: no exception.* fields."""
    record, text = record_of(lambda: logger.opt(exception=True).error("x"))
    assert not [k for k in encode(record, text) if k.startswith("exception")]


def test_exception_whose_str_and_repr_raise_is_still_reported() -> None:
    """An exception value that cannot be printed gets a placeholder, never an error."""

    def log() -> None:
        try:
            raise UnprintableError
        except UnprintableError:
            logger.exception("x")

    record, text = record_of(log)
    obj = encode(record, text)
    assert f"{__name__}.UnprintableError" == obj["exception.type"]
    assert f"<unprintable {__name__}.UnprintableError object>" == obj["exception.value"]
    assert "Traceback (most recent call last):" in obj["exception.traceback"]


def test_unpicklable_exception_value_is_read_back_from_the_text() -> None:
    """With enqueue an unpicklable exception arrives as None: the text's last line names it."""
    text = "x\nTraceback (most recent call last):\n  File 'a.py', line 1\nKeyError: 'the key'\n"
    record, _ = record_of(lambda: logger.info("x"))
    record["exception"] = RecordException(KeyError, None, None)
    obj = encode(record, text)
    assert "KeyError" == obj["exception.type"]
    assert "'the key'" == obj["exception.value"]
    assert (
        "Traceback (most recent call last):\n  File 'a.py', line 1\nKeyError: 'the key'"
        == (obj["exception.traceback"])
    )


@pytest.mark.parametrize(
    "name",
    [
        "level",
        "_msg",
        "_time",
        "_stream",
        "_stream_id",
        "_private",
        "service",
        "host",
        "exception",
        "exception.type",
        "extra",
        "extra.overflow",
        "message_size",
        "original_time",
        "encode_error",
    ],
)
def test_extra_named_like_a_builtin_or_reserved_field_moves_under_extra(name: str) -> None:
    """The extra is stored as extra.<name>; the built-in keeps its own value."""
    record, text = record_of(lambda: logger.bind(**{name: "fake"}).warning("real"))
    encoder = RecordEncoder(static_fields=STATIC)
    obj = assert_within_limits(encoder.encode(record, text))
    assert "fake" == obj[f"extra.{name}"]
    assert "real" == obj["_msg"]
    assert "WARNING" == obj["level"]
    assert "api" == obj["service"]
    assert 1 == encoder.repairs["extra_renamed"]


def test_extra_holding_a_mapping_cannot_fake_a_nested_builtin() -> None:
    """exception={"type": ...} would flatten to exception.type: it moves under extra."""
    record, text = record_of(lambda: logger.bind(exception={"type": "Fake"}).info("m"))
    obj = encode(record, text)
    assert "Fake" == obj["extra.exception.type"]
    assert "exception.type" not in obj


def test_static_fields_follow_the_builtins_in_order() -> None:
    """Static fields keep their order; a nested static mapping is flattened with dots."""
    static = {"env": "prod", "app": {"name": "shop", "version": 3}, "service": "api"}
    record, text = record_of(lambda: logger.bind(k="v").info("m"))
    obj = encode(record, text, static_fields=static)
    assert [*CORE, "env", "app.name", "app.version", "service", "k"] == list(obj)
    assert {"env": "prod", "app.name": "shop", "app.version": 3, "service": "api"} == {
        k: obj[k] for k in ("env", "app.name", "app.version", "service")
    }


def test_extra_colliding_with_a_nested_static_field_moves_under_extra() -> None:
    """A static app.name reserves 'app' for extras too."""
    record, text = record_of(lambda: logger.bind(app={"name": "evil"}).info("m"))
    obj = encode(record, text, static_fields={"app": {"name": "shop"}})
    assert "shop" == obj["app.name"]
    assert "evil" == obj["extra.app.name"]


@pytest.mark.parametrize(
    ("static", "message"),
    [
        ({"level": "x"}, r"^Invalid static_fields: the key 'level' names a built-in field$"),
        (
            {"exception": "x"},
            r"^Invalid static_fields: the key 'exception' names a built-in field$",
        ),
        ({"_env": "x"}, r"^Invalid static_fields: the key '_env' is reserved$"),
        ({"extra": "x"}, r"^Invalid static_fields: the key 'extra' is reserved$"),
        ({"": "x"}, r"^Invalid static_fields: the key '' is empty$"),
        ({"a\nb": "x"}, r"^Invalid static_fields: the key 'a\\nb' contains control characters$"),
        (
            {"k" * 129: "x"},
            r"^Invalid static_fields: a flattened key is longer than 128 bytes or names a "
            r"built-in field: 'k+'$",
        ),
        (
            {"big": "x" * 70_000},
            r"^Invalid static_fields: their JSON text should stay under a quarter of "
            r"max_line_bytes \(65280 bytes\)$",
        ),
    ],
)
def test_invalid_static_fields_are_rejected(static: dict[str, object], message: str) -> None:
    """Static fields are checked once, at construction, with a message naming the key."""
    with pytest.raises(ValueError, match=message):
        RecordEncoder(static_fields=static)


def test_static_field_key_must_be_a_string() -> None:
    """A non-str static key is a TypeError."""
    with pytest.raises(TypeError, match=r"^Invalid static_fields: keys should be str, not: int$"):
        RecordEncoder(static_fields={1: "x"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"max_line_bytes": 1000},
            ValueError,
            r"^Invalid max_line_bytes: it should be between 8192 and 262143, not: 1000$",
        ),
        (
            {"max_line_bytes": 256 * 1024},
            ValueError,
            r"^Invalid max_line_bytes: it should be between 8192 and 262143, not: 262144$",
        ),
        (
            {"max_line_bytes": 1.5},
            TypeError,
            r"^Invalid max_line_bytes: it should be an int, not: float$",
        ),
        (
            {"max_fields": 1001},
            ValueError,
            r"^Invalid max_fields: it should be between 64 and 1000, not: 1001$",
        ),
        ({"max_fields": True}, TypeError, r"^Invalid max_fields: it should be an int, not: bool$"),
        (
            {"max_message_bytes": 10},
            ValueError,
            r"^Invalid max_message_bytes: it should be between 256 and 261120, not: 10$",
        ),
        (
            {"time_window": (1.0,)},
            ValueError,
            r"^Invalid time_window: it should be None or a \(max_age, max_future\) tuple of non-negative seconds, not: \(1\.0,\)$",
        ),
        ({"time_window": (-1, 5)}, ValueError, r"^Invalid time_window: .* not: \(-1, 5\)$"),
        (
            {"static_fields": ["a"]},
            TypeError,
            r"^Invalid static_fields: it should be a mapping of str to values, not: list$",
        ),
    ],
)
def test_invalid_options_are_rejected(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every option is validated at construction."""
    with pytest.raises(error, match=message):
        RecordEncoder(**options)


def test_defaults_stay_inside_the_server_limits() -> None:
    """The defaults leave a margin below 256 KiB and 1000 fields."""
    assert 255 * 1024 == DEFAULT_MAX_LINE_BYTES
    assert 990 == DEFAULT_MAX_FIELDS
    assert 128 == MAX_KEY_BYTES


def test_repairs_start_at_zero_for_every_documented_reason() -> None:
    """stats() can show every reason, even those that never happened."""
    assert dict.fromkeys(REPAIR_REASONS, 0) == RecordEncoder().repairs


def test_repairs_count_records_not_values() -> None:
    """Two records with two converted values each count 2, not 4."""
    encoder = RecordEncoder()
    with capture() as messages:
        for _ in range(2):
            logger.bind(a={1, 2}, b=b"x").info("m")
    for message in messages:
        encoder.encode(message.record, str(message))
    assert 2 == encoder.repairs["value_converted"]
    assert {"value_converted": 2} == {k: v for k, v in encoder.repairs.items() if v}


def test_plain_record_needs_no_repair() -> None:
    """A typical record leaves every counter at zero."""
    encoder = RecordEncoder()
    record, text = record_of(lambda: logger.bind(a=1, b="x", c=1.5, d=True, e=None).info("m"))
    encoder.encode(record, text)
    assert dict.fromkeys(REPAIR_REASONS, 0) == encoder.repairs


def test_none_is_sent_as_text_and_empty_string_as_is() -> None:
    """The server drops null: None becomes "null"; "" is sent (VictoriaLogs treats it as absent)."""
    record, text = record_of(lambda: logger.bind(a=None, b="").info("m"))
    obj = encode(record, text)
    assert ("null", "") == (obj["a"], obj["b"])


def test_empty_message_is_replaced_by_a_visible_placeholder() -> None:
    """An empty _msg would be stored as the server's 'missing _msg field' text."""
    encoder = RecordEncoder()
    record, text = record_of(lambda: logger.info(""))
    obj = assert_within_limits(encoder.encode(record, text))
    assert "(empty message)" == obj["_msg"]
    assert 1 == encoder.repairs["message_empty"]


def test_max_message_bytes_truncates_with_marker_and_size() -> None:
    """The message keeps max_message_bytes bytes (marker included); message_size is the original."""
    message = "é" * 1000  # 2000 bytes
    encoder = RecordEncoder(max_message_bytes=300)
    record, text = record_of(lambda: logger.opt(raw=True).info(message))
    obj = assert_within_limits(encoder.encode(record, text))
    kept = obj["_msg"]
    assert len(kept.encode()) <= 300
    match = MARKER.search(kept)
    assert match is not None
    prefix = kept[: match.start()]
    assert message.startswith(prefix)
    assert 2000 - len(prefix.encode()) == int(match.group(1))
    assert 2000 == obj["message_size"]
    assert list(obj).index("message_size") == len(CORE)
    assert 1 == encoder.repairs["message_truncated"]


def test_loguru_call_variants_all_encode() -> None:
    """lazy, raw, depth, custom levels, patch, bind, contextualize and kwargs all land."""
    logger.level("AUDIT", no=25)

    def caller() -> None:
        logger.opt(depth=1).info("depth")

    with capture(level="DEBUG") as messages:
        logger.opt(lazy=True).debug("lazy {}", lambda: 41 + 1)
        logger.opt(raw=True).info("raw\n")
        caller()
        logger.log("AUDIT", "custom")
        logger.patch(lambda r: r["extra"].update(patched=True)).info("patched")
        with logger.contextualize(request_id="r-1"):
            logger.bind(user="u").info("ctx {x}", x=5)
    objs = [encode(m.record, str(m)) for m in messages]
    assert ["lazy 42", "raw\n", "depth", "custom", "patched", "ctx 5"] == [o["_msg"] for o in objs]
    assert "test_loguru_call_variants_all_encode" == objs[2]["function"]
    assert ("AUDIT", 25) == (objs[3]["level"], objs[3]["level_no"])
    assert objs[4]["patched"] is True
    assert {"request_id": "r-1", "user": "u", "x": 5} == {
        k: objs[5][k] for k in ("request_id", "user", "x")
    }


def test_fast_and_careful_paths_agree_on_plain_records() -> None:
    """The careful path renders a plain record byte for byte like the fast path."""
    encoder = RecordEncoder(static_fields=STATIC)
    zone = dt.timezone(dt.timedelta(hours=-7))
    whole_second = dt.datetime.now(zone).replace(microsecond=0)
    with capture() as messages:
        logger.bind(a=1, b="two", c=3.5, d=False, e=None).info("m")
        logger.patch(at(whole_second)).info("zero fraction")
        logger.bind(tags=["a", 1, None, True, 2.5], pair=(1, 2), empty=[]).info("lists")
        logger.bind(user={"id": 7, "name": "bob", "roles": ["x"], "none": None}).info("dict")
    for message in messages:
        fast = encoder._encode_fast(message.record, None)
        assert fast is not None
        assert fast == encoder._encode_careful(message.record, None, 64)


def test_stored_row_matches_the_documented_fields() -> None:
    """As the server would store it: every value text, None as "null", nothing dropped."""
    record, text = record_of(lambda: logger.bind(n=None, t=True, i=7).info("m"))
    row = stored_fields(RecordEncoder().encode(record, text))
    assert {"n": "null", "t": "true", "i": "7"} == {k: row[k] for k in ("n", "t", "i")}


def test_builtin_fields_constant_lists_every_field_the_encoder_may_write() -> None:
    """BUILTIN_FIELDS is the schema: the core fields in order, then the conditional ones."""
    assert CORE == list(BUILTIN_FIELDS[:14])
    assert "extra.overflow" in BUILTIN_FIELDS


def test_shortened_key_is_the_prefix_and_a_hash() -> None:
    """A 200-byte key keeps 119 bytes, then '~' and 8 hex digits of its SHA-256."""
    key = "k" * 200
    record, text = record_of(lambda: logger.bind(**{key: "v"}).info("m"))
    obj = encode(record, text)
    expected = "k" * 119 + "~" + hashlib.sha256(key.encode()).hexdigest()[:8]
    assert "v" == obj[expected]
    assert 128 == len(expected)


def test_line_is_one_json_object_without_newline() -> None:
    """The encoder returns bytes of one object; the sink adds the newline."""
    record, text = record_of(lambda: logger.info("a\nb"))
    line = RecordEncoder().encode(record, text)
    assert line.startswith(b"{")
    assert line.endswith(b"}")
    assert {"_msg": "a\nb"}.items() <= orjson.loads(line).items()
