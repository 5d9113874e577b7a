"""The storage model of the test receiver: VictoriaLogs v1.52.2 ingestion and queries, no sockets."""

from __future__ import annotations

import gzip
import inspect
import json
import re
import sys
import urllib.request
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loguru_vlogs.testing import FakeVictoriaLogs, RealVictoriaLogs
from loguru_vlogs.testing._block import (
    Block,
    build_block,
    format_float64,
    heap_order,
    merge_stream,
    parse_float64_exact,
)
from loguru_vlogs.testing._gojson import (
    JSONLineError,
    go_quote,
    parse_line,
    parse_line_with_fastjson_port,
)
from loguru_vlogs.testing._gotime import format_rfc3339_nano, go_day, parse_rfc3339
from loguru_vlogs.testing._ingest import DEFAULT_MSG_VALUE, _snappy_decode
from loguru_vlogs.testing._logsql import LogsQLError
from loguru_vlogs.testing._store import IngestResult, MergeResult, Store, partition_name

NOW = parse_rfc3339(b"2026-11-20T12:00:00Z", 0) or 0
NOW_TEXT = "2026-11-20T12:00:00Z"
T = "2026-11-20T08:15:30Z"


def make_store(**options: Any) -> Store:
    options.setdefault("retention", None)
    options.setdefault("timezone_offset", 0)
    return Store(**options)


def ingest(
    store: Store,
    *lines: Any,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> IngestResult:
    """Send JSON lines (dicts are encoded, bytes sent as is) at the fixed NOW."""
    if body is None:
        body = b"\n".join(
            line if isinstance(line, bytes) else json.dumps(line).encode() for line in lines
        )
    return store.ingest(query=query, headers=headers or {}, body=body, now_ns=NOW)


def stored(*lines: Any, **kwargs: Any) -> list[dict[str, str]]:
    """The rows a fresh store keeps from one request (tenant 0:0), without ``_stream_id``."""
    store = make_store()
    ingest(store, *lines, **kwargs)
    rows = store.rows()
    for row in rows:
        del row["_stream_id"]
    return rows


# -- parameters ---------------------------------------------------------------------------


def test_query_args_win_over_vl_headers() -> None:
    """``_msg_field`` in the URL beats ``VL-Msg-Field``; an empty arg falls back to the header."""
    line = {"a": "from a", "b": "from b", "_time": T}
    assert "from a" == stored(line, query="_msg_field=a", headers={"VL-Msg-Field": "b"})[0]["_msg"]
    assert "from b" == stored(line, query="_msg_field=", headers={"VL-Msg-Field": "b"})[0]["_msg"]


def test_list_items_are_trimmed_and_empty_ones_dropped() -> None:
    """``a, ,b`` names the fields ``a`` and ``b`` (items trimmed, empty ones dropped, no escaping)."""
    row = stored({"_msg": "m", "a": "1", "b": "2"}, query="_stream_fields=a,%20,%20b%20")[0]
    assert '{a="1",b="2"}' == row["_stream"]


@pytest.mark.parametrize("name", ["a=b", "a}b"])
def test_stream_field_names_with_equals_or_brace_are_400(name: str) -> None:
    """``=`` and ``}`` cannot be parsed back from ``_stream``: the request is refused."""
    result = ingest(make_store(), {"_msg": "m"}, query=f"_stream_fields=x,{name}")
    char = name[1]
    assert (400, 0) == (result.status, result.stored)
    assert result.body == (
        "cannot parse stream field names from the _stream_fields query arg or from "
        f"VL-Stream-Fields header: the {go_quote(name)} cannot contain '{char}' char\n"
    )


def test_preserve_json_keys_keep_objects_as_json_text() -> None:
    """``preserve_json_keys=ctx,a.b``: those objects are stored whole, the rest flattened."""
    row = stored(
        {"_msg": "m", "ctx": {"x": 1, "y": {"z": [1, "a"]}}, "a": {"b": {"c": 1}, "d": {"e": 2}}},
        query="preserve_json_keys=ctx,a.b",
    )[0]
    assert ('{"x":1,"y":{"z":[1,"a"]}}', '{"c":1}', "2") == (row["ctx"], row["a.b"], row["a.d.e"])


def test_extra_fields_override_the_data_and_can_be_stream_fields() -> None:
    """``extra_fields`` replace same-named data fields and join ``_stream`` when listed there."""
    row = stored(
        {"_msg": "m", "env": "dev"}, query="extra_fields=env=prod,dc=eu&_stream_fields=dc"
    )[0]
    assert ("prod", "eu", '{dc="eu"}') == (row["env"], row["dc"], row["_stream"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "extra_fields=k",
            r'^invalid extra_field format: "k"; must be in the form "field=value"\n$',
        ),
        (
            "extra_fields==v",
            r'^invalid extra_field format: "=v"; must be in the form "field=value"\n$',
        ),
        (
            "debug=yes",
            r'^cannot parse debug="yes": strconv.ParseBool: parsing "yes": invalid syntax\n$',
        ),
    ],
)
def test_bad_parameters_are_rejected_with_the_servers_text(query: str, message: str) -> None:
    """A malformed ``extra_fields`` or ``debug`` answers 400 with VictoriaLogs' wording."""
    result = ingest(make_store(), {"_msg": "m"}, query=query)
    assert (400, 0) == (result.status, result.stored)
    assert re.match(message, result.body)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            {"AccountID": "abc"},
            r'^cannot parse "abc" as uint32: strconv.ParseUint: parsing "abc": invalid syntax\n$',
        ),
        (
            {"ProjectID": "-1"},
            r'^cannot parse "-1" as uint32: strconv.ParseUint: parsing "-1": invalid syntax\n$',
        ),
        (
            {"AccountID": "4294967296"},
            r'^cannot parse "4294967296" as uint32: strconv.ParseUint: parsing "4294967296": value out of range\n$',
        ),
    ],
)
def test_bad_tenant_headers_answer_400(headers: dict[str, str], message: str) -> None:
    """Tenant headers must be uint32."""
    result = ingest(make_store(), {"_msg": "m"}, headers=headers)
    assert (400, 0) == (result.status, result.stored)
    assert re.match(message, result.body)


def test_tenants_are_isolated() -> None:
    """Rows of one AccountID/ProjectID are invisible to the others."""
    store = make_store()
    ingest(store, {"_msg": "a"}, headers={"AccountID": "1", "ProjectID": "2"})
    ingest(store, {"_msg": "b"})
    assert ["a"] == [r["_msg"] for r in store.rows(account_id=1, project_id=2)]
    assert ["b"] == [r["_msg"] for r in store.rows()]
    assert 0 == store.count(account_id=2, project_id=1)


