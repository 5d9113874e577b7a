"""Hostile records (issue 5): every one encodes, inside every server limit, the same each time."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import time
from typing import Any

import orjson
import pytest
from loguru import logger

from loguru_vlogs._record import RecordEncoder

from .corpus.hostile_values import CASES, NASTY_RECORDS, Case, NastyRecord, generator
from .corpus.record_checks import MARKER, assert_within_limits, capture, record_of, server_pairs


def encode_twice(record: dict[str, Any], text: str | None = None, **options: Any) -> bytes:
    """Encode with two fresh encoders: the same record must give the same bytes."""
    first = RecordEncoder(**options).encode(record, text)
    second = RecordEncoder(**options).encode(record, text)
    assert first == second
    return first


def fields_of(obj: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k == prefix or k.startswith(prefix + ".")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_extra_value_lands_inside_every_limit(case: Case) -> None:
    """Valid JSON, inside the limits, stable, rendered by the documented rule, in bounded time."""
    value = case.make()
    record, text = record_of(lambda: logger.bind(v=value).info("m"))
    line = encode_twice(record, text)
    obj = assert_within_limits(line)
    assert "m" == obj["_msg"]
    if case.expected is not None:
        assert case.expected == fields_of(obj, "v")


def test_hostile_value_renders_the_same_for_equal_values() -> None:
    """Rendering is stable: equal values built separately give the same text."""
    for case in CASES:
        if case.expected is None:  # the big ones: test_hostile_extra_value_... covers them
            continue
        lines = []
        for _ in range(2):
            value = case.make()
            record, _text = record_of(lambda value=value: logger.bind(v=value).info("m"))
            record["time"] = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
            record["elapsed"] = dt.timedelta(0)
            lines.append(RecordEncoder(time_window=None).encode(record))
        assert lines[0] == lines[1], case.id


def test_big_int_beyond_decimal_conversion_limit_becomes_hex() -> None:
    """An int with more digits than Python converts to decimal is written in hexadecimal."""
    record, text = record_of(lambda: logger.bind(v=10**5000).info("m"))
    obj = assert_within_limits(encode_twice(record, text))
    if sys.version_info >= (3, 11):  # 3.10 before 3.10.7 has no digit limit
        assert obj["v"].startswith("0x")
    assert len(obj["v"]) > 4000


def test_deep_nesting_is_flattened_ten_levels_then_kept_as_json_text() -> None:
    """50 levels: ten key levels become the field name, the rest is one JSON text."""
    from .corpus.hostile_values import nested

    record, text = record_of(lambda: logger.bind(v=nested(50)).info("m"))
    obj = assert_within_limits(encode_twice(record, text))
    key = "v" + ".a" * 9  # "v" is level 1: nine more key levels
    inner = orjson.loads(obj[key])
    for _ in range(50 - 9):
        inner = inner["a"]
    assert "deep" == inner


def test_nesting_beyond_the_depth_limit_is_marked() -> None:
    """5000 nested lists: kept up to the depth limit, then '<too deep>'."""
    from .corpus.hostile_values import nested_lists

    encoder = RecordEncoder()
    record, text = record_of(lambda: logger.bind(v=nested_lists(5000)).info("m"))
    obj = assert_within_limits(encoder.encode(record, text))
    assert '"<too deep>"' in obj["v"]
    assert 1 == encoder.repairs["structure_limited"]


def test_generator_is_rendered_without_being_consumed() -> None:
    """Logging a generator must not advance it."""
    gen = generator()
    record, text = record_of(lambda: logger.bind(v=gen).info("m"))
    obj = assert_within_limits(RecordEncoder().encode(record, text))
    assert obj["v"].startswith("<generator object")
    assert [0, 1, 2] == list(gen)


def test_huge_list_is_cut_with_a_count_of_what_was_left() -> None:
    """A million items: rendering stops at the node budget and says how many were left."""
    record, text = record_of(lambda: logger.bind(v=list(range(1_000_000))).info("m"))
    obj = assert_within_limits(RecordEncoder().encode(record, text))
    assert obj["v"].startswith("[0,1,2,")
    assert MARKER.search(obj["v"]) or "more]" in obj["v"]


def test_real_numpy_values_are_converted() -> None:
    """numpy scalars become Python numbers, arrays JSON lists (numpy is never imported by us)."""
    np = pytest.importorskip("numpy")
    record, text = record_of(
        lambda: logger.bind(
            i=np.int64(5), f=np.float32(0.5), b=np.bool_(True), a=np.arange(3)
        ).info("m")
    )
    obj = assert_within_limits(RecordEncoder().encode(record, text))
    assert (5, 0.5, True, "[0,1,2]") == (obj["i"], obj["f"], obj["b"], obj["a"])


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("a\ud800b", "a\ufffdb"),
        ("nul\x00", "nul\x00"),
        ("\ud83d\ude80", "\U0001f680"),
        ("line\r\nline", "line\r\nline"),
    ],
)
def test_hostile_message_text_is_made_valid(message: str, expected: str) -> None:
    """Lone surrogates become U+FFFD (pairs are joined); NUL and newlines are kept."""
    record, text = record_of(lambda: logger.opt(raw=True).info(message))
    assert expected == assert_within_limits(encode_twice(record, text))["_msg"]


def test_300kb_message_is_truncated_with_marker_and_original_size() -> None:
    """The message keeps at least half the line, ends with the marker, records its size."""
    message = "m" * 300_000
    encoder = RecordEncoder()
    record, text = record_of(lambda: logger.opt(raw=True).info(message))
    obj = assert_within_limits(encoder.encode(record, text))
    match = MARKER.search(obj["_msg"])
    assert match is not None
    kept = obj["_msg"][: match.start()]
    assert message.startswith(kept)
    assert len(kept) > 200_000  # nothing else needs the room
    assert 300_000 - len(kept) == int(match.group(1))
    assert 300_000 == obj["message_size"]
    assert 1 == encoder.repairs["message_truncated"]


def test_huge_traceback_is_truncated_with_its_size() -> None:
    """A traceback bigger than the line is cut like the message; exception.traceback_size."""
    huge = "x" * 400_000

    def log() -> None:
        try:
            raise ValueError(huge)
        except ValueError:
            logger.exception("failed")

    encoder = RecordEncoder()
    record, text = record_of(log)
    obj = assert_within_limits(encoder.encode(record, text))
    assert "failed" == obj["_msg"]
    assert MARKER.search(obj["exception.traceback"])
    assert obj["exception.traceback_size"] > 400_000
    assert MARKER.search(obj["exception.value"])
    assert 1 == encoder.repairs["traceback_truncated"]
    order = list(obj)
    assert order.index("exception.traceback_size") == order.index("exception.traceback") + 1


def test_2000_extras_overflow_into_one_json_text_field() -> None:
    """Past max_fields, the surplus (the last extras) goes into extra.overflow, in order."""
    extras = {f"k{i}": i for i in range(2000)}
    encoder = RecordEncoder()
    record, text = record_of(lambda: logger.bind(**extras).info("m"))
    obj = assert_within_limits(encoder.encode(record, text))
    kept = [k for k in obj if k.startswith("k")]
    overflow = orjson.loads(obj["extra.overflow"])
    assert [f"k{i}" for i in range(2000)] == kept + list(overflow)
    assert list(range(len(kept), 2000)) == list(overflow.values())
    assert "extra.overflow" == list(obj)[-1]
    assert 1 == encoder.repairs["fields_overflow"]


def test_2000_extras_of_100kb_fit_with_the_biggest_cut_evenly() -> None:
    """Every kept value is cut to the same size (biggest first), deterministically."""
    extras = {f"k{i}": chr(ord("a") + i % 26) * 100_000 for i in range(2000)}
    record, text = record_of(lambda: logger.bind(**extras).info("short message"))
    line = encode_twice(record, text)
    obj = assert_within_limits(line)
    assert "short message" == obj["_msg"]
    sizes = {len(v) for k, v in obj.items() if k.startswith("k")}
    assert max(sizes) - min(sizes) <= 1
    assert MARKER.search(obj["k0"])
    assert len(line) > 250_000  # the room is used, not wasted


def test_small_values_are_not_cut_when_one_value_is_huge() -> None:
    """Biggest first: one 1 MB extra is cut, its small neighbours are untouched."""
    record, text = record_of(lambda: logger.bind(a="small", big="x" * 1_000_000, z=12).info("m"))
    obj = assert_within_limits(encode_twice(record, text))
    assert ("small", 12) == (obj["a"], obj["z"])
    match = MARKER.search(obj["big"])
    assert match is not None
    assert 1_000_000 == len(obj["big"][: match.start()]) + int(match.group(1))


def test_many_long_escaped_keys_still_fit_the_line() -> None:
    """990 keys of 128 bytes that double when escaped: fields move to the overflow text."""
    extras = {f"{i:04d}{chr(34) * 124}": "v" * 200 for i in range(1500)}
    record, text = record_of(lambda: logger.bind(**extras).info("m"))
    obj = assert_within_limits(encode_twice(record, text))
    assert "extra.overflow" in obj


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("k" * 200, "k" * 119 + "~" + hashlib.sha256(b"k" * 200).hexdigest()[:8]),
        ("é" * 100, "é" * 59 + "~" + hashlib.sha256(("é" * 100).encode()).hexdigest()[:8]),
        ("a\nb", "a\\nb"),
        ("", "(empty)"),
        ("k\ud800", "k\ufffd"),
        ("_msg", "extra._msg"),
        ("_time", "extra._time"),
        ("_stream", "extra._stream"),
        ("_stream_id", "extra._stream_id"),
        ("level", "extra.level"),
        ("a.b", "a.b"),
    ],
)
def test_hostile_extra_key_is_stored_at_its_documented_name(key: str, expected: str) -> None:
    """Long keys are shortened with a hash, control characters escaped, reserved names moved."""
    record, text = record_of(lambda: logger.bind(**{key: "v"}).info("m"))
    obj = assert_within_limits(encode_twice(record, text))
    assert "v" == obj[expected]
    assert len(expected.encode()) <= 128


def test_dotted_key_and_nested_mapping_do_not_share_a_column() -> None:
    """{"a.b": 1} and a={"b": 2} flatten to the same name: the later one gets "~2"."""
    encoder = RecordEncoder()
    record, text = record_of(lambda: logger.bind(**{"a.b": 1}, a={"b": 2}).info("m"))
    obj = assert_within_limits(encoder.encode(record, text))
    assert (1, 2) == (obj["a.b"], obj["a.b~2"])
    assert 1 == encoder.repairs["key_deduplicated"]


def test_non_str_top_level_extra_key_is_rendered_as_text() -> None:
    """A patch() can put any key in extra: it is named by its rendering."""
    record, text = record_of(
        lambda: logger.patch(lambda r: r["extra"].update({1: "one", None: "none"})).info("m")
    )
    obj = assert_within_limits(encode_twice(record, text))
    assert ("one", "none") == (obj["1"], obj["null"])


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        ({"message": None}, {"_msg": "null"}),
        ({"message": b"raw bytes"}, {"_msg": "raw bytes"}),
        ({"message": 12}, {"_msg": "12"}),
        ({"level": "CUSTOM"}, {"level": "CUSTOM", "level_no": None}),
        ({"extra": "not a mapping"}, {"extra.extra": "not a mapping"}),
        ({"extra": None}, {}),
        ({"exception": "weird"}, {"exception.type": "str", "exception.value": "weird"}),
        ({"name": None, "line": "x", "function": object}, {"logger": None, "line": "x"}),
        ({"file": None, "process": None, "thread": None, "elapsed": None}, {"file": None}),
        ({"level": None, "message": ""}, {"_msg": "(empty message)", "level": None}),
    ],
    ids=repr,
)
def test_record_fields_of_any_type_encode(patch: dict[str, Any], check: dict[str, Any]) -> None:
    """A record whose fields hold anything (loguru itself would refuse some) still encodes."""
    record, text = record_of(lambda: logger.info("m"))
    record.update(patch)
    obj = assert_within_limits(encode_twice(record, text))
    assert check == {k: obj.get(k) for k in check}


@pytest.mark.parametrize(
    ("moment", "original"),
    [
        ("garbage", "garbage"),
        (None, "null"),
        (["x"], '["x"]'),
        ("2026-13-45T99:99:99", "2026-13-45T99:99:99"),
    ],
)
def test_unusable_record_time_becomes_now_and_keeps_the_original(
    moment: object, original: str
) -> None:
    """A time that is not a time: _time is the encoding time, original_time keeps the text."""
    record, text = record_of(lambda: logger.patch(lambda r: r.update(time=moment)).info("m"))
    encoder = RecordEncoder()
    obj = assert_within_limits(encoder.encode(record, text))
    assert original == obj["original_time"]
    assert abs(dt.datetime.fromisoformat(obj["_time"]).timestamp() - time.time()) < 60
    assert 1 == encoder.repairs["time_adjusted"]


@pytest.mark.parametrize("moment", [time.time() - 60, dt.date.today(), "2026-11-20T08:15:30"])
def test_record_time_of_another_type_is_converted(moment: object) -> None:
    """Epoch seconds, a date, an ISO string: converted to an aware time."""
    record, text = record_of(lambda: logger.patch(lambda r: r.update(time=moment)).info("m"))
    encoder = RecordEncoder(time_window=None)
    obj = assert_within_limits(encoder.encode(record, text))
    assert "original_time" not in obj
    assert 1 == encoder.repairs["time_converted"]


@pytest.mark.parametrize("record", [None, 42, "text", [], {}, {"message": object()}])
def test_anything_passed_as_a_record_gives_a_line(record: Any) -> None:
    """Even a record that is not a mapping gives one valid line (the fallback)."""
    line = RecordEncoder().encode(record, None)
    obj = assert_within_limits(line)
    assert obj["_msg"]


def test_fallback_line_names_the_error_and_is_counted() -> None:
    """A non-mapping record takes the last-resort line with encode_error."""
    encoder = RecordEncoder()
    obj = assert_within_limits(encoder.encode(42, None))  # type: ignore[arg-type]
    assert obj["encode_error"].startswith("AttributeError: ")
    assert {"_msg", "_time", "level", "encode_error"} == set(obj)
    assert 1 == encoder.repairs["encode_fallback"]


def test_encoding_from_deep_recursion_still_gives_a_line() -> None:
    """Logged near the recursion limit: the encoder retries shallower instead of failing."""
    value = {"a": [{"b": [1, {"c": [2, 3]}]}] * 3}
    record, text = record_of(lambda: logger.bind(v=value).info("m"))
    results: list[bytes] = []

    def descend(depth: int) -> None:
        if depth > 0:
            descend(depth - 1)
        else:
            results.append(RecordEncoder().encode(record, text))

    room = sys.getrecursionlimit() - len(_stack()) - 40
    descend(room)
    obj = assert_within_limits(results[0])
    assert "m" == obj["_msg"]


def _stack() -> list[object]:
    frames = []
    frame = sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back  # type: ignore[assignment]
    return frames


@pytest.mark.parametrize(("max_line_bytes", "max_fields"), [(8192, 64), (20_000, 100)])
def test_custom_limits_are_respected_with_hostile_content(
    max_line_bytes: int, max_fields: int
) -> None:
    """Small limits hold too: many extras, a big message, a big value."""
    extras = {f"k{i}": "v" * 500 for i in range(300)}
    record, text = record_of(lambda: logger.bind(**extras, big="b" * 50_000).info("x" * 30_000))
    line = encode_twice(record, text, max_line_bytes=max_line_bytes, max_fields=max_fields)
    assert_within_limits(line, max_line_bytes=max_line_bytes, max_fields=max_fields)


def test_every_corpus_value_at_once_still_fits() -> None:
    """All the hostile values in one record, with an exception and a hostile message."""
    extras = {case.id: case.make() for case in CASES}

    def log() -> None:
        try:
            raise KeyError("\ud800")
        except KeyError:
            logger.bind(**extras).exception("all\x00at\ud800once")

    record, text = record_of(log)
    obj = assert_within_limits(encode_twice(record, text))
    assert "all\x00at\ufffdonce" == obj["_msg"]
    assert len(server_pairs(orjson.dumps(obj))) <= 990


def test_hostile_records_through_enqueue_encode() -> None:
    """Records that crossed a process queue (traceback None) are encoded the same way."""
    with capture(enqueue=True) as messages:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.bind(v={"k": [1, 2]}).exception("queued")
        logger.complete()
    (message,) = messages
    obj = assert_within_limits(RecordEncoder().encode(message.record, str(message)))
    assert obj["exception.traceback"].startswith("Traceback (most recent call last):")
    assert "[1,2]" == obj["v.k"]


def test_huge_bytes_marker_counts_every_removed_byte() -> None:
    """500 KB of invalid UTF-8 renders as \\xfe text (2 MB); the marker counts all of it."""
    record, text = record_of(lambda: logger.bind(v=b"\xfe" * 500_000).info("m"))
    obj = assert_within_limits(RecordEncoder().encode(record, text))
    match = MARKER.search(obj["v"])
    assert match is not None
    assert 2_000_000 == len(obj["v"][: match.start()]) + int(match.group(1))


@pytest.mark.parametrize("nasty", NASTY_RECORDS, ids=[n.id for n in NASTY_RECORDS])
def test_nasty_record_from_the_corpus_encodes(nasty: NastyRecord) -> None:
    """The hardest records found so far: inside the limits, stable, named by the rules."""
    record, text = record_of(lambda: logger.info("m"))
    record["message"] = nasty.message
    record["extra"] = nasty.make_extra()
    obj = assert_within_limits(encode_twice(record, text))
    assert "encode_error" not in obj
    if nasty.expected is not None:
        assert nasty.expected == {k: obj[k] for k in nasty.expected}


def test_extra_named_like_the_overflow_field_gets_a_suffix() -> None:
    """With a static field 'overflow', an extra 'overflow' is renamed to a free name."""
    record, text = record_of(lambda: logger.bind(overflow=1).info("m"))
    obj = assert_within_limits(RecordEncoder(static_fields={"overflow": 0}).encode(record, text))
    assert (0, 1) == (obj["overflow"], obj["extra.overflow~2"])
