"""Spooled lines whose time left the server's window are re-timed before they are sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs._retime import refresh_times
from loguru_vlogs._spool import Spool
from loguru_vlogs.testing import FakeVictoriaLogs

NOW = 2_000_000_000.0  # 2033-05-18T03:33:20Z
WINDOW = (7 * 86400.0, 2 * 86400.0)


def line(when: float, **extra: object) -> bytes:
    stamp = dt.datetime.fromtimestamp(when, dt.timezone(dt.timedelta(hours=2)))
    return orjson.dumps(
        {"_msg": 'said "_time":"x"', "_time": stamp.isoformat(timespec="microseconds"), **extra}
    )


def test_lines_inside_the_window_keep_their_exact_bytes() -> None:
    """A recent batch is returned as it is, object for object."""
    payload = b"\n".join([line(NOW - 60), line(NOW - 6 * 86400), line(NOW + 86400)])
    assert (payload, 0) == refresh_times(payload, WINDOW, now=NOW)


def test_a_line_too_old_for_the_server_gets_now_and_keeps_its_original_time() -> None:
    """Older than max_age: `_time` becomes now (UTC) and the original goes to original_time."""
    old = line(NOW - 8 * 86400, user_id=7)
    fresh = line(NOW - 1)
    out, moved = refresh_times(old + b"\n" + fresh, WINDOW, now=NOW)
    first, second = out.split(b"\n")
    assert 1 == moved
    assert fresh == second
    record = orjson.loads(first)
    assert "2033-05-18T03:33:20.000000+00:00" == record["_time"]
    assert orjson.loads(old)["_time"] == record["original_time"]
    assert (7, 'said "_time":"x"') == (record["user_id"], record["_msg"])


def test_a_utc_time_written_with_z_is_read_on_every_python() -> None:
    """`...Z` (Python 3.10's fromisoformat() does not read it): old ones still move."""
    stamp = dt.datetime.fromtimestamp(NOW - 8 * 86400, dt.timezone.utc)
    old = orjson.dumps({"_msg": "m", "_time": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    out, moved = refresh_times(old, WINDOW, now=NOW)
    assert 1 == moved
    assert orjson.loads(old)["_time"] == orjson.loads(out)["original_time"]


def test_a_line_adjusted_before_keeps_its_first_original_time() -> None:
    """A line the encoder already re-timed keeps the record's real original time."""
    old = line(NOW - 9 * 86400, original_time="2020-01-01T00:00:00.000000+00:00")
    out, moved = refresh_times(old, WINDOW, now=NOW)
    assert 1 == moved
    assert "2020-01-01T00:00:00.000000+00:00" == orjson.loads(out)["original_time"]


def test_lines_without_a_readable_time_are_left_alone() -> None:
    """Lines the encoder did not write (or cannot be parsed) pass through unchanged."""
    payload = b'{"_msg":"a"}\n{"_msg":"b","_time":"yesterday"}\nnot json "_time":"2001-01-01T00:00:00+00:00"'
    assert (payload, 0) == refresh_times(payload, WINDOW, now=NOW)


def test_a_batch_that_aged_in_the_spool_is_still_stored(tmp_path: Path) -> None:
    """A spooled line older than the server's retention arrives re-timed instead of being dropped."""
    spool_dir = tmp_path / "spool"
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    lines = [line(now - 10 * 86400, i=i) for i in range(3)]
    with Spool(spool_dir) as spool:  # an earlier process that spooled 10 days ago
        spool.append(lines)
    with FakeVictoriaLogs() as server:  # retention 7 days, like the real server's default
        sink = VLogsSink(server.url, spool_dir=spool_dir)
        assert sink.drain(timeout=10)
        rows = server.rows()
        assert [0, 1, 2] == sorted(int(r["i"]) for r in rows)
        expected = {orjson.loads(x)["_time"] for x in lines}
        assert expected == {r["original_time"] for r in rows}
        assert 3 == sink.stats()["repairs"]["time_adjusted_in_spool"]
        logger.remove()
