"""Every recorded case of a real VictoriaLogs v1.26.0 replayed against the test receiver.

``/work/shared/vlogs-conformance/victorialogs-v1.26.0.json`` (see its README) holds requests
sent to a real server and the rows it stored. Each case is replayed twice: straight into the
storage model, and over HTTP into a running ``FakeVictoriaLogs``, read back with ``VLogsClient``.
Status, error text and stored rows (in the server's key order) must match.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from loguru_vlogs.testing import FakeVictoriaLogs, VLogsClient
from loguru_vlogs.testing._gotime import format_rfc3339_nano, parse_rfc3339
from loguru_vlogs.testing._store import Store

CONFORMANCE_FILE = Path(
    os.environ.get(
        "VLOGS_CONFORMANCE_FILE", "/work/shared/vlogs-conformance/victorialogs-v1.26.0.json"
    )
)
#: The recording was made around this time, with -retentionPeriod=100y, server zone UTC.
RECORDED_NOW = parse_rfc3339(b"2026-11-20T12:00:00Z", 0) or 0
INGESTION_TIME = format_rfc3339_nano(RECORDED_NOW)

#: Cases the receiver deliberately does not reproduce: {name: reason}. Kept empty on purpose;
#: an entry makes its case an expected (strict) failure, so a fix is noticed.
NOT_MODELLED: dict[str, str] = {}

if not CONFORMANCE_FILE.exists():  # pragma: no cover - the file ships with the workspace
    pytest.skip(f"no conformance file at {CONFORMANCE_FILE}", allow_module_level=True)
CASES: list[dict[str, Any]] = json.loads(CONFORMANCE_FILE.read_text(encoding="utf-8"))["cases"]


def as_recorded(rows: list[list[Any]]) -> list[dict[str, Any]]:
    """The README's convention: first duplicate kept, others in ``_duplicates``; no ``_stream_id``;
    the ingestion time as a placeholder; rows sorted by their JSON text."""
    result = []
    for pairs in rows:
        row: dict[str, Any] = {}
        for name, value in pairs:
            if name in row:
                row.setdefault("_duplicates", []).append([name, value])
            else:
                row[name] = value
        row.pop("_stream_id", None)
        if row.get("_time") == INGESTION_TIME:
            row["_time"] = "<ingestion time>"
        result.append(row)
    return sorted(result, key=lambda r: json.dumps(r, ensure_ascii=False))


def zstandard_missing() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return True
    return False


def cases() -> list[Any]:
    """One parameter per case, named after it; NOT_MODELLED ones are strict xfails."""
    params = []
    for case in CASES:
        marks = []
        if case["headers"].get("Content-Encoding") == "zstd" and zstandard_missing():
            marks.append(pytest.mark.skip(reason="zstd needs the optional zstandard package"))
        if case["name"] in NOT_MODELLED:
            marks.append(pytest.mark.xfail(reason=NOT_MODELLED[case["name"]], strict=True))
        params.append(pytest.param(case, id=case["name"], marks=marks))
    return params


def key_orders(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [list(row) for row in rows]


def test_the_recording_is_complete() -> None:
    """45 cases, unique names, and every NOT_MODELLED entry names a real case."""
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)) >= 45
    assert set(NOT_MODELLED) <= set(names)


@pytest.mark.parametrize("case", cases())
def test_the_storage_model_stores_what_the_server_stored(case: dict[str, Any]) -> None:
    """Same status, same error text, same rows, same key order."""
    store = Store(retention="100y", timezone_offset=0)
    result = store.ingest(
        query=urlencode(case["params"]),
        headers=case["headers"],
        body=base64.b64decode(case["body_b64"]),
        now_ns=RECORDED_NOW,
    )
    rows = as_recorded(
        store.select("*", account_id=int(case["account"]), project_id=int(case["project"]))
    )
    assert case["status"] == result.status
    if case["status"] != 200:
        assert case["response"].strip() == result.body.strip()
    assert case["stored"] == rows
    assert key_orders(case["stored"]) == key_orders(rows)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVictoriaLogs]:
    # Each case has its own tenant, so one server serves them all.
    with FakeVictoriaLogs(retention="100y", timezone_offset=0, clock=lambda: RECORDED_NOW) as srv:
        yield srv


def post(url: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """Send the recorded bytes and headers exactly (no client library defaults)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.mark.parametrize("case", cases())
def test_the_http_receiver_stores_what_the_server_stored(
    server: FakeVictoriaLogs, case: dict[str, Any]
) -> None:
    """The same replay through sockets: POST the bytes, read back with ``VLogsClient``."""
    path = "/insert/jsonline?" + urlencode(case["params"])
    status, text = post(server.url, path, case["headers"], base64.b64decode(case["body_b64"]))
    client = VLogsClient(server.url)
    rows = as_recorded(client.select("*", int(case["account"]), int(case["project"])))
    assert case["status"] == status
    if case["status"] != 200:
        assert case["response"].strip() == text.strip()
    assert case["stored"] == rows
    assert key_orders(case["stored"]) == key_orders(rows)
