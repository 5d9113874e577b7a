"""Python's traceback text for the ``exception.traceback`` field, fast and bounded.

traceback.format_exception() costs 90-350 us per exception on 3.11: it stats every source
file (linecache.checkcache) and parses source lines to draw "^^^" carets. The formatter
below writes the same layout without the carets, from a cache of formatted frames that
checks each source file at most every _SOURCE_RECHECK seconds: a few us per exception.

Without a traceback object (``enqueue=True`` pickles the record) the traceback is taken from
the text loguru formatted in the caller.
"""

from __future__ import annotations

import builtins
import itertools
import linecache
import math
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, cast

#: Frames formatted per exception: the outermost _TB_HEAD and the innermost _TB_TAIL, with a
#: marker line counting those left out between them.
_TB_HEAD: Final = 100
_TB_TAIL: Final = 100
#: Exceptions formatted per chain of causes and contexts (the most recent ones).
_TB_CHAIN: Final = 32
#: Identical consecutive frames shown before "[Previous line repeated N more times]", as
#: Python's traceback module does.
_RECURSIVE_CUTOFF: Final = 3
_MAX_NOTES: Final = 200
#: Seconds between two linecache.checkcache() of a source file (an edited file shows its new
#: lines after at most this long).
_SOURCE_RECHECK: Final = 30.0
_SOURCE_FILES: Final = 1024
_SOURCE_FRAMES: Final = 4096
_SOURCE_MAX_CACHED: Final = 4096
_CAUSE_MESSAGE: Final = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT_MESSAGE: Final = (
    "\nDuring handling of the above exception, another exception occurred:\n\n"
)
_CHAIN_OMITTED: Final = "[... earlier chained exceptions omitted ...]\n"
_TRACEBACK_HEADER: Final = "Traceback (most recent call last):\n"
# Exception groups and notes exist from 3.11 (looked up so that mypy checks 3.10 too).
_GROUP_TYPES: Final[tuple[type[BaseException], ...]] = tuple(
    getattr(builtins, name) for name in ("BaseExceptionGroup",) if hasattr(builtins, name)
)
_PRINTS_NOTES: Final[bool] = sys.version_info >= (3, 11)
_ANSI_RE: Final = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_TB_HEADER: Final = "Traceback (most recent call last"


_FrameKey = tuple[str, "int | None", str]


class _FrameTexts:
    """Formatted frames ('  File "f", line N, in name' + its source line) by (file, line, name).

    A file's entries are kept while linecache keeps the same lines for it; linecache is asked
    to re-stat the file at most every _SOURCE_RECHECK seconds. Bounded in entries. Only dict
    operations: concurrent callers may format a frame twice, never wrongly.
    """

    __slots__ = ("checked", "texts")

    def __init__(self) -> None:
        self.texts: dict[_FrameKey, str] = {}
        #: filename -> time.monotonic() of its last linecache.checkcache().
        self.checked: dict[str, float] = {}

    def check(self, filename: str, now: float) -> None:
        before = linecache.cache.get(filename)
        linecache.checkcache(filename)
        changed = before is None or linecache.cache.get(filename) is not before
        if changed and filename in self.checked:
            # Changed, gone or not from a file: its frames are formatted again (a scan of at
            # most _SOURCE_FRAMES keys, once per _SOURCE_RECHECK). A file never checked has
            # no entries: texts only holds frames of files in `checked`.
            for key in [k for k in list(self.texts) if k[0] == filename]:
                self.texts.pop(key, None)
        if len(self.checked) >= _SOURCE_FILES:
            self.checked.clear()
            self.texts.clear()
        self.checked[filename] = now

    def add(self, key: _FrameKey, globs: dict[str, Any]) -> str:
        filename, lineno, name = key
        text = f'  File "{filename}", line {lineno}, in {name}\n'
        if lineno is not None:
            source = linecache.getline(filename, lineno, globs).strip()
            if source:
                text = f"{text}    {source}\n"
        if len(text) <= _SOURCE_MAX_CACHED:
            if len(self.texts) >= _SOURCE_FRAMES:
                self.texts.clear()
            self.texts[key] = text
        return text


_FRAME_TEXTS: Final = _FrameTexts()


def format_traceback(etype: object, value: object, tb: object, type_name: str) -> str | None:
    """Python's traceback text of the record's exception; None without a traceback object."""
    if tb is None:
        return None
    try:
        if value is None:  # a patch() left the traceback without its exception
            lines = ["Traceback (most recent call last):\n"]
            _format_stack(cast(TracebackType, tb), lines, time.monotonic())
            return f"{''.join(lines)}{type_name}"
        if not isinstance(value, BaseException):
            return None  # as traceback.format_exception, which fails on it
        return _format_exception(value, cast(TracebackType, tb))
    except Exception:  # noqa: BLE001 - a hostile exception: fall back to loguru's text
        return None


