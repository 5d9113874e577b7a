"""Recorded cases of real VictoriaLogs servers replayed against the test receiver.

``tests/data/conformance/`` (see its README) holds requests sent to real servers and what they
answered and stored: ``victorialogs-v1.52.2.json`` (the server the project targets) and
``victorialogs-v1.26.0.json`` (the one before). Every v1.52.2 case is replayed twice: straight
into the storage model, and over HTTP into a running ``FakeVictoriaLogs``, read back with
``VLogsClient``. Status, error text and stored rows (in the server's key order) must match.
A case of several requests sends them in order. A case recorded with ``stored_after_merge``
is replayed once more into a fresh store and a fresh ``FakeVictoriaLogs``, then merged
(``Store.force_merge``, ``GET /internal/force_merge``): the rows must then be the ones the
server kept after its forced merge, and the rows it dropped must be in the fake's warnings.

The v1.26.0 cases are replayed the same way where v1.52.2 still answers them the same way;
:data:`SUPERSEDED_BY_V1_52` lists the others with what changed. Their stored rows are compared
as dicts: v1.52.2 prints every row's keys sorted by name (``_msg``, ``_stream``, ``_time``, ...)
where v1.26.0 printed ``_time``, ``_stream``, ``_msg`` first, so no v1.26.0 key order holds.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from loguru_vlogs.testing import FakeVictoriaLogs, VLogsClient
from loguru_vlogs.testing._block import MAX_COLUMNS_PER_BLOCK, read_back
from loguru_vlogs.testing._gojson import parse_line
from loguru_vlogs.testing._gotime import format_rfc3339_nano, parse_rfc3339
from loguru_vlogs.testing._server import static_answer
from loguru_vlogs.testing._store import IngestResult, Store

DATA = Path(__file__).resolve().parent / "data" / "conformance"
CURRENT_FILE = DATA / "victorialogs-v1.52.2.json"
PREVIOUS_FILE = DATA / "victorialogs-v1.26.0.json"
#: The v1.26.0 file has no ``recorded_now``; its README says it was recorded around this time.
PREVIOUS_RECORDED_NOW = "2026-11-20T12:00:00Z"

#: v1.26.0 cases v1.52.2 answers differently: {name: what changed}. Each must name a case.
SUPERSEDED_BY_V1_52: dict[str, str] = {
    "reserved_stream_field_in_json": "data keys _stream and _stream_id are no longer stored "
    "(v1.26.0 kept them as ordinary columns, so rows came back with duplicate keys); the "
    'server logs \'skipping "_stream" field ... since it clashes with the automatically '
    "generated field'",
}

#: Cases the receiver deliberately does not reproduce: {name: reason}. Kept empty on purpose;
#: an entry makes its case an expected (strict) failure, so a fix is noticed.
NOT_MODELLED: dict[str, str] = {}


def load(path: Path) -> dict[str, Any]:
    """A recording. A missing file fails the collection of this module (never a skip)."""
    if not path.is_file():
        pytest.fail(f"missing conformance recording {path}", pytrace=False)
    recording: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return recording


CURRENT = load(CURRENT_FILE)
PREVIOUS = load(PREVIOUS_FILE)
CURRENT_BY_NAME = {case["name"]: case for case in CURRENT["cases"]}


def clock(recording: dict[str, Any]) -> int:
    """The recording's "now", in nanoseconds (ingestion times and the retention window)."""
    text = recording.get("recorded_now", PREVIOUS_RECORDED_NOW)
    nanos = parse_rfc3339(text.encode(), 0)
    assert nanos is not None, text
    return nanos