def test_debug_rows_are_not_stored() -> None:
    """``debug=1`` (or ``VL-Debug: true``) answers 200 and stores nothing."""
    store = make_store()
    assert 200 == ingest(store, {"_msg": "m"}, query="debug=1").status
    assert 200 == ingest(store, {"_msg": "m"}, headers={"VL-Debug": "true"}).status
    assert 0 == store.count()


def test_ignore_fields_accept_prefix_wildcards_and_can_drop_msg() -> None:
    """``ignore_fields=x.*,_msg`` drops the prefix and leaves the default message."""
    row = stored({"_msg": "m", "x": {"a": 1}, "xy": "kept"}, query="ignore_fields=x.*,_msg")[0]
    assert {"_time": NOW_TEXT, "_stream": "{}", "_msg": DEFAULT_MSG_VALUE, "xy": "kept"} == row


def test_decolorize_fields_strip_ansi_sequences() -> None:
    """``decolorize_fields`` removes ``ESC [ ... m`` colour codes from the named fields."""
    row = stored(
        {"_msg": "\x1b[31mred\x1b[0m", "c": "\x1b[1mbold"}, query="decolorize_fields=_msg"
    )[0]
    assert ("red", "\x1b[1mbold") == (row["_msg"], row["c"])


def test_msg_field_list_takes_the_first_non_empty_candidate() -> None:
    """``_msg_field=a,b`` skips an empty ``a``."""
    assert "B" == stored({"a": "", "b": "B"}, query="_msg_field=a,b")[0]["_msg"]


def test_a_custom_time_field_drops_a_data_time_key_with_a_warning() -> None:
    """With ``_time_field=ts`` a ``_time`` key in the data is not stored (the server logs it)."""
    store = make_store()
    result = ingest(
        store, {"_msg": "m", "_time": "2026-01-01T00:00:00Z", "ts": T}, query="_time_field=ts"
    )
    pairs = store.select()[0]
    assert [("_time", T)] == [p for p in pairs if p[0] == "_time"]
    assert any(
        w.startswith('skipping _time field with the value "2026-01-01') for w in result.warnings
    )


