"""The requests ``record.py`` sends: every v1.26.0 case, then the newer ones.

Each case runs under its own tenant (``AccountID``/``ProjectID`` headers), so the rows read
back for that tenant are exactly what the case's request (or requests, ``more``) produced. New cases get tenants from
7100 upwards in the order below (a change here means recording again).
"""

from __future__ import annotations

import base64
import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
V1_26 = HERE / "victorialogs-v1.26.0.json"
INSERT = "/insert/jsonline"
#: A fixed event time inside the recording's retention window (and far from its edges).
T = "2026-11-20T08:15:30.123456Z"


@dataclass
class Case:
    name: str
    body: bytes
    note: str = ""
    params: dict[str, str] = field(default_factory=dict)
    #: Request headers; the tenant headers are added unless given here.
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    path: str = INSERT
    account: int = 0
    project: int = 0
    #: Sent to a server of its own: the request makes the server exit.
    crashes: bool = False
    #: Sent to a server of its own, which then merges its parts (``/internal/force_merge``):
    #: the rows are read back again after the merge.
    merge_after: bool = False
    #: More request bodies, sent after ``body`` in order with the same method, path,
    #: parameters and headers, each followed by ``/internal/force_flush`` (so each request is
    #: a part of its own); the rows are read back after the last one.
    more: list[bytes] = field(default_factory=list)
    #: Values longer than this many characters are recorded as ``<N chars, sha256 ...>``
    #: (cases whose rows hold megabytes of filler).
    compact_over: int | None = None

    def all_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        headers.setdefault("AccountID", str(self.account))
        headers.setdefault("ProjectID", str(self.project))
        return headers


def v1_26_cases() -> list[Case]:
    """The v1.26.0 recording's requests, byte for byte, with their tenants."""
    recorded = json.loads(V1_26.read_text(encoding="utf-8"))["cases"]
    return [
        Case(
            name=c["name"],
            body=base64.b64decode(c["body_b64"]),
            note=c.get("note", ""),
            params=dict(c["params"]),
            headers=dict(c["headers"]),
            account=int(c["account"]),
            project=int(c["project"]),
        )
        for c in recorded
    ]


def lines(*rows: dict[str, object]) -> bytes:
    """JSON lines, compact, one per row."""
    return b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)


def gzipped(*rows: dict[str, object]) -> bytes:
    """JSON lines, gzip-compressed (a fixed header: the same bytes on every run)."""
    return gzip.compress(lines(*rows), mtime=0)


def wide(prefix: str, count: int, **fields: object) -> dict[str, object]:
    """A row with ``count`` distinct keys ``<prefix>0``... (plus ``fields`` first)."""
    row: dict[str, object] = dict(fields)
    row.update({f"{prefix}{i}": str(i) for i in range(count)})
    return row


def at(second: float, day: str = "2026-11-20") -> str:
    """An RFC3339 time on ``day`` at 08:00 plus ``second`` seconds (ms precision)."""
    millis = round(second * 1000)
    minutes, millis = divmod(millis, 60_000)
    return f"{day}T08:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}Z"


def column(name: str, values: list[object], **params: str) -> Case:
    """One row per value under ``v``, ``_msg`` r0, r1, ... and increasing ``_time``."""
    rows = [{"_msg": f"r{i}", "_time": at(i), "v": value} for i, value in enumerate(values)]
    return Case(name, lines(*rows), params=dict(params))


#: Ten plain decimals (ten distinct values: more than a dictionary column holds).
DECIMALS = ["0.3", "0.47764", "7.0", "1.5", "0.1", "2.25", "100.001", "3.3", "12.34", "-0.5"]