def compact(value: str) -> str:
    """``record.compact``: a long value as ``<N chars, sha256 HEX16>``."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"<{len(value)} chars, sha256 {digest}>"


def as_recorded(
    rows: list[list[Any]], now: int, compact_over: int | None = None
) -> list[dict[str, Any]]:
    """The README's convention: first duplicate kept, others in ``_duplicates``; no ``_stream_id``;
    the ingestion time as a placeholder; values longer than ``compact_over`` compacted; rows
    sorted by their JSON text."""
    ingestion_time = format_rfc3339_nano(now)
    result = []
    for pairs in rows:
        row: dict[str, Any] = {}
        for name, text in pairs:
            value = compact(text) if compact_over is not None and len(text) > compact_over else text
            if name in row:
                row.setdefault("_duplicates", []).append([name, value])
            else:
                row[name] = value
        row.pop("_stream_id", None)
        if row.get("_time") == ingestion_time:
            row["_time"] = "<ingestion time>"
        result.append(row)
    return sorted(result, key=lambda r: json.dumps(r, ensure_ascii=False))


def zstandard_missing() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return True
    return False


def params(recording: dict[str, Any], version: str, skip: dict[str, str]) -> list[Any]:
    """One parameter per case, named ``<version>:<case>``; NOT_MODELLED ones are strict xfails."""
    result = []
    for case in recording["cases"]:
        if case["name"] in skip:
            continue
        marks = []
        if case["headers"].get("Content-Encoding") == "zstd" and zstandard_missing():
            marks.append(pytest.mark.skip(reason="zstd needs the optional zstandard package"))
        if case["name"] in NOT_MODELLED:
            marks.append(pytest.mark.xfail(reason=NOT_MODELLED[case["name"]], strict=True))
        params_for = (recording, case)
        result.append(pytest.param(*params_for, id=f"{version}:{case['name']}", marks=marks))
    return result


ALL_CASES = params(CURRENT, "v1.52.2", {}) + params(PREVIOUS, "v1.26.0", SUPERSEDED_BY_V1_52)


def key_orders(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [list(row) for row in rows]


def compare_rows(
    recording: dict[str, Any],
    expected: list[dict[str, Any]],
    got: list[Any],
    compact_over: int | None = None,
) -> None:
    rows = as_recorded(got, clock(recording), compact_over)
    assert expected == rows
    if recording is not PREVIOUS:
        assert key_orders(expected) == key_orders(rows)


# -- the recordings themselves ------------------------------------------------------------


def test_the_recordings_are_in_the_repository_and_complete() -> None:
    """Both files load; unique names and tenants; every v1.26.0 case was recorded again; every
    SUPERSEDED_BY_V1_52 / NOT_MODELLED entry names a real case."""
    current, previous = CURRENT, PREVIOUS
    names = [case["name"] for case in current["cases"]]
    assert len(names) == len(set(names)) >= 90
    tenants = [(case["account"], case["project"]) for case in current["cases"]]
    assert len(tenants) == len(set(tenants))
    old_names = [case["name"] for case in previous["cases"]]
    assert len(old_names) == len(set(old_names)) == 45
    assert set(old_names) <= set(names)
    assert set(SUPERSEDED_BY_V1_52) <= set(old_names)
    assert set(NOT_MODELLED) <= set(names) | set(old_names)
    assert parse_rfc3339(current["recorded_now"].encode(), 0) is not None


def test_superseded_cases_did_change() -> None:
    """A SUPERSEDED_BY_V1_52 entry is only right while v1.52.2 really stores something else."""
    previous = {case["name"]: case for case in PREVIOUS["cases"]}
    for name in SUPERSEDED_BY_V1_52:
        old, new = previous[name], CURRENT_BY_NAME[name]
        assert (old["status"], old["stored"]) != (new["status"], new["stored"]), name


def test_kept_v1_26_cases_still_answer_the_same_on_v1_52() -> None:
    """The v1.26.0 cases replayed below are exactly those v1.52.2 answers and stores the same
    way (rows compared as dicts: the key order changed for all of them)."""
    for old in PREVIOUS["cases"]:
        if old["name"] in SUPERSEDED_BY_V1_52:
            continue
        new = CURRENT_BY_NAME[old["name"]]
        assert (old["status"], old["response"].strip(), old["stored"]) == (
            new["status"],
            new["response"].strip(),
            new["stored"],
        ), old["name"]


# -- replay ---------------------------------------------------------------------------------


def requests_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's requests in the order sent: its own, then those under ``more``; each with
    ``body_b64`` and what the server answered."""
    return [case, *case.get("more", [])]


def replay_straight(case: dict[str, Any], now: int) -> tuple[list[IngestResult], Store]:
    store = Store(retention="100y", timezone_offset=0)
    results = [
        store.ingest(
            method=case.get("method", "POST"),
            query=urlencode(case["params"]),
            headers=case["headers"],
            body=base64.b64decode(request["body_b64"]),
            now_ns=now,
        )
        for request in requests_of(case)
    ]
    return results, store


def check_answers(case: dict[str, Any], results: list[IngestResult]) -> None:
    """Each request: same status (or the same exit), same error text."""
    for request, result in zip(requests_of(case), results, strict=True):
        if request["status"] is None:  # the real server exited instead of answering
            assert (0, case["server_exited"]) == (result.status, True)
            assert result.crash is not None
            assert any(result.crash in line for line in case["server_log"])
        else:
            assert request["status"] == result.status
            assert result.crash is None
        if request["status"] not in (None, 200):
            assert request["response"].strip() == result.body.strip()


