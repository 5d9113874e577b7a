"""Hostile records end to end (issue 5): logged through VLogsSink, every one arrives by the rules.

Records go through loguru (``bind``, ``patch`` for non-str keys, ``opt(exception=, lazy=, raw=,
depth=)``, a custom level) into a real :class:`VLogsSink` shipping to the ``vlogs_server``
fixture: the real VictoriaLogs when a binary is at hand, else FakeVictoriaLogs. Every record
carries the sink's static ``run_id`` and two extras bound first (``e2e_batch``, ``e2e_seq``) so
its row is found even when hundreds of other extras overflow. Each row is checked against
the README's rules, written out in the test (``corpus/record_checks.py``), never against what
the encoder itself makes of the record: ``_msg``, the built-in fields, extras under their
documented names with their documented texts, no field that no rule explains, the exception
fields and the time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import sys
import types
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger

from loguru_vlogs import VLogsSink

from .corpus.hostile_values import CASES, NASTY_RECORDS
from .corpus.record_checks import (
    MARKER,
    assert_same_row,
    check_extras,
    check_message,
    check_no_unknown_fields,
    parse_server_time,
    repaired,
    same_stored_text,
    stored_fields,
)
from .corpus.strategies import (
    UnprintableError,
    chained,
    extras,
    fillers,
    logged_exceptions,
    messages,
    noted,
    raised,
    unprintable,
    with_filler,
)

BATCH = "e2e_batch"
SEQ = "e2e_seq"
CUSTOM_LEVEL = "E2E_AUDIT"  # not "AUDIT": test_record.py registers that one
CALLS = ("info", "lazy", "raw", "depth", "custom")
#: Fields the server adds to every row (and ``_time``, which it prints in UTC).
SERVER_FIELDS = ("_time", "_stream", "_stream_id")
WAIT = 30.0
CAUSE = "\n\nThe above exception was the direct cause of the following exception:\n\n"
CONTEXT = "\n\nDuring handling of the above exception, another exception occurred:\n\n"
E2E_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclasses.dataclass
class Spec:
    """One record to log: what is passed to loguru, and how."""

    message: str
    extra: dict[Any, Any]
    exception: BaseException | None = None
    call: str = "info"
    filler: tuple[int, int] = (0, 0)
    #: A patch() applied last (record fields of any type); not generated.
    patch: Callable[[dict[str, Any]], None] | None = None


def without_own_keys(extra: dict[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in extra.items() if k not in (BATCH, SEQ)}


specs = st.builds(
    Spec,
    message=messages,
    extra=extras.map(without_own_keys),
    exception=logged_exceptions,
    call=st.sampled_from(CALLS),
    filler=fillers,
)


def _ensure_custom_level() -> None:
    try:
        logger.level(CUSTOM_LEVEL)
    except ValueError:  # not registered yet (loguru refuses to register a name twice)
        logger.level(CUSTOM_LEVEL, no=25)


def _log_at_depth(bound: Any, exception: BaseException | None, message: str) -> None:
    bound.opt(exception=exception, depth=1).info(message)  # recorded as logged by _emit


def _emit(spec: Spec, batch: int, seq: int) -> None:
    """Log ``spec`` the way a program would."""
    extra = with_filler(spec.extra, spec.filler)
    named = {k: v for k, v in extra.items() if isinstance(k, str)}
    other = {k: v for k, v in extra.items() if not isinstance(k, str)}
    bound = logger.bind(**{BATCH: batch, SEQ: seq}, **named)
    if other:  # bind() takes str keys only: a patch() can put anything in extra
        bound = bound.patch(lambda r: r["extra"].update(other))
    if spec.patch is not None:
        bound = bound.patch(spec.patch)
    message, exception = spec.message, spec.exception
    if spec.call == "lazy":
        bound.opt(exception=exception, lazy=True).info("{}", lambda: message)
    elif spec.call == "raw":
        bound.opt(exception=exception, raw=True).info(message)
    elif spec.call == "depth":
        _log_at_depth(bound, exception, message)
    elif spec.call == "custom":
        bound.opt(exception=exception).log(CUSTOM_LEVEL, message)
    else:
        bound.opt(exception=exception).info(message)


class Shipment:
    """A VLogsSink on loguru and a handler seeing the same records, for one test."""

    def __init__(self, server: Any) -> None:
        _ensure_custom_level()
        self.server = server
        self.run = uuid.uuid4().hex
        # A stream of its own: the server's 2,000-names limit is per stream, and the name
        # budget is per sink (other tests' wide records share the session's server).
        self.sink = VLogsSink(
            server.url,
            fields={"run_id": self.run},
            stream_fields=("service", "host", "run_id"),
        )
        settings = self.sink.settings
        self.statics = {"run_id": self.run, "service": settings.service, "host": settings.host}
        self.seen: list[Any] = []
        self.logged = 0
        self.batches = itertools.count()
        # backtrace/diagnose off: loguru's annotated tracebacks of 300 KB values are slow, and
        # the sink formats the traceback object itself.
        options: dict[str, Any] = {"backtrace": False, "diagnose": False, "colorize": False}
        logger.add(self.sink, **options)
        logger.add(self.seen.append, **options)

    @property
    def query(self) -> str:
        return f'run_id:="{self.run}"'

    def ship(self, batch: list[Spec]) -> None:
        """Log ``batch``, wait until it is stored, check every row."""
        number = next(self.batches)
        self.seen.clear()
        for seq, spec in enumerate(batch):
            _emit(spec, number, seq)
        self.logged += len(batch)
        logger.complete()
        query = f'{self.query} AND {BATCH}:="{number}"'
        assert len(batch) == self.server.wait_for_count(query, len(batch), timeout=WAIT)
        rows = {int(row[SEQ]): row for row in self.server.rows(query, limit=len(batch) + 10)}
        assert list(range(len(batch))) == sorted(rows)
        records = {m.record["extra"][SEQ]: m for m in self.seen}
        for seq, spec in enumerate(batch):
            self.check(spec, rows[seq], records[seq])

    def check(self, spec: Spec, row: dict[str, str], message: Any) -> None:
        """The row holds the record by the documented rules (README, *Record fields*)."""
        record = message.record
        assert "encode_error" not in row
        check_time(row, record)
        if isinstance(record["message"], str):
            check_message(row, record["message"])
        extra = record["extra"]
        if isinstance(extra, Mapping):
            check_extras(row, extra, self.statics, stored=True)
            check_no_unknown_fields(row, extra, self.statics)
        assert self.statics == {k: row[k] for k in self.statics}
        if spec.patch is None:
            level = CUSTOM_LEVEL if spec.call == "custom" else "INFO"
            assert (level, "_emit") == (row["level"], row["function"])
            check_builtins(row, record)
            check_exception(row, spec.exception)

    def finish(self) -> None:
        """Every record logged in this test is stored, once, and none took the last resort."""
        assert self.logged == self.server.count(self.query)
        stats = self.sink.stats()
        assert (self.logged, 0) == (stats["sent"], stats["dropped_total"])
        assert "encode_fallback" not in stats["repairs"]  # only non-zero counters are listed


def check_builtins(row: dict[str, str], record: dict[str, Any]) -> None:
    """The source, process and thread fields as the README's schema table maps them."""
    expected = {
        "level_no": str(record["level"].no),
        "logger": record["name"],
        "module": record["module"],
        "line": str(record["line"]),
        "file": record["file"].path,
        "process": str(record["process"].id),
        "process_name": record["process"].name,
        "thread": str(record["thread"].id),
        "thread_name": record["thread"].name,
    }
    assert expected == {k: row.get(k) for k in expected}
    assert same_stored_text(repr(record["elapsed"].total_seconds()), row["elapsed"])