def test_form_content_type_eats_the_body() -> None:
    """``application/x-www-form-urlencoded`` (urllib's default) stores nothing, answers 200."""
    store = make_store()
    result = ingest(
        store, {"_msg": "m"}, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (200, 0, {"form_body": 1}) == (result.status, store.count(), dict(result.dropped))


def test_read_only_storage_answers_429() -> None:
    """A read-only server (disk nearly full) refuses inserts with 429."""
    store = make_store()
    store.read_only = True
    result = ingest(store, {"_msg": "m"})
    assert (429, 0) == (result.status, store.count())


def test_only_post_is_accepted() -> None:
    """Any other method on ``/insert/jsonline`` is 405."""
    assert 405 == make_store().ingest(method="GET", body=b"").status


# -- content encodings --------------------------------------------------------------------

LINE = b'{"_msg":"enc","_time":"2026-11-20T08:15:30Z"}\n'


def snappy_block(data: bytes) -> bytes:
    """The simplest valid snappy block: the length, then one literal."""
    assert len(data) < 60
    return bytes([len(data)]) + bytes([(len(data) - 1) << 2]) + data


@pytest.mark.parametrize(
    ("encoding", "body", "rows"),
    [
        ("gzip", gzip.compress(LINE), 1),
        ("gzip", gzip.compress(LINE) + gzip.compress(LINE), 2),
        ("deflate", zlib.compress(LINE), 1),
        ("snappy", snappy_block(LINE), 1),
        ("none", LINE, 1),
        ("identity", LINE, 1),
        ("", LINE, 1),
    ],
)
def test_supported_encodings_are_decoded(encoding: str, body: bytes, rows: int) -> None:
    """gzip (multi-member too), deflate (zlib), snappy, identity and none store every line."""
    store = make_store()
    result = ingest(store, body=body, headers={"Content-Encoding": encoding})
    assert (200, ["enc"] * rows) == (result.status, [r["_msg"] for r in store.rows()])


def test_zstd_is_decoded() -> None:
    """zstd bodies (several frames too) are read with the optional zstandard package."""
    zstandard = pytest.importorskip("zstandard")
    body = zstandard.ZstdCompressor().compress(LINE) * 2
    store = make_store()
    ingest(store, body=body, headers={"Content-Encoding": "zstd"})
    assert 2 == store.count()


def test_zstd_without_zstandard_is_a_clear_400(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without zstandard installed the receiver says what is missing instead of losing rows."""
    monkeypatch.setitem(sys.modules, "zstandard", None)
    result = ingest(make_store(), body=b"(\xb5/\xfd", headers={"Content-Encoding": "zstd"})
    assert 400 == result.status
    assert "install loguru-vlogs[zstd]" in result.body


def test_snappy_copies_are_decoded() -> None:
    """Snappy back-references (overlapping copies) expand correctly."""
    assert b"abcabcabc" == _snappy_decode(bytes([9, 2 << 2]) + b"abc" + bytes([9, 3]))


@pytest.mark.parametrize("encoding", ["br", "GZIP", "Identity", "gzip, deflate"])
def test_unknown_encodings_answer_200_and_store_nothing(encoding: str) -> None:
    """The server logs an unsupported Content-Encoding and still answers 200."""
    store = make_store()
    result = ingest(store, body=LINE, headers={"Content-Encoding": encoding})
    assert (200, 0, {"unsupported_encoding": 1}) == (
        result.status,
        store.count(),
        dict(result.dropped),
    )


def test_corrupt_gzip_answers_200_and_stores_nothing() -> None:
    """A body that is not gzip at all is a silent loss, not an error."""
    store = make_store()
    assert 200 == ingest(store, body=b"not gzip", headers={"Content-Encoding": "gzip"}).status
    assert 0 == store.count()


@pytest.mark.parametrize(
    ("before", "status", "kept"),
    [
        (LINE, 400, ["enc"]),
        (LINE + LINE, 200, ["enc", "enc"]),
        (b"{bad\n", 200, []),
        (b"", 200, []),
    ],
)
def test_a_cut_compressed_body_keeps_complete_lines_and_counts_the_read_error(
    before: bytes, status: int, kept: list[str]
) -> None:
    """A read error counts as an error without a line (400 iff errors == lines); rows stay."""
    compressed = gzip.compress(before + b'{"_msg":"partial"')
    store = make_store()
    result = ingest(store, body=compressed[:-12], headers={"Content-Encoding": "gzip"})
    assert (status, kept) == (result.status, [r["_msg"] for r in store.rows()])


# -- line and field limits ----------------------------------------------------------------


def padded_line(size: int) -> bytes:
    """A JSON line of exactly ``size`` bytes."""
    head = b'{"_msg":"'
    tail = b'","_time":"2026-11-20T08:15:30Z"}'
    return head + b"y" * (size - len(head) - len(tail)) + tail


def test_a_line_just_under_256_kib_is_stored() -> None:
    """262143 bytes (plus the newline) is within ``-insert.maxLineSizeBytes``."""
    store = make_store()
    ingest(store, body=padded_line(256 * 1024 - 1) + b"\n")
    assert 1 == store.count()


def test_a_256_kib_line_and_the_lines_in_the_final_read_are_lost() -> None:
    """The over-long line is skipped, and the server also loses what followed it in the last read."""
    store = make_store()
    result = ingest(store, body=padded_line(256 * 1024) + b"\n" + LINE)
    assert (200, 0, {"too_long_line": 1}) == (result.status, store.count(), dict(result.dropped))


def test_lines_far_after_an_over_long_line_survive() -> None:
    """When more than one read follows the long line, the later lines are stored again."""
    filler = LINE * (300 * 1024 // len(LINE))
    store = make_store()
    ingest(store, body=padded_line(300 * 1024) + b"\n" + filler)
    assert filler.count(b"\n") == store.count()


@pytest.mark.parametrize(("extra", "expected"), [(998, 1), (999, 0)])
def test_more_than_1000_fields_drop_the_row(extra: int, expected: int) -> None:
    """``_msg`` + ``_time`` + 998 fields is 1000 (kept); one more is dropped silently."""
    line = {"_msg": "wide", "_time": T, **{f"f{i}": i for i in range(extra)}}
    store = make_store()
    assert 200 == ingest(store, line).status
    assert expected == store.count()


@pytest.mark.parametrize(("length", "kept"), [(128, True), (129, False)])
def test_a_top_level_key_over_128_bytes_turns_the_line_into_msg(length: int, kept: bool) -> None:
    """A 129-byte key stores the whole line (re-printed compactly) as ``_msg`` at ingestion time."""
    key = "k" * length
    row = stored({"_msg": "m", "_time": T, key: "v"})[0]
    if kept:
        assert ("m", T, "v") == (row["_msg"], row["_time"], row[key])
    else:
        assert (f'{{"_msg":"m","_time":"{T}","{key}":"v"}}', NOW_TEXT) == (
            row["_msg"],
            row["_time"],
        )


def test_key_length_is_counted_in_utf8_bytes() -> None:
    """65 two-byte characters are 130 bytes: too long."""
    row = stored({"_msg": "m", "é" * 65: "v"})[0]
    assert row["_msg"].startswith('{"_msg":"m"')


def test_a_nested_path_over_128_bytes_is_stored_as_json_text() -> None:
    """The object whose keys would make the name too long is kept whole under its parent name."""
    row = stored({"_msg": "m", "outer": {"short": 1, "k" * 125: {"x": [1, "a"]}}})[0]
    assert f'{{"short":1,"{"k" * 125}":{{"x":[1,"a"]}}}}' == row["outer"]


# -- JSON to fields -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        (b'{"a":{"b":{"c":1}}}', [("a.b.c", "1")]),
        (
            b'{"a":[1.50, "\\u00e9", {"k" : null}, true]}',
            [("a", '[1.50,"\\u00e9",{"k":null},true]')],
        ),
        (
            b'{"n":1e+300,"big":12345678901234567890,"neg":-0}',
            [("n", "1e+300"), ("big", "12345678901234567890"), ("neg", "-0")],
        ),
        (
            b'{"t":true,"f":false,"z":null,"e":"","o":{}}',
            [("t", "true"), ("f", "false"), ("e", "")],
        ),
        (b'{"":"empty key"}', [("_msg", "empty key")]),
        (b'{"k":"first","k":"second"}', [("k", "first"), ("k", "second")]),
        (b'{"a":01,"b":1.2.3,"c":NaN}', [("a", "01"), ("b", "1.2.3"), ("c", "NaN")]),
        (b'{"x":"\\x41 \\q"}', [("x", "\\x41 \\q")]),
        (b'{"s":"\\ud83d\\ude80 \\ud800 \\udc00"}', [("s", "\U0001f680 \\ud800 \\udc00")]),
        (b'{"u":"bytes \xff\xfe here"}', [("u", "bytes \ufffd\ufffd here")]),
        (b' {"a":"b"}\r', [("a", "b")]),
        (b'{"' + b"k" * 128 + b'":{}}', [("k" * 128, "{}")]),  # "." makes the path 129 bytes
    ],
)
def test_json_lines_become_fields_like_fastjson(line: bytes, fields: list[tuple[str, str]]) -> None:
    """Flattening, raw arrays and numbers, dropped nulls, lenient numbers and escapes, invalid UTF-8."""
    assert fields == parse_line(line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b"{not json",
            r"""^cannot parse JSON: cannot parse object: cannot find opening '"" for object key; unparsed tail: "not json"$""",
        ),
        (b"[1,2]", r"^value doesn't contain object; it contains array$"),
        (b'"text"', r"^value doesn't contain object; it contains string$"),
        (b"null", r"^value doesn't contain object; it contains null$"),
        (b'{"a":1} x', r'^unexpected tail: "x"$'),
        (
            b'{"a":1',
            r'^cannot parse JSON: cannot parse object: unexpected end of object; unparsed tail: ""$',
        ),
        (
            b'{"a" 1}',
            r"""^cannot parse JSON: cannot parse object: missing ':' after object key; unparsed tail: "1}"$""",
        ),
        (
            b'{"a":Infinity}',
            r"""^cannot parse JSON: cannot parse object: missing ',' after object value; unparsed tail: "inity}"$""",
        ),
        (b"", r'^cannot parse JSON: cannot parse empty string; unparsed tail: ""$'),
    ],
)
def test_invalid_lines_report_fastjson_errors(line: bytes, message: str) -> None:
    """The 400 text quotes fastjson's own error."""
    with pytest.raises(JSONLineError, match=message):
        parse_line(line)


def test_every_line_invalid_answers_400_with_the_last_error() -> None:
    """Only when no line is valid does the request fail, naming the last bad line."""
    result = ingest(make_store(), b"{bad", b'"s"')
    assert 400 == result.status
    assert (
        "cannot process jsonline request; error: value doesn't contain object; "
        'it contains string; line contents: "\\"s\\""\n'
    ) == result.body


def test_one_valid_line_makes_the_request_succeed() -> None:
    """Invalid lines are skipped silently next to a valid one."""
    store = make_store()
    result = ingest(store, b"{bad", {"_msg": "ok"})
    assert (200, 1, {"invalid_line": 1}) == (result.status, store.count(), dict(result.dropped))


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


KEYS = st.text(max_size=10) | st.text(alphabet="kä.", min_size=60, max_size=70)