@pytest.mark.parametrize(("recording", "case"), ALL_CASES)
def test_the_storage_model_stores_what_the_server_stored(
    recording: dict[str, Any], case: dict[str, Any]
) -> None:
    """Same status, same error text, same rows, same key order."""
    answer = static_answer(case.get("method", "POST"), case.get("path", "/insert/jsonline"))
    if answer is not None:  # not an insert: nothing to store, the router answers
        status, body, content_type = answer
        assert (case["status"], case["response"], case["stored"]) == (
            status,
            body.decode(),
            [],
        )
        assert case.get("content_type", content_type) == content_type
        return
    results, store = replay_straight(case, clock(recording))
    rows = store.select("*", account_id=int(case["account"]), project_id=int(case["project"]))
    check_answers(case, results)
    compare_rows(recording, case["stored"], rows, case.get("compact_over"))


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[int, FakeVictoriaLogs]]:
    """One fake per recording clock; each case has its own tenant, so a fake serves them all."""
    running: dict[int, FakeVictoriaLogs] = {}
    try:
        for recording in (CURRENT, PREVIOUS):
            now = clock(recording)
            if now not in running:
                fake = FakeVictoriaLogs(
                    retention="100y", timezone_offset=0, clock=lambda now=now: now
                )
                running[now] = fake.start()
        yield running
    finally:
        for fake in running.values():
            fake.stop()


def send(
    url: str, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int | None, str, str | None]:
    """The recorded bytes, method and headers exactly (no client library defaults)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, text, response.getheader("Content-Type")
    except (ConnectionError, http.client.RemoteDisconnected):
        return None, "", None
    finally:
        conn.close()


def send_all(url: str, case: dict[str, Any]) -> None:
    """Every request of the case, as recorded; each answer as the server's."""
    query = urlencode(case["params"])
    target = case.get("path", "/insert/jsonline") + ("?" + query if query else "")
    method = case.get("method", "POST")
    for request in requests_of(case):
        body = base64.b64decode(request["body_b64"])
        status, text, content_type = send(url, method, target, case["headers"], body)
        assert request["status"] == status
        if request["status"] not in (None, 200):
            assert request["response"].strip() == text.strip()
        if "content_type" in request:
            assert request["content_type"] == content_type


@pytest.mark.parametrize(("recording", "case"), ALL_CASES)
def test_the_http_receiver_stores_what_the_server_stored(
    servers: dict[int, FakeVictoriaLogs], recording: dict[str, Any], case: dict[str, Any]
) -> None:
    """The same replay through sockets: send the bytes, read back with ``VLogsClient``."""
    server = servers[clock(recording)]
    send_all(server.url, case)
    rows = VLogsClient(server.url).select("*", int(case["account"]), int(case["project"]))
    compare_rows(recording, case["stored"], rows, case.get("compact_over"))


# -- after a forced merge -------------------------------------------------------------------


def merge_cases() -> list[Any]:
    return [
        pytest.param(case, id=case["name"])
        for case in CURRENT["cases"]
        if "stored_after_merge" in case
    ]


def column_limit_drops(lines: Any) -> list[int]:
    """The N of each ``ignoring N rows in the block`` warning (the server's log lines have a
    ``warn: `` prefix)."""
    found = []
    for line in lines:
        if COLUMN_LIMIT_WARNING in line:
            found.append(int(line.split("ignoring ", 1)[1].split()[0]))
    return found


@pytest.mark.parametrize("case", merge_cases())
def test_the_storage_model_after_a_merge_stores_what_the_server_stored(
    case: dict[str, Any],
) -> None:
    """``Store.force_merge``: the rows the server kept after ``/internal/force_merge`` (values
    re-encoded, rows past the column limit gone), and a warning for every drop it logged."""
    results, store = replay_straight(case, clock(CURRENT))
    check_answers(case, results)
    merged = store.force_merge()
    rows = store.select("*", account_id=int(case["account"]), project_id=int(case["project"]))
    compare_rows(CURRENT, case["stored_after_merge"], rows, case.get("compact_over"))
    assert column_limit_drops(case["server_log_after_merge"]) == column_limit_drops(merged.warnings)
    assert sum(column_limit_drops(merged.warnings)) == merged.dropped