def _format_exception(value: BaseException, tb: TracebackType | None) -> str:
    """``traceback.format_exception(value)`` without caret lines, at bounded cost."""
    # The chain, newest first, as traceback.TracebackException(compact=True) walks it: each
    # exception with the separator that introduces it after the older one it links to.
    chain: list[tuple[str | None, BaseException, TracebackType | None]] = []
    seen = {id(value)}
    exc: BaseException = value
    exc_tb = tb
    while True:
        if isinstance(exc, _GROUP_TYPES):  # the nested tree layout: rare, left to Python
            return "".join(traceback.format_exception(type(value), value, tb))
        cause = exc.__cause__
        context = exc.__context__
        link: BaseException | None = None
        message: str | None = None
        if cause is not None and id(cause) not in seen:
            link, message = cause, _CAUSE_MESSAGE
        elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
            link, message = context, _CONTEXT_MESSAGE
        chain.append((message, exc, exc_tb))
        if link is None or len(chain) >= _TB_CHAIN:
            break
        seen.add(id(link))
        exc = link
        exc_tb = link.__traceback__
    now = time.monotonic()
    out: list[str] = []
    for message, exc, exc_tb in reversed(chain):
        if message is not None:
            if not out:  # the oldest kept one still links to an older exception
                out.append(_CHAIN_OMITTED)
            out.append(message)
        if exc_tb is not None:
            out.append(_TRACEBACK_HEADER)
            _format_stack(exc_tb, out, now)
        out.extend(_exception_only(exc))
    return "".join(out)


def _format_stack(tb: TracebackType | None, out: list[str], now: float) -> None:
    """The frames of ``tb``, outermost first, with Python's collapsing of repeated lines."""
    total = 0
    probe = tb
    while probe is not None:
        total += 1
        probe = probe.tb_next
    omitted = max(0, total - _TB_HEAD - _TB_TAIL)
    cache = _FRAME_TEXTS
    texts = cache.texts
    checked = cache.checked
    stale = now - _SOURCE_RECHECK
    last: _FrameKey | None = None
    count = index = 0
    while tb is not None:
        if index == _TB_HEAD and omitted:
            if count > _RECURSIVE_CUTOFF:
                out.append(_repeated(count - _RECURSIVE_CUTOFF))
            out.append(f"  [... {omitted} frames omitted ...]\n")
            last = None
            count = 0
            for _skip in range(omitted):
                tb = cast(TracebackType, tb.tb_next)  # counted above: never None here
            index += omitted
        frame = tb.tb_frame
        code = frame.f_code
        lineno = tb.tb_lineno
        filename = code.co_filename
        key = (filename, lineno, code.co_name)
        if key != last or lineno is None:
            if count > _RECURSIVE_CUTOFF:
                out.append(_repeated(count - _RECURSIVE_CUTOFF))
            last = key
            count = 0
        count += 1
        if count <= _RECURSIVE_CUTOFF:
            if checked.get(filename, -math.inf) < stale:
                cache.check(filename, now)
            out.append(texts.get(key) or cache.add(key, frame.f_globals))
        index += 1
        tb = tb.tb_next
    if count > _RECURSIVE_CUTOFF:
        out.append(_repeated(count - _RECURSIVE_CUTOFF))


def _repeated(count: int) -> str:
    return f"  [Previous line repeated {count} more time{'s' if count > 1 else ''}]\n"


def _exception_only(exc: BaseException) -> list[str]:
    """The 'Type: value' line (and notes), as traceback.format_exception_only() writes it."""
    kind = type(exc)
    if issubclass(kind, SyntaxError):  # the offending source line and its caret: rare
        return traceback.format_exception_only(kind, exc)
    name = kind.__qualname__
    module = kind.__module__
    if module not in ("__main__", "builtins"):
        name = f"{module if isinstance(module, str) else '<unknown>'}.{name}"
    text = _safe_call(str, exc, "exception")
    lines = [f"{name}: {text}\n" if text else f"{name}\n"]
    if _PRINTS_NOTES:
        try:
            notes = getattr(exc, "__notes__", None)
        except Exception:  # noqa: BLE001 - a hostile property
            notes = None
        if isinstance(notes, Sequence):
            for note in itertools.islice(notes, _MAX_NOTES):
                note_text = note if isinstance(note, str) else _safe_call(str, note, "note")
                lines.extend(f"{part}\n" for part in note_text.split("\n"))
        elif notes is not None:
            lines.append(f"{_safe_call(repr, notes, '__notes__')}\n")
    return lines


def _safe_call(render: Callable[[object], str], value: object, what: str) -> str:
    """``render(value)``, else traceback's placeholder ("<note str() failed>")."""
    try:
        return render(value)
    except Exception:  # noqa: BLE001 - as traceback's _safe_string()
        return f"<{what} {render.__name__}() failed>"


def traceback_from_text(text: str, message: object) -> str | None:
    """The traceback loguru appends to the formatted message, after the message's line."""
    text = _ANSI_RE.sub("", text)
    if isinstance(message, str):
        start = text.find(message) if message else 0
        if start >= 0:
            newline = text.find("\n", start + len(message))
            if newline >= 0 and text[newline + 1 :].strip():
                return text[newline + 1 :]
    header = text.find(_TB_HEADER)
    return text[header:] if header >= 0 else None


def value_from_traceback(tb_text: str, type_name: str) -> str:
    lines = [line for line in tb_text.splitlines() if line.strip()]
    if lines:
        last = lines[-1]
        for name in (type_name, type_name.rsplit(".", 1)[-1]):
            if last.startswith(name + ": "):
                return last[len(name) + 2 :]
    return ""