@settings(max_examples=150, deadline=None)
@given(
    obj=st.dictionaries(
        KEYS, JSON_VALUES | st.dictionaries(KEYS, JSON_VALUES, max_size=3), max_size=6
    ),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
)
def test_the_fast_path_matches_the_fastjson_port(
    obj: dict[str, Any], ascii_only: bool, spaced: bool
) -> None:
    """The stdlib fast path yields exactly what the port of fastjson yields, for any JSON object."""
    separators = (", ", ": ") if spaced else (",", ":")
    line = json.dumps(obj, ensure_ascii=ascii_only, separators=separators).encode(
        "utf-8", "surrogatepass"
    )
    assert parse_line_with_fastjson_port(line) == parse_line(line)


# -- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T08:15:30Z", T),
        ("2026-11-20 08:15:30.5Z", "2026-11-20T08:15:30.5Z"),
        ("2026-11-20T10:15:30+02:00", T),
        ("2026-11-20T03:15:30.000100-05:00", "2026-11-20T08:15:30.0001Z"),
        ("2026-11-20T08:15:30.123456789Z", "2026-11-20T08:15:30.123456789Z"),
        ("2026-11-20T09:15:30", T),  # no zone: the server's (here +01:00)
        ("2026-10-32T08:15:30Z", "2026-11-01T08:15:30Z"),  # Go's time.Date normalises
        (1795162530, T),
        (1795162530.25, "2026-11-20T08:15:30.25Z"),
        ("1795162530.25", "2026-11-20T08:15:30.25Z"),
        ("1.795162530250e12", "2026-11-20T08:15:30.25Z"),  # scientific: milliseconds
        (1795162530250, "2026-11-20T08:15:30.25Z"),
        (1795162530250123, "2026-11-20T08:15:30.250123Z"),
        (1795162530250123456, "2026-11-20T08:15:30.250123456Z"),
        (0, NOW_TEXT),
        ("0", NOW_TEXT),
        ("", NOW_TEXT),
        ("-", NOW_TEXT),
        (None, NOW_TEXT),
        ("1970-01-01T00:00:00Z", NOW_TEXT),  # a zero timestamp means "now" too
    ],
)
def test_accepted_timestamps(value: Any, expected: str) -> None:
    """RFC3339 (T or space, 0-9 digits, Z/±hh:mm, local zone), Unix numbers by size, now-values."""
    store = make_store(timezone_offset=3600)
    ingest(store, {"_msg": "m", "_time": value})
    assert [expected] == [r["_time"] for r in store.rows()]


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-11-20T08:15:30+000",
        "2026-11-20T08:15:30+25:00",
        "2026-11-20T08:15:30.Z",
        "1677-09-20T00:00:00Z",
        "1.-5",
        "2026-11-20T08:15:30z",
        "2026-11-20",
        "2026-11-20T08:15:30.1234567890Z",
        True,
        [1],
    ],
)
def test_rejected_timestamps_skip_the_line(value: Any) -> None:
    """Bad zones, a bare dot, years past int64 nanoseconds, a negative Unix fraction, lowercase
    ``z``, date-only, 10 fraction digits, words, booleans skip the line."""
    store = make_store()
    result = ingest(store, {"_msg": "m", "_time": value}, {"_msg": "other", "_time": T})
    assert (200, ["other"]) == (result.status, [r["_msg"] for r in store.rows()])


def test_retention_is_exact_and_the_future_limit_counts_whole_days() -> None:
    """Rows older than now - 7d are dropped (to the nanosecond); rows after the day of now+2d too."""
    store = make_store(retention="7d")
    times = [
        "2026-11-13T12:00:00Z",
        "2026-11-13T11:59:59.999999999Z",
        "2026-11-22T23:59:59Z",
        "2026-11-23T00:00:00Z",
    ]
    result = ingest(store, *({"_msg": t, "_time": t} for t in times))
    assert ["2026-11-13T12:00:00Z", "2026-11-22T23:59:59Z"] == [r["_msg"] for r in store.rows()]
    assert {"too_old": 1, "too_new": 1} == dict(result.dropped)
    assert 2 == sum(w.startswith("skipping log entry with too") for w in result.warnings)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:15:30+0200", T),
        ("2026-11-20T08:15:30-0000", T),
        ("2026-11-20T08:15:3aZ", "2026-11-20T08:16:19Z"),  # 2-byte parts: "3a" is 30 + 49
        (9223372036, "2262-04-11T23:47:16Z"),  # the largest number read as seconds
        (9223372037, "1970-04-17T18:02:52.037Z"),  # one more: milliseconds
        (3000000000, "2065-01-24T05:20:00Z"),  # seconds (v1.26.0 read milliseconds)
        ("1.+5", "1970-01-01T00:17:30Z"),  # ParseInt("+5"): 105 hundredths → 1050 (seconds)
    ],
)
def test_v1_52_timestamp_forms(value: Any, expected: str) -> None:
    """``±hhmm`` zones, the unchecked second byte of two-digit parts, the Unix unit thresholds."""
    store = make_store(future_retention=None)
    ingest(store, {"_msg": "m", "_time": value})
    assert [expected] == [r["_time"] for r in store.rows()]


def test_no_retention_keeps_anything_parsable() -> None:
    """``retention=None`` keeps 1970."""
    store = make_store(retention=None)
    ingest(store, {"_msg": "old", "_time": "1970-01-02T00:00:00Z"})
    assert 1 == store.count()


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (1_500_000_000, "1970-01-01T00:00:01.5Z"),
    ],
)
def test_times_print_as_rfc3339nano_utc(nanos: int, text: str) -> None:
    """Trailing zeros trimmed, no fraction when whole, ``Z``."""
    assert text == format_rfc3339_nano(nanos)


# -- streams and the printed row ----------------------------------------------------------


def test_stream_fields_are_sorted_and_quoted_like_go() -> None:
    """``_stream`` lists tags by name with Go-quoted values; a missing stream field is left out."""
    row = stored(
        {"_msg": "m", "z": "1", "a": 'say "hi"\\\n', "nested": {"n": "x"}},
        query="_stream_fields=z,a,nested.n,missing",
    )[0]
    assert '{a="say \\"hi\\"\\\\\\n",nested.n="x",z="1"}' == row["_stream"]


def test_stream_ids_are_stable_per_tenant_and_stream() -> None:
    """The same stream has one ``_stream_id``; another stream or tenant has another."""
    store = make_store()
    for account in ("0", "0", "1"):
        ingest(
            store,
            {"_msg": "m", "s": "a"},
            {"_msg": "m", "s": "b"},
            query="_stream_fields=s",
            headers={"AccountID": account},
        )
    ids = [r["_stream_id"] for r in store.rows()] + [
        r["_stream_id"] for r in store.rows(account_id=1)
    ]
    assert (ids[0], ids[1]) == (ids[2], ids[3])
    assert 4 == len(set(ids))