@pytest.mark.parametrize("case", merge_cases())
def test_the_http_receiver_after_a_merge_stores_what_the_server_stored(
    case: dict[str, Any],
) -> None:
    """The same through sockets, on a fake of its own (a merge takes in every tenant's parts,
    as the recorder's server of its own did): ``GET /internal/force_merge`` answers 200 once
    merged; the merge warnings are recorded with that request."""
    now = clock(CURRENT)
    with FakeVictoriaLogs(retention="100y", timezone_offset=0, clock=lambda: now) as server:
        send_all(server.url, case)
        client = VLogsClient(server.url)
        before = client.select("*", int(case["account"]), int(case["project"]))
        compare_rows(CURRENT, case["stored"], before, case.get("compact_over"))
        assert (200, "", None) == send(server.url, "GET", "/internal/force_merge", {}, b"")
        rows = client.select("*", int(case["account"]), int(case["project"]))
        compare_rows(CURRENT, case["stored_after_merge"], rows, case.get("compact_over"))
        merge_request = server.requests[-2]  # the last one is the query
        assert "/internal/force_merge" == merge_request.path
        assert column_limit_drops(case["server_log_after_merge"]) == column_limit_drops(
            merge_request.warnings
        )
        assert list(merge_request.warnings) == server.merge_warnings


# -- what the new cases are about -----------------------------------------------------------


def test_the_merge_cases_show_what_a_merge_does() -> None:
    """What the recording shows (and the replays above hold the fake to): rows that were stored
    and visible disappear in a merge, the column limit counted again over rows of several
    requests in time order; values read back change once rows of several requests share a
    block; blocks of 2 MiB, or that would make 4 MiB together, are not unpacked; a forced
    merge merges the in-memory parts, then the merged part again."""

    def msgs(name: str, key: str) -> list[str]:
        return [row["_msg"] for row in CURRENT_BY_NAME[name][key] if len(row["_msg"]) < 10]

    def values(name: str, key: str) -> dict[str, str]:
        return {row["_msg"]: row["v"] for row in CURRENT_BY_NAME[name][key]}

    expected = {
        "column_limit_block_split_by_size": (
            ["plain", "wide a", "wide b", "wide c"],
            ["wide a", "wide b"],
        ),
        "merge_column_limit_across_requests": (["r1", "r2", "r3"], ["r1", "r2"]),
        "merge_column_limit_follows_time_across_requests": (["r1", "r2", "r3"], ["r1", "r3"]),
        "merge_keeps_a_block_of_2_mib_whole": (["A", "B", "C"], ["A", "B", "C"]),
        "merge_keeps_blocks_apart_past_4_mib": (["A", "B", "C"], ["A", "B", "C"]),
        "merge_in_memory_parts_then_the_merged_part": (["A", "B", "C", "V", "W"], ["A", "W"]),
        "merge_equal_timestamps_in_go_heap_order": (["a", "b", "c", "d", "e"], ["a", "d", "e"]),
    }
    for name, (before, after) in expected.items():
        assert (before, after) == (msgs(name, "stored"), msgs(name, "stored_after_merge")), name
    drops = {
        name: column_limit_drops(case["server_log_after_merge"])
        for name, case in CURRENT_BY_NAME.items()
        if "server_log_after_merge" in case
    }
    assert [22, 2] == drops["merge_in_memory_parts_then_the_merged_part"]
    assert [1] == drops["merge_column_limit_across_requests"]
    floats = "merge_float_across_requests"
    before, after = values(floats, "stored"), values(floats, "stored_after_merge")
    assert (before["a0"], after["a0"]) == ("0.3", "0.30000000000000004")
    assert (before["a1"], after["a1"]) == ("0.47764000000000006", "0.4776400000000001")
    assert (before["b1"], after["b1"]) == ("0.47764000000000006", "0.47764000000000006")
    alone = "merge_a_block_alone_is_not_rebuilt"
    assert values(alone, "stored") == values(alone, "stored_after_merge")
    assert "0.47764000000000006" in values(alone, "stored_after_merge").values()
    whole = CURRENT_BY_NAME["merge_keeps_consecutive_blocks_of_2_mib_whole"]
    assert whole["stored"] == whole["stored_after_merge"]
    assert "0.47764000000000006" in {row["v"] for row in whole["stored_after_merge"]}


COLUMN_LIMIT_WARNING = f"because they contain more than {MAX_COLUMNS_PER_BLOCK} unique field names"


def column_limit_cases() -> list[Any]:
    return [
        pytest.param(case, id=case["name"])
        for case in CURRENT["cases"]
        if case["name"].startswith("column_limit_")
    ]


