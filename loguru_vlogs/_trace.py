"""Trace correlation: the current OpenTelemetry span's ids, read in the logging thread.

OpenTelemetry keeps the active span in a ``contextvars`` context, so it is only visible
where the record is made: in the calling thread, or the asyncio task, of the logging call.
The stdlib handler's ``emit()`` and the loguru sink's ``write()`` (without ``enqueue=True``)
run there, and read it themselves. With loguru's ``enqueue=True``, ``write()`` runs on
loguru's queue thread, where no span is active: :func:`trace_patcher`, given to
``logger.configure(patcher=...)``, copies the ids into the record's ``extra`` at the call,
and they travel with the record.

Whether OpenTelemetry is there is decided once per process, at the first use (a sink or
handler made with ``trace_context=True``, or the patcher's first call), never at import and
never per record: without ``opentelemetry-api`` the per-record cost is one ``is None`` test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

#: The fields added, in this order.
TRACE_FIELDS = ("trace_id", "span_id", "trace_flags")

#: ``() -> {"trace_id": ..., "span_id": ..., "trace_flags": ...} | None``
Reader = Callable[[], "dict[str, Any] | None"]

_lock = threading.Lock()
_decided = False
_reader: Reader | None = None


def reader() -> Reader | None:
    """The function that reads the current span's ids, or None without OpenTelemetry.

    Decided at the first call in the process; later calls return the same answer.
    """
    global _decided, _reader  # noqa: PLW0603 - one process-wide fact, found once
    if _decided:
        return _reader
    with _lock:
        if not _decided:
            _reader = _load()
            _decided = True
    return _reader


def _load() -> Reader | None:
    try:
        from opentelemetry.context import get_current
        from opentelemetry.trace import get_current_span
    except Exception:  # noqa: BLE001 - not installed, or broken: no trace ids, never an error
        return None

    def current() -> dict[str, Any] | None:
        """The ids of the span active here, or None; never raises."""
        try:
            active = get_current()
            if not active:  # an empty context (no span, no baggage): 0.07 µs instead of 0.2
                return None
            context = get_current_span(active).get_span_context()
            if not context.is_valid:
                return None
            return {
                "trace_id": format(context.trace_id, "032x"),
                "span_id": format(context.span_id, "016x"),
                "trace_flags": int(context.trace_flags),
            }
        except Exception:  # noqa: BLE001 - a record must never be lost for its trace ids
            return None

    return current


def trace_patcher(record: Mapping[str, Any]) -> None:
    """A loguru patcher: the current span's ``trace_id``, ``span_id`` and ``trace_flags`` go
    into ``record["extra"]`` at the logging call (the record's own keys win).

    ``logger.configure(patcher=trace_patcher)`` is what ``enqueue=True`` needs (loguru then
    calls the sink from another thread, where the span is not visible); without OpenTelemetry
    it does nothing. (Typed with a ``Mapping``, which loguru's ``Record`` is: loguru is
    never imported here, the stdlib handler's path has none.)
    """
    read = _reader if _decided else reader()
    if read is None:
        return
    ids = read()
    if ids is not None:
        extra = record["extra"]
        for key, value in ids.items():
            extra.setdefault(key, value)
