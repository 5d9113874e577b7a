"""``VLogsHandler``: the ``logging.Handler`` protocol (emit / flush / close) wired to the engine."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _lifecycle
from ._config import Compression, OverflowPolicy
from ._engine import Engine, Stats, encoder_options
from ._logrecord import LogRecordEncoder
from ._spool import FsyncPolicy
from ._trace import Reader, reader

__all__ = ["VLogsHandler"]


def _check_level(level: object) -> None:
    """What ``logging.Handler(level)`` accepts: a number or a registered level name."""
    if isinstance(level, bool) or not isinstance(level, (int, str)):
        raise TypeError(
            f"Invalid level: it should be an int or a level name, not {type(level).__name__}"
        )
    # getLevelName() maps a registered name to its number (and anything else to a text).
    if isinstance(level, str) and not isinstance(logging.getLevelName(level), int):
        # The type is right (a str); its value is not a level: ValueError, as logging raises.
        raise ValueError(  # noqa: TRY004
            f"Invalid level: it should be a registered level name, not: {level!r}"
        )


class _MessageOnly(logging.Formatter):
    """The handler's own formatter: ``_msg`` is the message alone.

    A handler starts with it, so that ``logging.basicConfig()``, which gives its format to
    every handler that has no formatter, leaves this one alone (that format is a console's:
    level, logger and message in one line; here they are fields of their own).
    """

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


class VLogsHandler(logging.Handler):
    """A ``logging`` handler that ships every record to VictoriaLogs as one JSON line.

    ``logging.getLogger().addHandler(VLogsHandler(url="http://localhost:9428"))``. The same
    options, engine and guarantees as ``VLogsSink`` (docs/options.md, docs/delivery.md), the
    same fields (docs/logging.md); ``level`` is the handler's level.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        stream_fields: Sequence[str] | str = ("service", "host"),
        fields: Mapping[str, str | int | float | bool] | None = None,
        service: str | None = None,
        host: str | None = None,
        batch_size: int = 2000,
        batch_bytes: int = 1024 * 1024,
        flush_interval: float = 1.0,
        buffer_size: int = 100_000,
        buffer_bytes: int = 64 * 1024 * 1024,
        overflow: OverflowPolicy = "drop_oldest",
        block_timeout: float = 1.0,
        compression: Compression | None = "gzip",
        compression_level: int | None = None,
        timeout: float = 5.0,
        shutdown_timeout: float = 5.0,
        account_id: int | None = None,
        project_id: int | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        verify: bool = True,
        ca_certs: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_max_elapsed: float | None = None,
        warn_interval: float = 10.0,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 1 << 30,
        spool_fsync: FsyncPolicy = "batch",
        spool_threshold: int | None = None,
        max_message_bytes: int | None = None,
        time_window: tuple[float, float] | None = (7 * 86400.0, 2 * 86400.0),
        handle_sigterm: bool = True,
        trace_context: bool = True,
        on_drop: Callable[[str, int], object] | None = None,
        level: int | str = logging.NOTSET,
    ) -> None:
        options = {k: v for k, v in locals().items() if k not in ("self", "__class__", "level")}
        # Everything is checked and started before logging.Handler registers the handler (for
        # logging.shutdown() at exit): a wrong option or spool leaves nothing half-made there.
        _check_level(level)
        engine = Engine(options, front="handler")
        encoder = LogRecordEncoder(**encoder_options(engine.settings))
        engine.start(encoder.repairs)
        super().__init__(level)
        self._message_only = _MessageOnly()
        self.setFormatter(self._message_only)
        self._encoder = encoder
        self._engine = engine
        #: the checked options (docs/options.md)
        self.settings = engine.settings
        self._trace: Reader | None = reader() if engine.settings.trace_context else None
        #: (thread, deadline) while a thread holds the handler's lock through acquire()
        self._held: tuple[int, float] | None = None
        self._holds = 0

    @classmethod
    def from_env(cls, **overrides: Any) -> VLogsHandler:
        """A handler configured by the ``VLOGS_*`` environment variables; ``overrides`` win
        (``level=`` included).

        ``VLOGS_URL`` is required unless ``url=`` is given. A value that cannot be read, or that
        the handler rejects, raises ``ValueError`` naming the variable (docs/configuration.md).
        """
        from ._env import sink_from_env  # _env inspects the signature lazily

        handler: VLogsHandler = sink_from_env(cls, overrides)
        return handler

    # -- logging's protocol ----------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter, then emit without the handler's lock.

        ``emit`` is thread-safe on its own (the buffer has its lock), and taking the handler's
        lock would deadlock: ``flush()`` holds it (through ``logging.shutdown``) while it waits
        for the worker, and a library logging on the worker thread would wait for it too.
        """
        rv: object = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may return a record
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        """Encode one record and buffer it; never performs I/O, never raises."""
        engine = self._engine
        try:
            writer = threading.get_ident()
            if writer == engine.worker.ident:
                # A record made on our own worker thread (a library logging while we send):
                # shipping it would feed the handler its own traffic.
                engine.refuse_recursion()
                return
            if not engine.armed:
                engine.arm()
            formatter = self.formatter
            if formatter is self._message_only or formatter is None:
                message = record.getMessage()
            else:
                message = formatter.format(record)
            # emit() runs in the logging thread (asyncio task included): its span is the record's.
            trace = None if self._trace is None else self._trace()
            line = memoryview(self._encoder.encode_record(record, message, trace)).tobytes()
        except Exception as exc:  # noqa: BLE001 - a bad record must never reach the caller
            engine.encode_failed(exc)
            return
        reason = engine.buffer.put(line, writer)
        if reason is not None:
            engine.overflowed(reason)

    def flush(self) -> None:
        """Wait until every record emitted before the call is delivered (or counted).

        Bounded like ``logger.complete()``: returns at the first failed attempt (the records
        stay buffered for retry) or when nothing progresses for ``timeout`` seconds; under
        ``logging.shutdown()`` within its share of ``shutdown_timeout`` (see :meth:`acquire`).
        """
        self._engine.complete(self._budget())

    def close(self) -> None:
        """Send what is buffered within ``shutdown_timeout``, then stop the worker (a record
        emitted later starts it again). What is left is counted as ``shutdown`` (or kept in the
        spool) and stderr says how many."""
        deadline = self._budget()
        if deadline is None:
            deadline = self._engine.exit_aware_deadline(self.settings.shutdown_timeout)
        self._engine.shutdown(deadline)
        super().close()

    def acquire(self) -> None:
        """Take the handler's lock; a thread that holds it has one ``shutdown_timeout`` for
        the ``flush()`` and ``close()`` it makes meanwhile.

        ``logging.shutdown()`` (at exit, and when ``dictConfig`` replaces the handlers) calls
        ``acquire(); flush(); close(); release()``: with the server hung, ``flush()`` would
        spend the budget and ``close()`` a second one. Emitting never takes this lock
        (:meth:`handle`), so this is only ever a shutdown's.
        """
        super().acquire()
        self._holds += 1
        if self._holds == 1:
            self._held = (threading.get_ident(), time.monotonic() + self.settings.shutdown_timeout)

    def release(self) -> None:
        """Release the handler's lock (see :meth:`acquire`)."""
        self._holds -= 1
        if self._holds == 0:
            self._held = None
        super().release()

    # -- explicit API ----------------------------------------------------------------------------

    def drain(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (default: ``shutdown_timeout``) for delivery.

        Returns True when every record emitted before the call was delivered or counted.
        """
        return self._engine.drain(timeout)

    def stats(self) -> Stats:
        """Counters of this handler in this process (docs/delivery.md explains each key)."""
        return self._engine.stats()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return (
            f"<VLogsHandler url={self._engine.urls_shown()!r} "
            f"service={self.settings.service!r} ({level})>"
        )

    # -- pickling (spawn): configuration only ----------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {"options": self._engine.copy_options(), "level": self.level}
        if self.formatter is not self._message_only:
            state["formatter"] = self.formatter
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        options = dict(state["options"])
        url = options.pop("url")
        self.__init__(url, level=state["level"], **options)  # type: ignore[misc]
        if "formatter" in state:
            self.setFormatter(state["formatter"])

    # -- internals -------------------------------------------------------------------------------

    def _budget(self) -> float | None:
        """The deadline a flush/close of this thread shares, if any: the exit budget once the
        interpreter exits, else the lock holder's (:meth:`acquire`)."""
        if _lifecycle.exit_started is not None:
            return self._engine.exit_aware_deadline(self.settings.shutdown_timeout)
        held = self._held
        if held is not None and held[0] == threading.get_ident():
            return held[1]
        return None
