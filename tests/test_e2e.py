"""End to end through the `vlogs_server` fixture: a real VictoriaLogs when one is at hand."""

from __future__ import annotations

import datetime
import re
import uuid
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def parse_server_time(text: str) -> datetime.datetime:
    """VictoriaLogs prints RFC3339Nano in UTC with trailing zeros trimmed."""
    match = _RFC3339.match(text)
    assert match, text
    base = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    fraction = (match.group(2) or "").ljust(9, "0")
    assert fraction[6:] == "000", f"sub-microsecond digits in {text}"
    return base.replace(microsecond=int(fraction[:6]), tzinfo=datetime.timezone.utc)


@pytest.mark.slow
def test_fifty_thousand_records_arrive_with_their_fields(vlogs_server: Any) -> None:
    """50 000 records with extras and exceptions all arrive, fields as documented, exact times."""
    run_id = uuid.uuid4().hex
    total = 50_000
    sink = VLogsSink(vlogs_server.url, service="e2e", fields={"run_id": run_id})
    times: dict[int, datetime.datetime] = {}
    # backtrace/diagnose off: loguru's variable-annotated tracebacks would dominate the run.
    logger.add(sink, backtrace=False, diagnose=False)
    logger.add(
        lambda m: times.__setitem__(m.record["extra"]["i"], m.record["time"]),
        format="{message}",
        backtrace=False,
        diagnose=False,
    )
    for i in range(total):
        if i % 100 == 0:
            try:
                raise ValueError(f"bad {i}")
            except ValueError:
                logger.bind(i=i).exception("failed {}", i)
        else:
            logger.bind(i=i, user_id=i % 97).info("order {} paid", i, amount=i / 10)
    logger.complete()
    query = f'run_id:="{run_id}"'
    assert total == vlogs_server.wait_for_count(query, total, timeout=60)
    stats = sink.stats()
    assert (total, 0) == (stats["sent"], stats["dropped_total"])

    rows = vlogs_server.rows(query, limit=total + 10)
    assert total == len(rows)
    seen = set()
    for row in rows:
        i = int(row["i"])
        seen.add(i)
        assert parse_server_time(row["_time"]) == times[i]
        assert "e2e" == row["service"]
        assert 'service="e2e"' in row["_stream"]
        assert "test_e2e" == row["module"]
        assert "test_fifty_thousand_records_arrive_with_their_fields" == row["function"]
        if i % 100 == 0:
            assert (f"failed {i}", "ERROR", "40") == (row["_msg"], row["level"], row["level_no"])
            assert "ValueError" == row["exception.type"]
            assert f"bad {i}" == row["exception.value"]
            assert "Traceback (most recent call last)" in row["exception.traceback"]
            assert 'raise ValueError(f"bad {i}")' in row["exception.traceback"]
        else:
            assert (f"order {i} paid", "INFO", "20") == (row["_msg"], row["level"], row["level_no"])
            assert (str(i % 97), str(i / 10)) == (row["user_id"], row["amount"])
    assert set(range(total)) == seen