@pytest.mark.parametrize("case", column_limit_cases())
def test_the_column_limit_drops_and_warns_like_the_server(case: dict[str, Any]) -> None:
    """Per block, at most 2000 field names: the fake drops the same rows (the replay above) and
    logs the same warning, ``ignoring N rows in the block, ...``, with the same N."""
    (result,), _ = replay_straight(case, clock(CURRENT))
    server = [line.split(": ", 1)[1] for line in case["server_log"] if COLUMN_LIMIT_WARNING in line]
    fake = [line for line in result.warnings if COLUMN_LIMIT_WARNING in line]
    assert [w.split(":", 1)[0] for w in server] == [w.split(":", 1)[0] for w in fake]
    dropped = sum(int(w.split()[1]) for w in server)
    assert dropped == result.dropped.get("column_limit", 0)


def test_the_column_limit_cases_cover_the_rule() -> None:
    """The recording shows the rule itself: counted per block (stream, day, 2 MiB of rows), by
    the row's field count (``_msg`` and the default ``_msg`` included, ``_time`` and ``_stream``
    not), dropping the row that passes 2000 and every later row of the block."""
    stored = {
        name: [row["_msg"] for row in case["stored"]] for name, case in CURRENT_BY_NAME.items()
    }
    default_msg = "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field"
    assert stored["column_limit_three_wide_rows"] == ["wide a", "wide b"]
    assert stored["column_limit_exactly_2000"] == ["A", "B", "C"]
    assert stored["column_limit_exactly_2000_with_time_and_stream"] == [
        "C",
        default_msg,
        default_msg,
    ]
    assert stored["column_limit_one_past"] == ["A"]
    assert stored["column_limit_counts_the_rows_fields_not_new_names"] == ["A", "B"]
    assert stored["column_limit_is_per_stream"] == [
        *(f"narrow {i}" for i in range(1, 5)),
        "wide a",
        "wide b",
    ]
    assert stored["column_limit_follows_time_order"] == ["wide a", "wide b"]
    assert stored["column_limit_is_per_day"] == ["plain", "wide a", "wide b", "wide c, next day"]
    assert stored["column_limit_block_split_by_size"] == ["plain", "wide a", "wide b", "wide c"]


def float_cases() -> list[Any]:
    prefixes = ("float_", "uint_", "int_", "ipv4_", "iso8601_")
    return [
        pytest.param(case, id=case["name"])
        for case in CURRENT["cases"]
        if case["name"].startswith(prefixes)
    ]


@pytest.mark.parametrize("case", float_cases())
def test_column_values_read_back_bit_for_bit(case: dict[str, Any]) -> None:
    """Per column of a block: the values sent, through ``_block.read_back`` (constant,
    dictionary, uint, int, float64, IPv4, ISO8601 or text), are the values the server returned."""
    lines = base64.b64decode(case["body_b64"]).splitlines()
    sent = [dict(parse_line(line)) for line in lines]  # values as the server reads them
    streams: dict[str, list[dict[str, str]]] = {}
    for row in sent:
        streams.setdefault(row.get("app", ""), []).append(row)
    returned = {(row.get("app", ""), row["_time"]): row for row in case["stored"]}
    checked = 0
    for rows in streams.values():
        names = sorted({name for row in rows for name in row} - {"_time", "app"})
        for name in names:
            values = [row.get(name, "") for row in rows]
            same = len(set(values)) == 1 and len(values[0].encode()) <= 256
            expected = values if same else read_back(values)
            got = [
                returned[(row.get("app", ""), format_time(row["_time"]))].get(name, "")
                for row in rows
            ]
            assert expected == got, name
            checked += 1
    assert checked


def format_time(text: str) -> str:
    nanos = parse_rfc3339(text.encode(), 0)
    assert nanos is not None
    return format_rfc3339_nano(nanos)


def test_float_read_back_examples() -> None:
    """The documented examples, as recorded."""
    values = {
        row["_msg"]: row["v"] for row in CURRENT_BY_NAME["float_column_json_strings"]["stored"]
    }
    assert (values["r0"], values["r1"], values["r2"]) == (
        "0.30000000000000004",
        "0.47764000000000006",
        "7",
    )
    exact = {
        row["_msg"]: row["v"] for row in CURRENT_BY_NAME["float_column_8_distinct_values"]["stored"]
    }
    assert (exact["r0"], exact["r2"]) == ("0.3", "7.0")
