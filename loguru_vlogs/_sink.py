"""``VLogsSink``: loguru's StreamSink protocol (write / stop / complete) wired to the engine."""

from __future__ import annotations

import datetime
import inspect
import os
import sys
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

from ._config import Compression, OverflowPolicy
from ._engine import Engine, Stats, encoder_options
from ._record import RecordEncoder
from ._spool import FsyncPolicy
from ._trace import Reader, reader

__all__ = ["Stats", "VLogsSink"]


class _Done:
    """An awaitable that is already finished: ``await sink.complete()`` returns at once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return iter(())  # type: ignore[return-value]


_DONE = _Done()


async def _coroutine_template() -> None:  # pragma: no cover - only its __code__ is used
    """Lends its code object to :class:`_CompleteFunction`."""


class _CompleteFunction:
    """``complete`` as loguru needs it on Python 3.10/3.11.

    Loguru calls ``sink.complete()`` only when ``inspect.iscoroutinefunction`` says yes,
    and a real ``async def`` would do nothing on a plain ``logger.complete()`` (the
    coroutine is never awaited). This object looks like a coroutine function to
    ``inspect`` (function-like attributes, the code object of an ``async def``) but does
    its work when called and returns an already-finished awaitable.
    """

    __code__ = _coroutine_template.__code__
    __defaults__ = None
    __kwdefaults__ = None

    def __init__(self, work: Callable[[], object]) -> None:
        self._work = work
        self.__name__ = "complete"
        self.__qualname__ = "VLogsSink.complete"
        self.__annotations__: dict[str, Any] = {}
        self.__doc__ = getattr(work, "__doc__", None)

    def __call__(self) -> _Done:
        self._work()
        return _DONE


def _make_complete(work: Callable[[], object]) -> Callable[[], _Done]:
    if sys.version_info >= (3, 12):

        def complete() -> _Done:
            work()
            return _DONE

        complete.__doc__ = work.__doc__
        return inspect.markcoroutinefunction(complete)  # type: ignore[no-any-return,unused-ignore]
    return _CompleteFunction(work)


class VLogsSink:
    """A loguru sink that ships every record to VictoriaLogs as one JSON line.

    ``logger.add(VLogsSink(url="http://localhost:9428"))``. Every option: docs/options.md; the
    field schema: docs/schema.md; the delivery guarantees: docs/delivery.md.
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
    ) -> None:
        options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        engine = Engine(options, front="sink")
        self._encoder = RecordEncoder(**encoder_options(engine.settings))
        engine.start(self._encoder.repairs)
        self._engine = engine
        #: the checked options (docs/options.md)
        self.settings = engine.settings
        self._trace: Reader | None = reader() if engine.settings.trace_context else None
        self.complete = _make_complete(self._complete)

    @classmethod
    def from_env(cls, **overrides: Any) -> VLogsSink:
        """A sink configured by the ``VLOGS_*`` environment variables; ``overrides`` win.

        ``VLOGS_URL`` is required unless ``url=`` is given. A value that cannot be read, or that
        the sink rejects, raises ``ValueError`` naming the variable (see docs/configuration.md).
        """
        from ._env import sink_from_env  # _env inspects this class's signature lazily

        sink: VLogsSink = sink_from_env(cls, overrides)
        return sink

    # -- loguru's protocol ---------------------------------------------------------------------

    def write(self, message: str) -> None:
        """Encode one record and buffer it; never performs I/O, never raises."""
        engine = self._engine
        try:
            writer = threading.get_ident()
            if writer == engine.worker.ident:
                # A record made on our own worker thread (stdlib logging routed into loguru):
                # shipping it would feed the sink its own traffic.
                engine.refuse_recursion("; e.g. stdlib logging routed into loguru")
                return
            if not engine.armed:
                engine.arm()
            record = getattr(message, "record", None)
            if record is None:
                record = _plain_record(str(message).rstrip("\n"))
            # Without enqueue=True loguru calls write() in the logging thread: the span active
            # there is the record's. (With enqueue=True none is active here: trace_patcher.)
            trace = None if self._trace is None else self._trace()
            # orjson's bytes keep a ~4 KiB allocation whatever their length: a right-sized
            # copy (0.1 µs) keeps a buffered record near its JSON size in memory.
            line = memoryview(self._encoder.encode(record, message, trace)).tobytes()
        except Exception as exc:  # noqa: BLE001 - a bad record must never reach the caller
            engine.encode_failed(exc)
            return
        reason = engine.buffer.put(line, writer)
        if reason is not None:
            engine.overflowed(reason)

    __call__ = write

    def stop(self) -> None:
        """Called by loguru on ``remove()`` and at exit: send what is buffered, then stop."""
        self._engine.stop()

    def _complete(self) -> None:
        """Wait until every record written before the call is delivered (or counted as failed).

        Returns early when an attempt fails (the records stay buffered for retry) or when
        nothing progresses for ``timeout`` seconds.
        """
        self._engine.complete()

    # -- explicit API ----------------------------------------------------------------------------

    def drain(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (default: ``shutdown_timeout``) for delivery.

        Returns True when every record written before the call was delivered or counted.
        """
        return self._engine.drain(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Send what is buffered within ``timeout`` seconds (default: ``shutdown_timeout``), stop.

        Returns True when nothing was left undelivered. Writing again restarts the sink.
        """
        return self._engine.close(timeout)

    def stats(self) -> Stats:
        """Counters of this sink in this process (docs/delivery.md explains each key)."""
        return self._engine.stats()

    def __repr__(self) -> str:
        return (
            f"VLogsSink(url={self._engine.urls_shown()!r}, service={self.settings.service!r}, "
            f"stream_fields={list(self.settings.stream_fields)!r})"
        )

    # -- pickling (spawn / forkserver): configuration only ------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return self._engine.copy_options()

    def __setstate__(self, state: dict[str, Any]) -> None:
        url = state.pop("url")
        self.__init__(url, **state)  # type: ignore[misc]


def _plain_record(text: str) -> dict[str, Any]:
    """A minimal record for ``sink("text")`` called outside loguru."""
    now = datetime.datetime.now().astimezone()
    return {
        "message": text,
        "time": now,
        "level": None,
        "extra": {},
        "exception": None,
    }
