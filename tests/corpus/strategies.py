"""Hypothesis strategies for hostile records, shared by the property and end-to-end tests."""

from __future__ import annotations

import datetime as dt
import functools
import sys
import traceback
from typing import Any

from hypothesis import strategies as st
from loguru import logger
from loguru._recattrs import RecordException

from .hostile_values import (
    BothRaise,
    Color,
    FakeNumpyScalar,
    Level,
    Plain,
    Point,
    StrRaises,
    self_dict,
)
from .record_checks import record_of

any_char = st.characters(exclude_categories=())
text = st.text(any_char, max_size=40)
key_text = st.one_of(
    st.text(st.sampled_from("ab._~\n\x00é"), max_size=6),
    st.text(any_char, max_size=10),
    st.text(st.sampled_from("ké"), min_size=60, max_size=160),
    st.sampled_from(
        [
            "_msg",
            "_time",
            "_stream",
            "_stream_id",
            "level",
            "service",
            "exception",
            "exception.type",
            "extra",
            "extra.overflow",
            "",
            "a.b",
            "a",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, 2**64 - 1]),
    st.floats(),
    text,
    st.binary(max_size=20),
    st.decimals(),
    st.datetimes(),
    st.uuids(),
    st.sampled_from([Color.RED, Level.HIGH, ValueError("v"), KeyError()]),
    st.builds(Plain),
    st.builds(BothRaise),
    st.builds(StrRaises),
    st.builds(Point, st.integers(), text),
    st.builds(FakeNumpyScalar),
)
hashable = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), text, st.tuples(st.integers())
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.one_of(key_text, hashable), children, max_size=4),
        st.frozensets(hashable, max_size=4),
        st.builds(self_dict),
    ),
    max_leaves=20,
)
extras = st.dictionaries(st.one_of(key_text, key_text, hashable), values, max_size=12)
messages = st.one_of(
    text,
    st.sampled_from(["", "\ud800", "\x00", "line\nline", '"\x01\\' * 50_000]),
    st.builds(lambda c, n: c * n, any_char, st.sampled_from([1000, 140_000, 300_000])),
)
# Wide records: many extras sharing one value (cheap to build, costly to fit), or one extra
# holding a wide mapping. (count, size): count >= 0 extras "filler<i>" of size characters, or
# -count keys "k<i>" inside one extra "wide".
fillers = st.sampled_from(
    [(0, 0)] * 6 + [(1200, 10), (1200, 100_000), (300, 5_000), (-1500, 10), (-300, 3_000)]
)


def with_filler(extra: dict[Any, Any], filler: tuple[int, int]) -> dict[Any, Any]:
    """``extra`` widened as ``filler`` says (see ``fillers``)."""
    count, size = filler
    shared = "f" * size
    if count >= 0:
        return {**extra, **{f"filler{i}": shared for i in range(count)}}
    return {**extra, "wide": {f"k{i}": shared for i in range(-count)}}


def raised(message: str) -> BaseException:
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        return exc


class UnprintableError(Exception):
    """An exception whose str() and repr() both raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def chained(message: str) -> BaseException:
    """A KeyError raised from an OSError while handling a ValueError (cause and context)."""
    try:
        try:
            raise ValueError("context")
        except ValueError:
            try:
                raise OSError(message)
            except OSError as cause:
                raise KeyError(message) from cause
    except KeyError as exc:
        return exc


def noted(message: str) -> BaseException:
    """A raised exception with notes (shown by tracebacks on 3.11+)."""
    try:
        error = TypeError(message)
        if sys.version_info >= (3, 11):
            error.add_note("note one")
            error.add_note(message)
        raise error
    except TypeError as exc:
        return exc


def unprintable() -> BaseException:
    try:
        raise UnprintableError
    except UnprintableError as exc:
        return exc


exceptions = st.one_of(
    st.none(),
    st.tuples(st.builds(raised, st.one_of(text, st.just("e" * 300_000))), st.booleans()),
)
#: Exceptions as passed to ``logger.opt(exception=...)``: raised (traceback object at hand),
#: chained, with notes, never raised (no traceback), unprintable, huge.
logged_exceptions = st.one_of(
    st.none(),
    st.builds(raised, text),
    st.builds(raised, st.just("e" * 300_000)),
    st.builds(chained, text),
    st.builds(noted, text),
    st.builds(ValueError, text),
    st.builds(unprintable),
)


@functools.lru_cache(maxsize=1)
def _base() -> tuple[dict[str, Any], str]:
    return record_of(lambda: logger.info("base"))


def make_record(
    message: str, extra: dict[Any, Any], exc: tuple[BaseException, bool] | None
) -> tuple[dict[str, Any], str]:
    """A record as loguru builds it, with this message, extra and exception; and its text."""
    base, _text = _base()
    record = dict(base)
    record["message"] = message
    record["extra"] = extra
    record["time"] = dt.datetime.now(dt.timezone.utc)
    text = message + "\n"
    if exc is not None:
        error, keep_traceback = exc
        tb = error.__traceback__
        text += "".join(traceback.format_exception(type(error), error, tb))
        # keep_traceback=False is what enqueue=True delivers: the traceback object is gone.
        record["exception"] = RecordException(type(error), error, tb if keep_traceback else None)
    return record, text