def test_rows_print_every_field_sorted_by_name() -> None:
    """The printed order is by name, ``_time``/``_stream_id``/``_stream`` included (uppercase and
    digits sort before ``_``)."""
    store = make_store()
    ingest(store, {"zeta": "1", "_msg": "m", "alpha": "2", "Big": "3", "9": "4", "_time": T})
    names = [name for name, _ in store.select()[0]]
    assert ["9", "Big", "_msg", "_stream", "_stream_id", "_time", "alpha", "zeta"] == names


@pytest.mark.parametrize(
    ("line", "stream", "fields"),
    [
        (
            {"_msg": "m", "_stream": '{app="x",host="h"}', "app": "x", "host": "h"},
            '{app="x",host="h"}',
            {"app": "x", "host": "h"},
        ),
        ({"_msg": "m", "_stream": '{app="x",gone="g"}', "app": "y"}, '{app="y"}', {"app": "y"}),
        ({"_msg": "m", "_stream": "{}", "_stream_id": "abc", "k": "v"}, "{}", {"k": "v"}),
        ({"_msg": "m", "_stream": '{a="\\x41\\n"}', "a": "A\n"}, '{a="A\\n"}', {"a": "A\n"}),
    ],
)
def test_a_stream_key_names_the_stream_without_stream_fields(
    line: dict[str, str], stream: str, fields: dict[str, str]
) -> None:
    """No ``_stream_fields``: ``_stream`` in the data is parsed; its tags take the values of the
    fields of the same name (a tag without such a field is left out); ``_stream``/``_stream_id``
    are not stored."""
    row = stored(line)[0]
    assert (stream, fields) == (row["_stream"], {k: v for k, v in row.items() if k[0] != "_"})


@pytest.mark.parametrize("text", ["user", '{a="1"', '{a="1",}', "{a=1}", '{a="\\q"}'])
def test_an_unparsable_stream_key_skips_the_row(text: str) -> None:
    """A ``_stream`` value the server cannot parse drops the row (200, logged)."""
    store = make_store()
    result = ingest(store, {"_msg": "bad", "_stream": text, "a": "1"}, {"_msg": "ok"})
    assert (200, ["ok"], {"bad_stream": 1}) == (
        result.status,
        [r["_msg"] for r in store.rows()],
        dict(result.dropped),
    )
    assert any(w.startswith(f"cannot parse _stream={text}: ") for w in result.warnings)


def test_stream_keys_are_dropped_when_stream_fields_are_set() -> None:
    """With ``_stream_fields`` the data's ``_stream``/``_stream_id`` are ignored and not stored."""
    store = make_store()
    result = ingest(
        store,
        {"_msg": "m", "s": "a", "_stream": "{x}", "_stream_id": "1"},
        query="_stream_fields=s",
    )
    assert [("_msg", "m"), ("_stream", '{s="a"}'), ("s", "a")] == [
        p for p in store.select()[0] if p[0] not in ("_time", "_stream_id")
    ]
    assert 2 == sum("clashes with the automatically generated field" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("_stream_fields=s", b'{"_msg":"m","s":"a","s":"b"}'),
        ("_stream_fields=s", b'{"_msg":"m","s":"a","s":"a"}'),
        ("extra_fields=s%3D1,s%3D2&_stream_fields=s", b'{"_msg":"m"}'),
        ("", b'{"_msg":"m","_stream":"{s=\\"1\\",s=\\"2\\"}","s":"x"}'),
    ],
)
def test_a_repeated_stream_tag_is_a_server_crash(query: str, line: bytes) -> None:
    """Two stream tags with one name make the real server exit (FATAL while registering the
    stream): the fake stores nothing from that request and says so in ``crash``."""
    store = make_store()
    result = ingest(store, {"_msg": "before"}, line, query=query)
    assert (0, 0) == (result.status, store.count())
    assert result.crash is not None
    assert result.crash.startswith(
        "FATAL: cannot unmarshal StreamTags: stream tags must be sorted in alphabetical order; "
        'got "s" which is less or equal than "s"'
    )


def test_missing_or_empty_msg_gets_the_default_text() -> None:
    """No ``_msg`` → the server's ``-defaultMsgValue``."""
    assert [DEFAULT_MSG_VALUE] * 2 == [
        r["_msg"] for r in stored({"a": "1"}, {"_msg": "", "a": "2"})
    ]


# -- blocks: the column limit and read-back values ----------------------------------------

COLUMN_LIMIT = "because they contain more than 2000 unique field names"


def wide(prefix: str, msg: str, count: int = 900, **more: Any) -> dict[str, Any]:
    return {"_msg": msg, **more, **{f"{prefix}{i}": i for i in range(count)}}


def test_the_column_limit_drops_the_row_past_2000_names_and_the_rest_of_the_block() -> None:
    """901 + 901 names fit; the third wide row would need 2703: it and the rows after it in the
    block are dropped, with the server's warning; 200 all the same."""
    store = make_store()
    result = ingest(store, wide("a", "A"), wide("b", "B"), wide("c", "C"), {"_msg": "plain"})
    assert (200, ["A", "B"], {"column_limit": 2}) == (
        result.status,
        [r["_msg"] for r in store.rows()],
        dict(result.dropped),
    )
    (warning,) = [w for w in result.warnings if COLUMN_LIMIT in w]
    assert warning.startswith(f"ignoring 2 rows in the block, {COLUMN_LIMIT}: [_msg a0 a1 a10 ")


def test_the_column_limit_is_per_stream_and_per_day() -> None:
    """Another stream, or another day, is another block."""
    store = make_store()
    ingest(
        store,
        wide("a", "A", s="w", _time="2026-11-20T08:00:01Z"),
        wide("b", "B", s="w", _time="2026-11-20T08:00:02Z"),
        {"_msg": "narrow", "s": "n", "_time": "2026-11-20T08:00:03Z"},
        wide("c", "C, next day", s="w", _time="2026-11-21T08:00:03Z"),
        wide("d", "D", s="w", _time="2026-11-20T08:00:04Z"),
        query="_stream_fields=s",
    )
    assert ["A", "B", "narrow", "C, next day"] == [r["_msg"] for r in store.rows()]


def test_rows_with_the_same_field_names_are_never_counted() -> None:
    """When every row of a block has the same names the server skips the count."""
    store = make_store()
    rows = [{"_msg": f"m{i}", **{f"k{j}": j for j in range(999)}} for i in range(5)]
    ingest(store, *rows)
    assert 5 == store.count()


def test_a_block_is_cut_at_2_mib_of_estimated_json() -> None:
    """Rows (even dropped ones) count towards the 2 MiB at which the next row starts a block."""
    filler = "x" * 100_000
    times = (f"2026-11-20T08:{i // 60:02d}:{i % 60:02d}Z" for i in range(100))
    store = make_store()
    ingest(
        store,
        wide("a", "A", _time=next(times)),
        wide("b", "B", _time=next(times)),
        wide("x", "X", _time=next(times)),
        *({"_msg": filler, "_time": next(times)} for _ in range(21)),
        wide("c", "C", _time=next(times)),
    )
    assert ["A", "B", "C"] == [r["_msg"] for r in store.rows()]