def random_decimal_rows() -> list[dict[str, object]]:
    """Seeded pseudo-random decimals of 1-25 fraction digits, some negative or with ``_``."""
    rng = random.Random(52)
    rows: list[dict[str, object]] = []
    for i in range(200):
        sign = "-" if rng.random() < 0.3 else ""
        integer = str(rng.choice([0, rng.randrange(1, 10 ** rng.randrange(1, 20))]))
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 26)))
        if rng.random() < 0.05:
            fraction = fraction[:1] + "_" + fraction[1:]
        value = (sign + integer + "." + fraction)[:27]
        rows.append({"_msg": f"r{i}", "_time": at(i), "app": str(i // 40), "v": value})
    return rows


def column_limit_cases() -> list[Case]:
    """The per-block limit of 2000 distinct field names (``block.mustInitFromRows``)."""
    three_wide = Case(
        "column_limit_three_wide_rows",
        lines(
            wide("a", 900, _msg="wide a", _time=at(1)),
            wide("b", 900, _msg="wide b", _time=at(2)),
            wide("c", 900, _msg="wide c", _time=at(3)),
            {"_msg": "plain 1", "_time": at(4)},
            {"_msg": "plain 2", "_time": at(5)},
        ),
        note="901 + 901 names fit; the third wide row would make 2703 > 2000: it and every "
        "later row of the stream in this request are dropped (200).",
    )
    at_limit = Case(
        "column_limit_exactly_2000",
        lines(
            wide("a", 999, _msg="A"),
            wide("b", 999, _msg="B"),
            {"_msg": "C"},
            {"_msg": "D", "d": "1"},
            {"_msg": "E"},
        ),
        note="No _time: ingestion order. A and B have 1000 fields each (with _msg): "
        "0 + 1000 and 1000 + 1000 <= 2000 keep them (1999 distinct names). C: 1999 + 1 = 2000, "
        "kept. D: 1999 + 2 = 2001 > 2000 although it adds only one new name: dropped, E too.",
    )
    with_time_and_stream = Case(
        "column_limit_exactly_2000_with_time_and_stream",
        lines(
            wide("a", 998, _time=at(1), svc="s"),
            wide("b", 998, _time=at(2), svc="s"),
            {"_msg": "C", "_time": at(3), "svc": "s"},
            {"_msg": "D", "_time": at(4), "svc": "s", "d": "1"},
            {"_msg": "E", "_time": at(5), "svc": "s"},
        ),
        params={"_stream_fields": "svc"},
        note="A and B: svc + 998 keys + the default _msg = 1000 stored names each (_time and "
        "_stream are not fields of the block): B kept at exactly 2000. C (_msg, svc) 1998 + 2 "
        "= 2000 kept; D 1998 + 3 > 2000 dropped, E too.",
    )
    default_msg_past = Case(
        "column_limit_one_past",
        lines(
            wide("a", 999, _msg="A"),
            wide("b", 1000),
            {"_msg": "C"},
        ),
        note="A: _msg + 999 keys = 1000 names. B: 1000 keys (the most a line may have) + the "
        "default _msg = 1001 names: 1000 + 1001 = 2001 > 2000, dropped (the default _msg "
        "counts); C after it too.",
    )
    overlap = Case(
        "column_limit_counts_the_rows_fields_not_new_names",
        lines(
            wide("a", 900, _msg="A", _time=at(1)),
            wide("b", 900, _msg="B", _time=at(2)),
            wide("a", 900, _msg="A again", _time=at(3)),
            {"_msg": "after", "_time": at(4)},
        ),
        note="The third row reuses A's 900 keys (no new name) but 1802 + 901 > 2000: dropped, "
        "and the row after it.",
    )
    per_stream = Case(
        "column_limit_is_per_stream",
        lines(
            wide("a", 900, _msg="wide a", _time=at(1), app="wide"),
            {"_msg": "narrow 1", "_time": at(2), "app": "narrow"},
            wide("b", 900, _msg="wide b", _time=at(3), app="wide"),
            {"_msg": "narrow 2", "_time": at(4), "app": "narrow"},
            wide("c", 900, _msg="wide c", _time=at(5), app="wide"),
            {"_msg": "narrow 3", "_time": at(6), "app": "narrow"},
            {"_msg": "wide plain", "_time": at(7), "app": "wide"},
            {"_msg": "narrow 4", "_time": at(8), "app": "narrow"},
        ),
        params={"_stream_fields": "app"},
        note="Rows of the two streams interleaved: the wide stream loses 'wide c' and "
        "'wide plain'; every row of the narrow stream is kept.",
    )
    by_time = Case(
        "column_limit_follows_time_order",
        lines(
            wide("c", 900, _msg="wide c, sent first", _time=at(3)),
            {"_msg": "plain, sent second", "_time": at(4)},
            wide("a", 900, _msg="wide a", _time=at(1)),
            wide("b", 900, _msg="wide b", _time=at(2)),
        ),
        note="A block holds its rows sorted by _time: 'later' means later in time, not in "
        "the request. The wide row sent first is the third by time and is dropped, with the "
        "plain row after it.",
    )
    days = Case(
        "column_limit_is_per_day",
        lines(
            wide("a", 900, _msg="wide a", _time=at(1)),
            wide("b", 900, _msg="wide b", _time=at(2)),
            wide("c", 900, _msg="wide c, next day", _time=at(3, "2026-11-21")),
            {"_msg": "plain", "_time": at(4)},
        ),
        note="Rows go to per-day partitions first: the third wide row is in another day's "
        "block and is kept.",
    )
    filler = "x" * 100_000
    split = Case(
        "column_limit_block_split_by_size",
        gzipped(
            wide("a", 900, _msg="wide a", _time=at(1)),
            wide("b", 900, _msg="wide b", _time=at(2)),
            wide("x", 900, _msg="wide x", _time=at(3)),
            *({"_msg": filler, "_time": at(4 + i)} for i in range(21)),
            wide("c", 900, _msg="wide c", _time=at(30)),
            {"_msg": "plain", "_time": at(31)},
        ),
        headers={"Content-Encoding": "gzip"},
        merge_after=True,
        note="One stream, one request, two blocks: a block is cut once its rows' estimated "
        "JSON size reaches 2 MiB (inmemoryPart.mustInitFromRows). 'wide x' and the 21 filler "
        "rows of 100 kB (still counted in the size) are dropped in the first block; 'wide c' "
        "starts the second block and is kept. Body gzip-compressed. A merge later packs the "
        "rows of both blocks into one and drops 'wide c' and 'plain' (stored_after_merge).",
    )
    dup_multirow = Case(
        "duplicate_keys_in_a_multi_row_block",
        b'{"_msg":"dup","_time":"2026-11-20T08:00:01Z","k":"first","k":"second"}\n'
        b'{"_msg":"other","_time":"2026-11-20T08:00:02Z","k":"x"}\n',
        note="In a block of several rows a repeated key keeps its last value only (a one-row "
        "block keeps both, see duplicate_keys).",
    )
    dup_msg_one = Case(
        "duplicate_msg_key_in_a_one_row_block",
        b'{"_msg":"first","_time":"2026-11-20T08:00:01Z","_msg":"second","k":"v"}\n',
        note="Two _msg keys in a one-row block: the query prints the first.",
    )
    dup_msg_many = Case(
        "duplicate_msg_key_in_a_multi_row_block",
        b'{"_msg":"first","_time":"2026-11-20T08:00:01Z","_msg":"second"}\n'
        b'{"_msg":"other","_time":"2026-11-20T08:00:02Z","k":"v"}\n',
        note="Two _msg keys in a row of a multi-row block: the last one is kept.",
    )
    return [
        three_wide,
        at_limit,
        with_time_and_stream,
        default_msg_past,
        overlap,
        per_stream,
        by_time,
        days,
        split,
        dup_multirow,
        dup_msg_one,
        dup_msg_many,
    ]


def encoding_cases() -> list[Case]:
    """How a column's values come back, per block (``values_encoder.go``)."""
    numbers = [float(v) if "." in v else int(v) for v in DECIMALS]
    odd = {
        "leading_zero": "007",
        "plus_sign": "+5",
        "exponent": "1e5",
        "exponent_upper": "1.5E-3",
        "dot_first": ".5",
        "dot_last": "5.",
        "inf": "inf",
        "nan": "NaN",
        "hex": "0x10",
        "zero_int_part_00": "00.5",
        "space": " 1.5",
        "minus_only": "-",
        "too_long_28": "1.00000000000000000000000001",
        "frac_over_uint64": "0.99999999999999999999",
        "big_int_2_pow_53_plus_1": "9007199254740993",
        "underscore_int": "1_000",
        "underscore_frac": "0.1_5",
        "negative_zero": "-0",
        "negative_zero_decimal": "-0.0",
        "int_2_pow_53_minus_1": "9007199254740991",
        "uint64_max_decimal": "18446744073709551615.5",
        "many_frac_digits": "0.1234567890123456789",
        "tiny": "0.0000000000000000000000001",
    }
    odd_rows = []
    for i in range(10):
        row: dict[str, object] = {"_msg": f"r{i}", "_time": at(i)}
        for name, value in odd.items():
            row[name] = value if i == 9 else DECIMALS[i]
        odd_rows.append(row)
    return [
        column(
            "float_column_json_numbers",
            numbers,
        ),
        column("float_column_json_strings", list(DECIMALS)),
        Case(
            "float_columns_with_one_odd_value",
            lines(*odd_rows),
            note="Each column: nine decimals and, in the last row, one odd value named by the "
            "column. A value that is not a plain decimal keeps the whole column as text.",
        ),
        column("float_column_one_row", ["0.3"]),
        column("float_column_same_value_in_every_row", ["0.3"] * 10),
        column(
            "float_column_8_distinct_values",
            ["0.3", "0.47764", "7.0", "1.5", "0.1", "2.25", "100.001", "3.3", "0.3", "7.0"],
        ),
        column(
            "float_column_9_distinct_values",
            ["0.3", "0.47764", "7.0", "1.5", "0.1", "2.25", "100.001", "3.3", "12.34", "7.0"],
        ),
        column("float_column_with_text_value", [*DECIMALS[:9], "n/a"]),
        Case(
            "float_column_missing_in_one_row",
            lines(
                *({"_msg": f"r{i}", "_time": at(i), "v": DECIMALS[i]} for i in range(10)),
                {"_msg": "no v", "_time": at(11)},
            ),
        ),
        column(
            "float_column_integers_and_decimals",
            ["1", "-2", "0", "42", "0.5", "1.25", "10", "3.3", "1000000", "-7.75"],
        ),
        column(
            "uint_column",
            [
                "0",
                "1",
                "255",
                "256",
                "65535",
                "65536",
                "4294967295",
                "4294967296",
                "18446744073709551615",
                "1_000",
            ],
        ),
        column(
            "uint_column_underscore_only", ["1", "2", "3", "4", "5", "6", "7", "8", "_", "1__0"]
        ),
        column(
            "int_column",
            ["-1", "-2", "3", "4", "5", "6", "7", "8", "-0", "-9223372036854775808"],
        ),
        column(
            "ipv4_column",
            [
                "1.2.3.4",
                "10.0.0.1",
                "192.168.0.1",
                "255.255.255.255",
                "0.0.0.0",
                "8.8.8.8",
                "010.001.002.003",
                "127.0.0.1",
                "1.2.3.4a",
                "172.16.0.1",
            ],
        ),
        column(
            "iso8601_column",
            [
                "2026-11-20T08:15:30.123Z",
                "2026-11-20T08:15:31.000Z",
                "2026-11-20 08:15:32.500Z",
                "2026-02-30T00:00:00.000Z",
                "2026-11-20T25:00:00.000Z",
                "2026-13-01T00:00:00.000Z",
                "2026-11-20T08:15:33.999Z",
                "1970-01-01T00:00:00.000Z",
                "2262-01-01T00:00:00.000Z",
                "2026-11-20T08:15:34.001Z",
            ],
        ),
        column(
            "iso8601_column_with_other_precision",
            [
                "2026-11-20T08:15:30.123Z",
                "2026-11-20T08:15:31.000Z",
                "2026-11-20T08:15:32.500Z",
                "2026-11-20T08:15:33.250Z",
                "2026-11-20T08:15:34.125Z",
                "2026-11-20T08:15:35.999Z",
                "2026-11-20T08:15:36.001Z",
                "2026-11-20T08:15:37.010Z",
                "2026-11-20T08:15:38.100Z",
                "2026-11-20T08:15:39.123456Z",
            ],
        ),
        Case(
            "float_column_per_stream",
            lines(
                *(
                    {"_msg": f"r{i}", "_time": at(i), "app": "a", "v": DECIMALS[i]}
                    for i in range(10)
                ),
                *(
                    {"_msg": f"s{i}", "_time": at(i), "app": "b", "v": [*DECIMALS[:9], "n/a"][i]}
                    for i in range(10)
                ),
            ),
            params={"_stream_fields": "app"},
            note="The same values in two streams of one request: stream a's column is all "
            "decimals (float), stream b's has one text value (kept as text).",
        ),
        Case(
            "float_columns_many_random_decimals",
            lines(*random_decimal_rows()),
            params={"_stream_fields": "app"},
            note="200 pseudo-random decimals (seeded) in 5 streams of 40 rows: each stream's "
            "column is one block; some hold a value that is not a float64 (too long, or an "
            "integer part past uint64) and stay text.",
        ),
        Case(
            "float_msg_column",
            lines(*({"_msg": DECIMALS[i], "_time": at(i)} for i in range(10))),
            note="_msg is a column like the others.",
        ),
    ]


def path_cases() -> list[Case]:
    """Routing: unknown paths, other methods."""
    row = lines({"_msg": "routed", "_time": T})
    return [
        Case("unknown_insert_path", row, path="/insert/foo"),
        Case("unknown_top_level_path", row, path="/foo"),
        Case("insert_path_with_trailing_slash", row, path="/insert/jsonline/"),
        Case("insert_path_with_double_slash", row, path="//insert/jsonline"),
        Case("get_insert_jsonline", b"", method="GET"),
        Case("put_insert_jsonline", row, method="PUT"),
        Case("options_insert_jsonline", b"", method="OPTIONS"),
    ]


def ingestion_cases() -> list[Case]:
    """Parameters, streams and times that changed after v1.26.0."""
    return [
        Case(
            "stream_from_the_stream_key",
            lines(
                {
                    "_msg": "m",
                    "_time": T,
                    "_stream": '{app="x",host="h"}',
                    "app": "x",
                    "host": "h",
                    "other": "o",
                }
            ),
            note="No _stream_fields: a _stream key in the data names the stream.",
        ),
        Case(
            "stream_key_tags_follow_the_fields",
            lines({"_msg": "m", "_time": T, "_stream": '{app="x",gone="g"}', "app": "y"}),
            note="A tag without a field of that name is left out; a field's value wins.",
        ),
        Case(
            "stream_key_unparsable",
            lines({"_msg": "m", "_time": T, "_stream": "not a stream"}, {"_msg": "ok", "_time": T}),
        ),
        Case(
            "stream_id_key_without_stream_fields",
            lines({"_msg": "m", "_time": T, "_stream_id": "abc", "k": "v"}),
        ),
        Case(
            "time_key_with_another_time_field",
            lines({"_msg": "m", "ts": T, "_time": "2026-11-20T09:00:00Z", "k": "v"}),
            params={"_time_field": "ts"},
        ),
        Case(
            "list_parameters_are_trimmed",
            lines({"_msg": "m", "_time": T, "service": "api", "host": "h1", "secret": "s"}),
            params={"_stream_fields": " service , ,host ", "ignore_fields": " secret "},
        ),
        Case(
            "stream_field_name_with_equals_sign",
            lines({"_msg": "m", "_time": T}),
            params={"_stream_fields": "a=b"},
        ),
        Case(
            "preserve_json_keys",
            lines(
                {
                    "_msg": "m",
                    "_time": T,
                    "ctx": {"a": 1, "b": {"c": "x"}},
                    "deep": {"keep": {"y": [1, 2]}, "flat": {"z": 1}},
                }
            ),
            params={"preserve_json_keys": "ctx,deep.keep"},
        ),
        Case(
            "time_offset_without_colon", lines({"_msg": "m", "_time": "2026-11-20T10:15:30+0200"})
        ),
        Case("time_unix_3e9_is_seconds", lines({"_msg": "m", "_time": 3_000_000_000})),
        Case("time_unix_9_3e9_is_millis", lines({"_msg": "m", "_time": 9_300_000_000})),
        Case(
            "identity_encoding",
            lines({"_msg": "m", "_time": T}),
            headers={"Content-Encoding": "identity"},
        ),
        Case("debug_stores_nothing", lines({"_msg": "m", "_time": T}), params={"debug": "1"}),
        Case(
            "form_content_type_eats_the_body",
            lines({"_msg": "m", "_time": T}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        Case(
            "long_nested_field_name",
            lines({"_msg": "m", "_time": T, "outer": {"k" * 130: "v", "short": "s"}}),
        ),
        Case(
            "extra_fields_override_and_stream",
            lines({"_msg": "m", "_time": T, "env": "dev", "app": "a"}),
            params={"extra_fields": "env=prod,zone=z1", "_stream_fields": "zone,app"},
        ),
    ]


def crash_cases() -> list[Case]:
    """Requests that make the server exit; each is sent to a server of its own."""
    return [
        Case(
            "duplicate_stream_field_key_crashes_the_server",
            lines({"_msg": "m", "_time": T}) + b'{"_msg":"m","svc":"a","svc":"b"}\n',
            params={"_stream_fields": "svc"},
            crashes=True,
            note="Two stream tags with one name: registering the stream panics (FATAL: cannot "
            "unmarshal StreamTags) and the process exits; no answer.",
        ),
    ]


def merge_cases() -> list[Case]:
    """What the server's merges do to rows stored by several requests (``block_stream_merger.go``):
    each request is flushed into a part of its own, then ``/internal/force_merge`` merges the
    in-memory parts into one part and that part again (``datadb.mustForceMergeAllParts``)."""
    filler = "x" * 100_000  # the same text in every filler row: no new arena text
    fillers = [{"_msg": filler, "_time": at(10 + i)} for i in range(21)]
    a_decimals = [
        {"_msg": f"a{i}", "_time": at(i), "app": "a", "v": DECIMALS[i]} for i in range(10)
    ]
    b_values = [*DECIMALS[:9], "n/a"]
    b_decimals = [
        {"_msg": f"b{i}", "_time": at(i), "app": "b", "v": b_values[i]} for i in range(10)
    ]
    return [
        Case(
            "merge_column_limit_across_requests",
            lines(wide("a", 998, _msg="r1", _time=at(1))),
            more=[
                lines(wide("b", 998, _msg="r2", _time=at(2))),
                lines({"_msg": "r3", "_time": at(3), "x": "1", "y": "2", "z": "3"}),
            ],
            merge_after=True,
            note="Three requests, one row each, one stream: r1 and r2 have 999 names each "
            "(_msg and 998 keys), r3 has 4. Each request is a block of its own and keeps its "
            "row; the merge packs the three rows into one block, where r3 makes 1998 + 4 > "
            "2000: r3 disappears after the merge, with the warning.",
        ),
        Case(
            "merge_column_limit_follows_time_across_requests",
            lines(wide("a", 998, _msg="r1", _time=at(1))),
            more=[
                lines(wide("b", 998, _msg="r2", _time=at(3))),
                lines({"_msg": "r3", "_time": at(2), "x": "1", "y": "2", "z": "3"}),
            ],
            merge_after=True,
            note="As merge_column_limit_across_requests, but r3 (sent last) is older than r2: "
            "the merged block holds r1, r3, r2 in time order and r2 is the row dropped.",
        ),
        Case(
            "merge_equal_timestamps_in_go_heap_order",
            lines(wide("a", 500, _msg="a", _time=at(5))),
            more=[lines(wide(name, 500, _msg=name, _time=at(5))) for name in "bcde"],
            merge_after=True,
            note="Five requests, one row each at the same time, 501 names each. The merge reads "
            "blocks with equal first timestamps in the order Go's container/heap leaves the "
            "parts' readers: a, e, d, c, b; the block then takes a, e and d (1503 names) and "
            "drops c and b (2 rows), not the rows sent last.",
        ),
        Case(
            "merge_float_across_requests",
            lines(a_decimals[0], *b_decimals[:9]),
            more=[lines(*a_decimals[1:], b_decimals[9])],
            params={"_stream_fields": "app"},
            merge_after=True,
            note="Stream a: a lone 0.3 (a one-row block: a constant, read back as sent), then "
            "nine other decimals in a second request (a float64 column: 0.47764 reads back as "
            "0.47764000000000006). Merged into one block of ten decimals, 0.3 becomes "
            "0.30000000000000004 and 0.47764000000000006, parsed again, 0.4776400000000001. "
            "Stream b: nine decimals (float64) then 'n/a': merged, the column is text and keeps "
            "the texts the float64 column had made.",
        ),
        Case(
            "merge_a_block_alone_is_not_rebuilt",
            lines(
                *({"_msg": f"r{i}", "_time": at(i), "v": v} for i, v in enumerate(DECIMALS)),
            ),
            merge_after=True,
            note="One request, one block: the merge writes it out as it is (mustWriteBlockData), "
            "so 0.47764000000000006 stays (rebuilt, it would become 0.4776400000000001).",
        ),
        Case(
            "merge_keeps_a_block_of_2_mib_whole",
            gzipped(wide("a", 998, _msg="A", _time=at(1)), *fillers),
            more=[
                gzipped(
                    wide("b", 998, _msg="B", _time=at(40)),
                    {"_msg": "C", "_time": at(41), "x": "1", "y": "2", "z": "3"},
                )
            ],
            headers={"Content-Encoding": "gzip"},
            merge_after=True,
            compact_over=1000,
            note="Request 1: A (999 names) and 21 filler rows of 100 kB, one block of 2.1 MB "
            "(>= 2 MiB); request 2: B (999 names) and C (4). A merge writes a block of 2 MiB or "
            "more out as it is when nothing is pending, so B and C stay in a block of their own "
            "and C is kept (in one block it would be dropped: 1997 + 4 > 2000).",
        ),
        Case(
            "merge_keeps_consecutive_blocks_of_2_mib_whole",
            gzipped(*({"_msg": filler, "_time": at(i), "v": DECIMALS[i % 10]} for i in range(42))),
            headers={"Content-Encoding": "gzip"},
            merge_after=True,
            compact_over=1000,
            note="One request, one stream, 42 rows of 100 kB with a decimal each: two blocks of "
            "2.1 MB, each with a float64 column (0.47764 reads back as 0.47764000000000006). "
            "The merge writes both out as they are, the second one too although it is not the "
            "stream's first (nothing pending): rebuilt, 0.47764000000000006 would become "
            "0.4776400000000001.",
        ),
        Case(
            "merge_keeps_blocks_apart_past_4_mib",
            gzipped(
                wide("a", 998, _msg="A", _time=at(1)),
                *fillers[:20],
                {"_msg": "w" * 80_000, "_time": at(35)},
            ),
            more=[
                gzipped(
                    wide("b", 998, _msg="B", _time=at(40)),
                    {"_msg": "C", "_time": at(41), "x": "1", "y": "2", "z": "3"},
                    *({"_msg": filler, "_time": at(42 + i)} for i in range(19)),
                    {"_msg": "y" * 250_000, "_time": at(70)},
                )
            ],
            headers={"Content-Encoding": "gzip"},
            merge_after=True,
            compact_over=1000,
            note="Two blocks under 2 MiB each (2.09 MB and 2.16 MB) but 4 MiB or more together: "
            "the merge does not unpack them (the 2*maxUncompressedBlockSize rule), C is kept.",
        ),
        Case(
            "merge_in_memory_parts_then_the_merged_part",
            gzipped(wide("a", 998, _msg="A", _time=at(1)), wide("w", 998, _msg="W", _time=at(2))),
            more=[
                gzipped(wide("v", 998, _msg="V", _time=at(3)), *fillers),
                gzipped(
                    wide("b", 998, _msg="B", _time=at(40)),
                    {"_msg": "C", "_time": at(41), "x": "1", "y": "2", "z": "3"},
                ),
            ],
            headers={"Content-Encoding": "gzip"},
            merge_after=True,
            compact_over=1000,
            note="Three in-memory parts. The forced merge first merges them into one part: the "
            "rows of the first two reach 2 MiB and become one block, where V and the fillers "
            "are dropped (1998 + 999 > 2000), leaving A and W; B and C stay a block of their "
            "own. Then it merges that part again: the two small blocks are packed into one and "
            "B and C are dropped too (two warnings).",
        ),
    ]


def new_cases() -> list[Case]:
    """Cases first recorded against v1.52.2 (tenants 7100 and up, in this order)."""
    cases = column_limit_cases() + encoding_cases() + path_cases() + ingestion_cases()
    cases += crash_cases() + merge_cases()
    for number, case in enumerate(cases):
        case.account = 7100 + number
    return cases


def all_cases() -> list[Case]:
    return v1_26_cases() + new_cases()
