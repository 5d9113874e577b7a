"""The encoder's traceback formatter: Python's layout without caret lines, at bounded cost."""

from __future__ import annotations

import linecache
import re
import sys
import textwrap
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import _traceback
from loguru_vlogs._record import RecordEncoder

from .corpus.record_checks import assert_within_limits, record_of

CARETS = re.compile(r"^ *[~^]*\^[~^]*\n", re.MULTILINE)


def stdlib(exc: BaseException) -> str:
    """Python's own text for ``exc``, caret lines removed (the encoder omits them)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return CARETS.sub("", text)


def capture(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except BaseException as exc:
        return exc
    raise AssertionError("the action did not raise")


def raise_value_error() -> None:
    int("x")  # a call expression: Python draws carets under it


def nested(depth: int) -> None:
    if depth:
        nested(depth - 1)
    raise_value_error()


def cause() -> None:
    try:
        raise_value_error()
    except ValueError as exc:
        raise KeyError("k") from exc


def context() -> None:
    try:
        raise_value_error()
    except ValueError:
        {}["missing"]


def suppressed() -> None:
    try:
        raise_value_error()
    except ValueError:
        raise KeyError("k") from None


def cause_never_raised() -> None:
    raise RuntimeError("outer") from OSError("not raised")


def notes() -> None:
    error = TypeError("with notes")
    if sys.version_info >= (3, 11):
        error.add_note("first\nmultiline")
        error.add_note("second")
    raise error


def hostile_notes() -> None:
    error = ValueError("hostile notes")
    error.__notes__ = [42, Unprintable(), "last"]  # type: ignore[attr-defined]
    raise error


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


class Empty(Exception):
    pass


def cycle() -> None:
    first = ValueError("first")
    second = KeyError("second")
    second.__context__ = first
    first.__context__ = second
    raise first


def from_string_source() -> None:
    exec(compile("def f():\n    raise ValueError('exec')\nf()", "<generated>", "exec"))


def syntax_error() -> None:
    compile("a = (1,\n", "<bad>", "exec")


EXCEPTIONS: dict[str, Callable[[], object]] = {
    "simple": raise_value_error,
    "nested": lambda: nested(5),
    "recursion-collapsed": lambda: nested(30),
    "cause": cause,
    "context": context,
    "suppressed-context": suppressed,
    "cause-never-raised": cause_never_raised,
    "notes": notes,
    "unprintable": lambda: (_ for _ in ()).throw(Unprintable()),
    "empty-message": lambda: (_ for _ in ()).throw(Empty()),
    "key-error": lambda: {}["k"],
    "cycle": cycle,
    "no-source": from_string_source,
    "syntax-error": syntax_error,
    "keyboard-interrupt": lambda: (_ for _ in ()).throw(KeyboardInterrupt()),
}
if sys.version_info >= (3, 11):
    EXCEPTIONS["notes-hostile"] = hostile_notes
    EXCEPTIONS["group"] = lambda: (_ for _ in ()).throw(
        ExceptionGroup("many", [ValueError("a"), KeyError("b")])  # noqa: F821 - 3.11+
    )


@pytest.mark.parametrize("name", list(EXCEPTIONS))
def test_traceback_is_pythons_layout_without_carets(name: str) -> None:
    """Frames, source lines, chains, notes and the last line are Python's, byte for byte."""
    exc = capture(EXCEPTIONS[name])
    text = _traceback._format_exception(exc, exc.__traceback__)
    if name != "syntax-error":  # its caret points into the bad source: kept, as Python does
        assert not CARETS.search(text)
    assert stdlib(exc) == CARETS.sub("", text)


def test_traceback_is_the_same_each_time() -> None:
    """Formatting twice (the second time from the frame cache) gives the same text."""
    exc = capture(cause)
    first = _traceback._format_exception(exc, exc.__traceback__)
    assert first == _traceback._format_exception(exc, exc.__traceback__)


def test_deep_recursion_keeps_both_ends_with_a_marker() -> None:
    """A RecursionError's ~1000 frames: 100 outermost, 100 innermost, a count between."""

    def down(n: int) -> int:
        return down(n + 1) + 1

    exc = capture(lambda: down(0))
    frames = len(list(traceback.walk_tb(exc.__traceback__)))
    text = _traceback._format_exception(exc, exc.__traceback__)
    assert f"  [... {frames - 200} frames omitted ...]\n" in text
    assert text.endswith("RecursionError: maximum recursion depth exceeded\n")
    assert text.count("[Previous line repeated") == 2  # each kept end collapses its repeats


def test_long_chain_keeps_the_most_recent_exceptions_with_a_marker() -> None:
    """40 chained exceptions: the 32 most recent, after a line saying older ones are left out."""

    def chain(n: int) -> None:
        try:
            if n:
                chain(n - 1)
            else:
                raise ValueError("0")
        except ValueError as exc:
            raise ValueError(str(n + 1)) from exc

    exc = capture(lambda: chain(39))
    text = _traceback._format_exception(exc, exc.__traceback__)
    assert text.startswith("[... earlier chained exceptions omitted ...]\n\nThe above exception")
    assert 32 == text.count("Traceback (most recent call last):")
    assert text.endswith("ValueError: 40\n")


def test_edited_source_file_shows_its_new_line_after_the_recheck_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Source lines are cached, and re-read once the file changed and the interval passed."""
    path = tmp_path / "edited_module.py"
    path.write_text("def boom():\n    raise ValueError('old line')\n")
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    exc = capture(namespace["boom"])
    now = [1000.0]
    monkeypatch.setattr(_traceback.time, "monotonic", lambda: now[0])
    assert "    raise ValueError('old line')\n" in _traceback._format_exception(
        exc, exc.__traceback__
    )
    path.write_text("def boom():\n    raise ValueError('new line!!')\n")
    assert "'old line'" in _traceback._format_exception(exc, exc.__traceback__)  # still cached
    now[0] += 31
    assert "    raise ValueError('new line!!')\n" in _traceback._format_exception(
        exc, exc.__traceback__
    )
    linecache.checkcache(str(path))


def test_source_cache_stays_bounded() -> None:
    """Frames from thousands of distinct lines never grow the cache past its bounds."""
    code = "\n".join(f"def f{i}():\n    raise ValueError({i})" for i in range(5000))
    namespace: dict[str, Any] = {}
    exec(compile(code, "<many-lines>", "exec"), namespace)
    for i in range(5000):
        exc = capture(namespace[f"f{i}"])
        _traceback._format_exception(exc, exc.__traceback__)
    assert 0 < len(_traceback._FRAME_TEXTS.texts) <= _traceback._SOURCE_FRAMES
    assert 0 < len(_traceback._FRAME_TEXTS.checked) <= _traceback._SOURCE_FILES


def test_exception_record_carries_the_formatted_chain() -> None:
    """Through the encoder: exception.traceback is the formatter's text without the newline."""

    def log() -> None:
        try:
            cause()
        except KeyError:
            logger.exception("failed")

    record, text = record_of(log)
    obj = assert_within_limits(RecordEncoder().encode(record, text))
    exc = record["exception"].value
    assert stdlib(exc).rstrip("\n") == obj["exception.traceback"]


def test_source_lines_keep_inner_indentation_stripped_like_python() -> None:
    """Leading and trailing whitespace of a source line is stripped, as Python prints it."""
    code = textwrap.dedent(
        """
        def f():
            if True:
                    raise ValueError("deep indent")   \t
        """
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, "<indent>", "exec"), namespace)
    exc = capture(namespace["f"])
    assert stdlib(exc) == _traceback._format_exception(exc, exc.__traceback__)