@pytest.mark.parametrize(("distinct", "kept"), [(True, ["A", "B", "C"]), (False, ["A", "B"])])
def test_a_request_is_stored_in_pieces_of_at_most_1_75_mib_of_new_text(
    distinct: bool, kept: list[str]
) -> None:
    """The server hands a request's rows to the storage whenever they hold more than 1.75 MiB
    of text not repeated from the row before (``LogRows.NeedFlush``); pieces are separate blocks.
    19 distinct 100 kB rows pass it, 19 identical ones do not (and stay under the 2 MiB cut)."""
    store = make_store()
    fillers = [{"_msg": ("x" * 100_000) + (str(i) if distinct else "")} for i in range(19)]
    ingest(store, wide("a", "A"), wide("b", "B"), *fillers, wide("c", "C"))
    assert kept == [r["_msg"] for r in store.rows() if len(r["_msg"]) < 10]


@pytest.mark.slow
def test_a_request_is_stored_in_pieces_of_at_most_20971_rows() -> None:
    """More than 20971 rows: the next row goes to the next piece (another block)."""
    store = make_store()
    plain = b'{"_msg":"p"}\n' * 20970
    body = (json.dumps(wide("a", "A")) + "\n" + json.dumps(wide("b", "B")) + "\n").encode()
    body += plain + json.dumps(wide("c", "C")).encode()
    result = ingest(store, body=body)
    assert (20973, {}) == (result.stored, dict(result.dropped))


def test_a_repeated_key_keeps_its_last_value_in_a_multi_row_block() -> None:
    """One row: both values printed; several rows with other names: the last value only."""
    one = make_store()
    ingest(one, b'{"_msg":"m","k":"first","k":"second"}')
    assert [("k", "first"), ("k", "second")] == [p for p in one.select()[0] if p[0] == "k"]
    two = make_store()
    ingest(two, b'{"_msg":"m","k":"first","k":"second"}', b'{"_msg":"n","k":"x"}')
    assert [[("k", "second")], [("k", "x")]] == [
        [p for p in pairs if p[0] == "k"] for pairs in two.select()
    ]


DECIMALS = ["0.3", "0.47764", "7.0", "1.5", "0.1", "2.25", "100.001", "3.3", "12.34", "-0.5"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            DECIMALS,
            [
                "0.30000000000000004",
                "0.47764000000000006",
                "7",
                "1.5",
                "0.1",
                "2.25",
                "100.001",
                "3.3",
                "12.34",
                "-0.5",
            ],
        ),
        ([*DECIMALS[:8], "0.3", "7.0"], [*DECIMALS[:8], "0.3", "7.0"]),  # 8 distinct: dictionary
        ([*DECIMALS[:9], "n/a"], [*DECIMALS[:9], "n/a"]),  # one text value: all text
        ([*DECIMALS[:9], "9007199254740993"], [*DECIMALS[:9], "9007199254740993"]),
        (
            [*DECIMALS[:9], "1_000"],
            [*["0.30000000000000004", "0.47764000000000006", "7"], *DECIMALS[3:9], "1000"],
        ),
        (
            [*DECIMALS[:9], "-0.0"],
            [*["0.30000000000000004", "0.47764000000000006", "7"], *DECIMALS[3:9], "-0"],
        ),
        (
            ["1", "2", "3", "4", "5", "6", "7", "8", "_", "-0"],
            ["1", "2", "3", "4", "5", "6", "7", "8", "0", "0"],
        ),
        (
            [f"10.0.0.{i}" for i in range(8)] + ["010.001.002.003", "1.2.3.4a"],
            [f"10.0.0.{i}" for i in range(8)] + ["10.1.2.3", "1.2.3.89"],
        ),
        (
            [f"2026-11-20T08:15:3{i}.000Z" for i in range(8)]
            + ["2026-11-20 08:15:38.500Z", "2026-02-30T00:00:00.000Z"],
            [f"2026-11-20T08:15:3{i}.000Z" for i in range(8)]
            + ["2026-11-20T08:15:38.500Z", "2026-03-02T00:00:00.000Z"],
        ),
        (["x" * 300] * 3, ["x" * 300] * 3),  # equal but over 256 bytes: not a constant, text
    ],
)
def test_a_column_reads_back_as_its_block_encoded_it(
    values: list[str], expected: list[str]
) -> None:
    """Dictionary (<= 8 values), uint, int, float64, IPv4, ISO8601 or text, per block."""
    store = make_store()
    ingest(store, *({"_msg": f"r{i}", "v": v} for i, v in enumerate(values)))
    assert expected == [r["v"] for r in store.rows()]


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("0.3", "0.30000000000000004"),
        ("0.1", "0.1"),
        ("3.3", "3.3"),
        ("0.41", "0.41000000000000003"),
        ("123456789.123456789", "123456789.12345679"),
        ("0.0000000000000000000000001", "0.00000000000000000000000009999999999999999"),
        ("18446744073709551615.5", "18446744073709552000"),
        ("9007199254740991", "9007199254740991"),
        ("-0", "-0"),
        ("0.1_5", "0.15"),
        ("0.05", "0.05"),
    ],
)
def test_float64_parse_and_print_follow_the_server(text: str, printed: str) -> None:
    """``FMA(fraction digits, Pow10(-n), integer part)`` then Go's shortest ``'f'`` format."""
    value = parse_float64_exact(text.encode())
    assert value is not None
    assert printed == format_float64(value)


@pytest.mark.parametrize(
    "text", ["1e5", ".5", "5.", "+5", "007", "00.5", "9007199254740992", "0x10", "NaN", "1" * 28]
)
def test_values_that_are_not_float64(text: str) -> None:
    assert parse_float64_exact(text.encode()) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (2.5, "2.5"),
        (-1e100, "-1" + "0" * 100),
    ],
)
def test_float64_prints_without_an_exponent(value: float, text: str) -> None:
    assert text == format_float64(value)


# -- merges -------------------------------------------------------------------------------


def at(second: int, day: str = "2026-11-20") -> str:
    return f"{day}T08:00:{second:02d}Z"


def three_requests(store: Store, day: str = "2026-11-20", **kwargs: Any) -> None:
    """r1 and r2 with 999 names each, then r3 with 4: each request a block of its own."""
    ingest(store, wide("a", "r1", 998, _time=at(1, day)), **kwargs)
    ingest(store, wide("b", "r2", 998, _time=at(2, day)), **kwargs)
    ingest(store, {"_msg": "r3", "_time": at(3, day), "x": 1, "y": 2, "z": 3}, **kwargs)


