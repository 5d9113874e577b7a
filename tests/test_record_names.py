"""The server's 2,000-names-per-block limit: an encoder never sends more than 1,000 distinct names.

VictoriaLogs keeps a stream's rows in blocks and drops a row (and the rest of its block) when
the distinct names already in the block plus the row's field count pass 2,000. Blocks gather
rows across requests and merges, so the encoder bounds every name it ever sends: at most
2000 - 990 (fields per row) - 10 (server-added fields) = 1,000 names, built-ins included.
Extras whose names would pass that go, with their values, into ``extra.overflow``.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from loguru import logger

from loguru_vlogs._record import RecordEncoder

from .corpus.record_checks import assert_within_limits, capture

#: 2000 (server) - 990 (default max_fields) - 10 (room for server-added fields).
DEFAULT_BUDGET = 1000


def server_keeps_all(rows: list[set[str]], limit: int = 2000) -> bool:
    """The server's block rule, in any order of the rows: none passes the limit.

    A row is kept when the names of the rows before it in its block plus its own field count
    stay within ``limit``. Checking the worst order (every other row before it) covers them all.
    """
    union: set[str] = set().union(*rows)
    return all(len(union) + len(row) <= limit for row in rows)


def encode_all(encoder: RecordEncoder, extras_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log one record per extras mapping, in order, and encode them with ``encoder``."""
    with capture() as messages:
        for extras in extras_list:
            logger.bind(**extras).info("m")
    assert len(extras_list) == len(messages)
    return [assert_within_limits(encoder.encode(m.record, str(m))) for m in messages]


def sent_extras(obj: dict[str, Any]) -> dict[str, Any]:
    """The record's extras as sent: fields named like them, plus extra.overflow's content."""
    found = {k: v for k, v in obj.items() if k.startswith("r")}
    if "extra.overflow" in obj:
        found.update(orjson.loads(obj["extra.overflow"]))
    return found


def wide(i: int, width: int = 600) -> dict[str, Any]:
    return {f"r{i}_k{j}": j for j in range(width)}


def test_ten_records_of_600_new_names_send_at_most_1000_names() -> None:
    """Names past the budget go into extra.overflow; every value still goes out."""
    encoder = RecordEncoder()
    extras_list = [wide(i) for i in range(10)]
    objs = encode_all(encoder, extras_list)
    names = set(itertools.chain.from_iterable(objs))
    assert len(names) <= DEFAULT_BUDGET
    assert server_keeps_all([set(obj) for obj in objs])
    for extras, obj in zip(extras_list, objs, strict=True):
        assert extras == sent_extras(obj)
    # The first record fits whole; the second fills the budget; the rest fold entirely.
    assert "extra.overflow" not in objs[0]
    assert all("extra.overflow" in obj for obj in objs[1:])
    assert [] == [k for obj in objs[2:] for k in obj if k.startswith("r")]
    assert 9 == encoder.repairs["names_overflow"]


def test_names_already_sent_stay_fields_after_the_budget_is_spent() -> None:
    """Reusing known names costs nothing: a record with the first record's names is not folded."""
    encoder = RecordEncoder()
    objs = encode_all(encoder, [wide(0), wide(1), wide(2), wide(0)])
    assert "extra.overflow" not in objs[3]
    assert wide(0) == {k: v for k, v in objs[3].items() if k.startswith("r")}
    assert 2 == encoder.repairs["names_overflow"]


def test_flattened_paths_count_against_the_budget() -> None:
    """Nested mappings flatten to dotted names; each one counts."""
    encoder = RecordEncoder()
    extras_list = [{f"d{i}": {f"k{j}": j for j in range(300)}} for i in range(6)]
    objs = encode_all(encoder, extras_list)
    names = set(itertools.chain.from_iterable(objs))
    assert len(names) <= DEFAULT_BUDGET
    assert server_keeps_all([set(obj) for obj in objs])
    # 300 paths a record: three records fit (with the ~16 built-in names), the rest fold.
    assert ["extra.overflow" in obj for obj in objs] == [False] * 3 + [True] * 3
    assert {f"d5.k{j}": j for j in range(300)} == orjson.loads(objs[5]["extra.overflow"])


def test_fewer_fields_per_row_leave_more_names() -> None:
    """The budget is 2000 - max_fields - 10: max_fields=500 allows 1,490 names."""
    encoder = RecordEncoder(max_fields=500)
    objs = encode_all(encoder, [wide(i, 400) for i in range(5)])
    names = set(itertools.chain.from_iterable(objs))
    assert 1400 < len(names) <= 1490
    assert server_keeps_all([set(obj) for obj in objs])
    assert ["extra.overflow" in obj for obj in objs] == [False] * 3 + [True] * 2


def test_the_fast_path_takes_known_names_and_folds_new_ones_past_the_budget() -> None:
    """Small records with one new key each: the first ~980 keys are fields, later ones fold."""
    encoder = RecordEncoder()
    objs = encode_all(encoder, [{f"u{i}": i} for i in range(1100)])
    names = set(itertools.chain.from_iterable(objs))
    # The budget counts the built-in names a record may carry (exception.*, ...), sent or not.
    assert 985 <= len(names) <= DEFAULT_BUDGET
    folded = [i for i, obj in enumerate(objs) if "extra.overflow" in obj]
    assert folded == list(range(folded[0], 1100))
    assert 950 < folded[0] < 1000
    assert {"u1099": 1099} == orjson.loads(objs[-1]["extra.overflow"])
    assert 1100 - folded[0] == encoder.repairs["names_overflow"]