def check_time(row: dict[str, str], record: dict[str, Any]) -> None:
    """_time is the record time to the microsecond, or now with original_time beside it."""
    stored = parse_server_time(row["_time"])
    if "original_time" in row:
        assert abs((stored - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 600
    else:
        assert record["time"] == stored


def check_exception(row: dict[str, str], exc: BaseException | None) -> None:
    """exception.type / .value / .traceback as the README documents them."""
    if exc is None:
        assert [] == [k for k in row if k.startswith("exception")]
        return
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    assert name == row["exception.type"]
    if isinstance(exc, UnprintableError):
        value = f"<unprintable {name} object>"
    else:
        value = repaired(str(exc))
    stored_value = row.get("exception.value", "")  # the server drops ""
    assert_text_or_its_cut(value, stored_value)
    tb = row["exception.traceback"]
    if exc.__traceback__ is None:  # never raised
        assert_text_or_its_cut((f"{name}: {value}" if value else name).rstrip("\n"), tb)
        return
    assert tb.startswith("Traceback (most recent call last):\n")
    if MARKER.search(tb) is not None:
        return
    if not isinstance(exc, UnprintableError):  # traceback prints those its own way
        notes = "".join(f"\n{repaired(note)}" for note in getattr(exc, "__notes__", ()))
        # The traceback's final newlines are stripped (an empty last note goes with them).
        assert tb.endswith(((f"{name}: {value}" if value else name) + notes).rstrip("\n"))
    link: BaseException | None = exc
    while link is not None:
        if link.__cause__ is not None:
            assert CAUSE in tb
            link = link.__cause__
        elif link.__context__ is not None and not link.__suppress_context__:
            assert CONTEXT in tb
            link = link.__context__
        else:
            link = None


def assert_text_or_its_cut(text: str, stored: str) -> None:
    match = MARKER.search(stored)
    if match is None:
        assert text == stored
    else:
        head = stored[: match.start()]
        assert text.startswith(head)
        assert len(text.encode()) - len(head.encode()) == int(match.group(1))


@pytest.fixture
def shipment(vlogs_server: Any) -> Shipment:
    return Shipment(vlogs_server)  # the autouse logger reset removes (and stops) its sink


@pytest.mark.slow
def test_generated_hostile_records_all_arrive_by_the_rules(shipment: Shipment) -> None:
    """Hypothesis batches of hostile records, sent through the sink: each row as documented."""

    @E2E_SETTINGS
    @given(batch=st.lists(specs, min_size=1, max_size=4))
    def deliver(batch: list[Spec]) -> None:
        shipment.ship(batch)

    deliver()
    shipment.finish()


def _far_past(record: dict[str, Any]) -> None:
    record["time"] = dt.datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


def _weird_fields(record: dict[str, Any]) -> None:
    # Only what loguru's own handlers still format (a str level or exception breaks them).
    record.update(message=None, name=None, function=object, line="x", file=None, thread=None)


def _extra_proxy(record: dict[str, Any]) -> None:
    record["extra"] = types.MappingProxyType({**record["extra"], "proxied": {1: b"\xff"}})


def _huge(message: str) -> BaseException:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


#: (id, spec, expected fields of the row as the server prints them; None: absent).
SPECIAL: list[tuple[str, Spec, dict[str, str | None]]] = [
    ("message-300KB", Spec("m" * 300_000, {}), {"message_size": "300000"}),
    ("extras-2000", Spec("m", {}, filler=(2000, 1)), {"filler0": "f"}),
    ("extras-1200-of-100KB", Spec("m", {}, filler=(1200, 100_000)), {}),
    ("one-extra-1500-keys", Spec("m", {}, filler=(-1500, 3)), {"wide.k0": "fff"}),
    (
        "reserved-names",
        Spec("m", {n: n for n in ("_msg", "_time", "_stream", "_stream_id")}),
        {"extra._msg": "_msg", "extra._time": "_time", "extra._stream_id": "_stream_id"},
    ),
    (
        "level-extra",
        Spec("m", {"level": "x", "run_id": "fake"}),
        {"extra.level": "x", "extra.run_id": "fake"},
    ),
    (
        "non-str-keys",
        Spec("m", {1: "one", None: "none", (1, 2): "t"}),
        {"1": "one", "null": "none", "[1,2]": "t"},
    ),
    ("exception-chained", Spec("m", {}, chained("boom")), {"exception.type": "KeyError"}),
    ("exception-noted", Spec("m", {}, noted("boom")), {"exception.type": "TypeError"}),
    ("exception-unprintable", Spec("m", {}, unprintable()), {}),
    (
        "exception-never-raised",
        Spec("m", {}, ValueError("x")),
        {"exception.traceback": "ValueError: x"},
    ),
    ("exception-400KB", Spec("m", {}, _huge("x" * 400_000)), {}),
    ("exception-raised", Spec("m", {}, raised("r")), {"exception.value": "r"}),
    ("call-lazy", Spec("lazy", {}, call="lazy"), {"_msg": "lazy"}),
    ("call-raw", Spec("raw\n", {}, call="raw"), {"_msg": "raw\n"}),
    ("call-depth", Spec("deep", {}, call="depth"), {"function": "_emit"}),
    (
        "call-custom-level",
        Spec("audit", {}, call="custom"),
        {"level": CUSTOM_LEVEL, "level_no": "25"},
    ),
    (
        "time-far-past",
        Spec("old", {}, patch=_far_past),
        {"original_time": "2001-02-03T04:05:06.000007+00:00"},
    ),
    (
        "record-fields-of-other-types",
        Spec("m", {}, patch=_weird_fields),
        {
            "_msg": "null",
            "logger": None,
            "function": "<class 'object'>",
            "line": "x",
            "file": None,
            "thread": None,
            "thread_name": None,
            "level": "INFO",
        },
    ),
    ("extra-not-a-dict", Spec("m", {}, patch=_extra_proxy), {"proxied.1": "\\xff"}),
]


def server_text(value: object) -> str | None:
    """A line value as the server prints it (None: dropped)."""
    row = stored_fields(b'{"v": %s}' % orjson.dumps(value))
    return row.get("v")


def field_or_folded(row: dict[str, str], key: str) -> str | None:
    """The row's field ``key``, or its value inside extra.overflow (past the name budget)."""
    if key in row:
        return row[key]
    overflow = row.get("extra.overflow", "{}")
    if MARKER.search(overflow):
        return None
    folded = orjson.loads(overflow)
    return server_text(folded[key]) if key in folded else None


def test_corpus_of_nasty_records_all_arrive_by_the_rules(shipment: Shipment) -> None:
    """Every corpus value, nasty record and loguru call variant, end to end, as documented."""
    batch: list[Spec] = []
    expected: list[dict[str, str | None]] = []
    for case in CASES:
        batch.append(Spec("m", {"v": case.make()}))
        want = {} if case.expected is None else case.expected
        expected.append({k: server_text(v) for k, v in want.items()})
    for nasty in NASTY_RECORDS:
        batch.append(Spec(nasty.message, nasty.make_extra()))
        want = {} if nasty.expected is None else nasty.expected
        expected.append({k: server_text(v) for k, v in want.items()})
    for _id, spec, fields in SPECIAL:
        batch.append(spec)
        expected.append(fields)
    shipment.ship(batch)
    rows = {int(r[SEQ]): r for r in shipment.server.rows(shipment.query, limit=len(batch) + 10)}
    for seq, fields in enumerate(expected):
        got = {k: field_or_folded(rows[seq], k) for k in fields}
        assert fields.keys() == got.keys(), seq
        for key, want in fields.items():
            value = got[key]
            assert want == value or (
                want is not None and value is not None and same_stored_text(want, value)
            ), (seq, key, want, value)
    for seq, case in enumerate(CASES):  # exactly the documented fields of the value, no more
        if case.expected is not None:
            stored = {k: v for k, v in rows[seq].items() if k == "v" or k.startswith("v.")}
            want = {k: v for k, v in expected[seq].items() if v is not None}
            assert_same_row(want, stored)
    shipment.finish()
    if sys.version_info >= (3, 11):
        first_special = len(CASES) + len(NASTY_RECORDS)
        noted_seq = first_special + [s[0] for s in SPECIAL].index("exception-noted")
        assert rows[noted_seq]["exception.traceback"].endswith("TypeError: boom\nnote one\nboom")


def test_wide_records_with_new_names_are_all_stored(vlogs_server: Any) -> None:
    """Ten records of 600 new names each in one burst, then a plain one: all eleven stored.

    The server drops rows once a block of one stream passes 2,000 distinct names, also when it
    merges parts later: the sink's name budget keeps every row (past it, extra.overflow).
    """
    run = uuid.uuid4().hex
    sink = VLogsSink(
        vlogs_server.url,
        fields={"run_id": run},
        stream_fields=("service", "host", "run_id"),
        flush_interval=1.0,
    )
    logger.add(sink, format="{message}")
    for i in range(10):
        logger.bind(**{f"r{i}_k{j}": j for j in range(600)}).info("wide {}", i)
    logger.info("plain")
    logger.complete()
    stats = sink.stats()
    assert (11, 1) == (stats["sent"], stats["requests"])
    query = f'run_id:="{run}"'
    assert 11 == vlogs_server.wait_for_count(query, 11, timeout=WAIT)
    vlogs_server.force_merge()  # merges drop rows too: check the final state
    rows = {row["_msg"]: row for row in vlogs_server.rows(query, limit=20)}
    assert {*(f"wide {i}" for i in range(10)), "plain"} == set(rows)
    for i in range(10):
        row = rows[f"wide {i}"]
        sent = {k: int(v) for k, v in row.items() if k.startswith(f"r{i}_")}
        sent.update(orjson.loads(row.get("extra.overflow", "{}")))
        assert {f"r{i}_k{j}": j for j in range(600)} == sent
    assert 9 == stats["repairs"]["names_overflow"]


def test_wide_records_sent_apart_survive_the_servers_merges(vlogs_server: Any) -> None:
    """Wide records in separate requests and parts, then a merge: every row is still there."""
    run = uuid.uuid4().hex
    sink = VLogsSink(
        vlogs_server.url, fields={"run_id": run}, stream_fields=("service", "host", "run_id")
    )
    logger.add(sink, format="{message}")
    for i in range(4):
        logger.bind(**{f"r{i}_k{j}": j for j in range(600)}).info("wide {}", i)
        logger.info("plain {}", i)
        logger.complete()
        vlogs_server.force_flush()  # each request its own part on the server
    query = f'run_id:="{run}"'
    assert 8 == vlogs_server.wait_for_count(query, 8, timeout=WAIT)
    vlogs_server.force_merge()
    assert 8 == vlogs_server.count(query)
    assert (8, 4) == (sink.stats()["sent"], sink.stats()["requests"])