def msgs(store: Store, **kwargs: Any) -> list[str]:
    return [row["_msg"] for row in store.rows(**kwargs)]


def test_the_store_does_not_merge_by_itself() -> None:
    """Blocks stay as each request built them until ``force_merge``: r3 is kept (the real server
    merges on its own a few seconds later)."""
    store = make_store()
    three_requests(store)
    store.force_flush()
    assert ["r1", "r2", "r3"] == msgs(store)


def test_a_merge_drops_rows_past_the_column_limit_for_good() -> None:
    """Merged into one block, r3 makes 1998 + 4 > 2000 names: dropped, with the server's
    warning; a second merge finds nothing more to do."""
    store = make_store()
    three_requests(store)
    assert 1 == store.count('_msg:="r3"')  # an index built before the merge
    result = store.force_merge()
    assert (["r1", "r2"], 1) == (msgs(store), result.dropped)
    (warning,) = result.warnings
    assert warning.startswith(f"ignoring 1 rows in the block, {COLUMN_LIMIT}: [_msg a0 a1 a10 ")
    assert (0, 2) == (store.count('_msg:="r3"'), store.count("{}"))
    assert MergeResult() == store.force_merge()
    assert ["r1", "r2"] == msgs(store)


def test_a_merge_stores_values_again_so_they_can_read_back_differently() -> None:
    """A lone 0.3 is a constant (read back as sent); merged with nine other decimals it is in a
    float64 column; a value already printed by a float64 column is parsed again."""
    store = make_store()
    ingest(store, {"_msg": "r0", "_time": at(0), "v": DECIMALS[0]})
    ingest(store, *({"_msg": f"r{i}", "_time": at(i), "v": DECIMALS[i]} for i in range(1, 10)))
    assert ["0.3", "0.47764000000000006", "7"] == [r["v"] for r in store.rows()][:3]
    store.force_merge()
    assert ["0.30000000000000004", "0.4776400000000001", "7"] == [r["v"] for r in store.rows()][:3]


def test_a_merge_keeps_the_ingestion_order_of_query_results() -> None:
    """Merged rows keep their place in results without ``limit`` (ingestion order); with
    ``limit`` the newest come first."""
    store = make_store()
    ingest(store, {"_msg": "late", "_time": at(9)})
    ingest(store, {"_msg": "early", "_time": at(1)}, {"_msg": "middle", "_time": at(5)})
    store.force_merge()
    assert (["late", "early", "middle"], ["late"]) == (msgs(store), msgs(store, limit=1))


def test_a_merge_flushes_first() -> None:
    """Rows still waiting for their visibility delay are flushed, then merged."""
    store = make_store(visibility_delay=60)
    three_requests(store)
    assert 0 == store.count()
    store.force_merge()
    assert ["r1", "r2"] == msgs(store)


def test_a_merge_keeps_days_streams_and_tenants_apart() -> None:
    """Blocks hold rows of one tenant, stream and day: nothing to drop across them."""
    store = make_store()
    ingest(store, wide("a", "r1", 998, _time=at(1)))
    ingest(store, wide("b", "r2", 998, _time=at(2)), headers={"AccountID": "1"})
    ingest(store, wide("b", "r2", 997, s="x", _time=at(2)), query="_stream_fields=s")
    ingest(store, {"_msg": "r3", "_time": at(3, "2026-11-21"), "x": 1, "y": 2, "z": 3})
    assert MergeResult() == store.force_merge()
    assert (3, 1) == (store.count(), store.count(account_id=1))


def test_a_merge_can_be_limited_to_partitions_by_name() -> None:
    """``partition_prefix`` (as ``/internal/force_merge?partition_prefix=``) picks the days whose
    partition name, ``YYYYMMDD``, starts with it."""
    store = make_store()
    three_requests(store, "2026-11-20")
    three_requests(store, "2026-11-21")
    assert 1 == store.force_merge("20261121").dropped
    assert ["r1", "r2", "r3", "r1", "r2"] == msgs(store)
    assert 1 == store.force_merge("202611").dropped
    assert ["r1", "r2", "r1", "r2"] == msgs(store)
    assert "20261120" == partition_name(go_day(parse_rfc3339(at(1).encode(), 0) or 0))


def merge_blocks(*blocks: list[tuple[int, str]]) -> list[str]:
    """The messages of merged one-field blocks, in the merged block's order."""
    built = []
    for rows in blocks:
        fields = [[("_msg", msg)] for _, msg in rows]
        block = build_block([ts for ts, _ in rows], fields, list(range(len(rows)))).block
        assert block is not None
        built.append(block)
    (merged,) = merge_stream(built).blocks
    return [row[0][1] for row in merged.fields]


def test_merged_rows_follow_the_servers_merge_of_equal_timestamps() -> None:
    """``rows.mergeRows``: the rows so far up to the next block's first timestamp (equal ones
    included), then the roles swap, so equal timestamps do not keep the block order."""
    assert ["a1", "a2", "b1"] == merge_blocks([(1, "a1"), (5, "a2")], [(5, "b1")])
    assert ["b1", "b2", "a1", "a2"] == merge_blocks([(5, "a1"), (5, "a2")], [(3, "b1"), (5, "b2")])


def test_blocks_with_equal_first_timestamps_come_in_go_heap_order() -> None:
    """Readers of several parts in Go's ``container/heap``: for equal first timestamps a pop
    moves the last reader to the top, so five parts come as 1, 5, 4, 3, 2."""

    def part(name: str, *times: int) -> list[Block]:
        block = build_block(list(times), [[("_msg", name)]] * len(times), [0] * len(times)).block
        assert block is not None
        return [block]

    order = heap_order([part(name, 5) for name in "abcde"])
    assert ["a", "e", "d", "c", "b"] == [block.fields[0][0][1] for block in order]
    order = heap_order([part("late", 9), part("x", 1), [], part("y", 1)])
    assert ["x", "y", "late"] == [block.fields[0][0][1] for block in order]


def test_the_fake_server_merges_when_asked() -> None:
    """``FakeVictoriaLogs.force_merge`` has ``RealVictoriaLogs.force_merge``'s signature; it
    merges at once and keeps the warnings (``merge_warnings``) until ``clear``."""
    assert inspect.signature(FakeVictoriaLogs.force_merge) == inspect.signature(
        RealVictoriaLogs.force_merge
    )
    with FakeVictoriaLogs(retention=None, timezone_offset=0) as fake:
        for line in (wide("a", "r1", 998, _time=at(1)), wide("b", "r2", 998, _time=at(2))):
            post(fake.url, json.dumps(line).encode())
        post(fake.url, json.dumps({"_msg": "r3", "_time": at(3), "x": 1, "y": 2, "z": 3}).encode())
        assert 3 == fake.count()
        assert fake.force_merge(timeout=0.01) is None
        assert (2, 1) == (fake.count(), len(fake.merge_warnings))
        assert fake.merge_warnings[0].startswith("ignoring 1 rows in the block")
        fake.clear()
        assert [] == fake.merge_warnings


def post(url: str, body: bytes) -> None:
    headers = {"Content-Type": "application/stream+json"}  # not urllib's form type
    request = urllib.request.Request(url + "/insert/jsonline", body, headers)
    with urllib.request.urlopen(request) as answer:
        assert 200 == answer.status


# -- queries ------------------------------------------------------------------------------


@pytest.fixture
def filled() -> Store:
    store = make_store()
    ingest(
        store,
        {"_msg": "user logged in", "level": "INFO", "svc": "api", "n": "1"},
        {"_msg": "user logged out", "level": "WARN", "svc": "api", "n": "2"},
        {"_msg": "disk full!", "level": "ERROR", "svc": "db", "n": "3"},
        {"_msg": "login-failed for bob", "level": "ERROR", "svc": "api", "n": "4"},
        query="_stream_fields=svc",
    )
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("*", ["1", "2", "3", "4"]),
        ('level:="ERROR"', ["3", "4"]),
        ("level:=ERROR", ["3", "4"]),
        ("level:ERR", []),
        ("level:ERR*", ["3", "4"]),
        ("user", ["1", "2"]),
        ("logged", ["1", "2"]),
        ("log", []),
        ('"logged in"', ["1"]),
        ("login", ["4"]),
        ("_msg:disk", ["3"]),
        ('{svc="db"}', ["3"]),
        ('_stream:{svc="api"}', ["1", "2", "4"]),
        ('{svc!="api"}', ["3"]),
        ('svc:="api" level:="ERROR"', ["4"]),
        ('svc:="api" AND level:="ERROR"', ["4"]),
        ('level:="INFO" OR level:="WARN"', ["1", "2"]),
        ('NOT level:="ERROR"', ["1", "2"]),
        ('!level:="ERROR" svc:=api', ["1", "2"]),
        ('(level:="INFO" or n:=3) and svc:=api', ["1"]),
        ('level:in(INFO, "WARN")', ["1", "2"]),
        ("missing:*", []),
        ('missing:=""', ["1", "2", "3", "4"]),
        ("n:*", ["1", "2", "3", "4"]),
    ],
)
def test_the_logsql_subset_filters_like_victorialogs(
    filled: Store, query: str, expected: list[str]
) -> None:
    """Exact, word, phrase, prefix, in, stream, AND/OR/NOT and parentheses."""
    assert expected == [r["n"] for r in filled.rows(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("* | stats count() as n", [{"n": "4"}]),
        ('level:="ERROR" | stats count() n', [{"n": "2"}]),
        ("* | count()", [{"count(*)": "4"}]),
        ("* | stats count(missing) as m, count() as all", [{"m": "0", "all": "4"}]),
        ("svc:=db | fields n, level", [{"n": "3", "level": "ERROR"}]),
        ("* | limit 1 | fields n", [{"n": "1"}]),
    ],
)
def test_pipes_count_limit_and_project(
    filled: Store, query: str, expected: list[dict[str, str]]
) -> None:
    """``stats count()`` gives one row of string counts; ``limit`` and ``fields`` shape the rows."""
    assert expected == filled.rows(query)


def test_the_limit_argument_returns_the_newest_rows_first() -> None:
    """``limit=N`` keeps the N rows with the largest ``_time``."""
    store = make_store()
    ingest(store, *({"_msg": str(i), "_time": f"2026-11-20T08:15:3{i}Z"} for i in (3, 1, 4, 2)))
    assert ["4", "3"] == [r["_msg"] for r in store.rows(limit=2)]


def test_indexes_follow_later_inserts() -> None:
    """An exact-match query indexes the field; rows ingested afterwards are found too."""
    store = make_store()
    ingest(store, {"_msg": "a", "run": "x"})
    assert 1 == store.count('run:="x"')
    ingest(store, {"_msg": "b", "run": "x"}, {"_msg": "c", "run": "y"})
    assert (2, 1) == (store.count('run:="x"'), store.count('run:="y"'))


def test_rows_become_visible_after_the_visibility_delay_or_a_flush() -> None:
    """With ``visibility_delay`` a row is stored at once but queryable only later (or flushed)."""
    store = make_store(visibility_delay=60)
    ingest(store, {"_msg": "m"})
    assert 0 == store.count()
    store.force_flush()
    assert 1 == store.count()


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("", r"missing filter \(use \* for all logs\)"),
        ("level:>5", r"range filters are not supported: level:>5"),
        ("* | sort by (_time)", r"unsupported pipe or stats function 'sort'"),
        ("* | stats by (level) count()", r"stats by \(\.\.\.\) is not supported"),
        ('{svc=~"a.*"}', r"only = and != are supported in stream filters"),
        ("(a", r"missing '\)' before 'the end'"),
    ],
)
def test_unsupported_queries_are_rejected_clearly(filled: Store, query: str, detail: str) -> None:
    """The 400 text names the query, the problem and what the receiver supports."""
    pattern = rf"^cannot parse query \[{re.escape(query)}\]: {detail}; the test receiver \(FakeVictoriaLogs\) understands only .+$"
    with pytest.raises(LogsQLError, match=pattern):
        filled.rows(query)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ('q"b\\', '"q\\"b\\\\"'),
        ("tab\tnl\n\x01\x7f", '"tab\\tnl\\n\\x01\\x7f"'),
        ("é ☃ 🚀", '"é ☃ 🚀"'),
        ("\u00a0\u200b", '"\\u00a0\\u200b"'),
        (b"\xff ok", '"\\xff ok"'),
    ],
)
def test_go_quote_matches_strconv_quote(value: str | bytes, quoted: str) -> None:
    """Printable runes stay, control and invisible ones are escaped, bad UTF-8 bytes are ``\\xNN``."""
    assert quoted == go_quote(value)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "retention",
            "7 days",
            r"^Invalid retention, it should look like '7d', '12h' or '100y', not: '7 days'$",
        ),
        ("retention", -1, r"^Invalid retention, it should not be negative, not: -1$"),
        (
            "future_retention",
            [2],
            r"^Invalid future_retention, it should be seconds, a timedelta or text like '7d', not: \[2\]$",
        ),
        (
            "visibility_delay",
            -0.5,
            r"^Invalid visibility_delay, it should not be negative, not: -0.5$",
        ),
    ],
)
def test_store_options_are_validated(option: str, value: Any, message: str) -> None:
    """Bad durations are rejected at construction with the option's name."""
    with pytest.raises((TypeError, ValueError), match=message):
        Store(**{option: value})
