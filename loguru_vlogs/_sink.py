"""``VLogsSink``: loguru's StreamSink protocol (write / stop / complete) wired to the engine."""

from __future__ import annotations

import datetime
import inspect
import os
import sys
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypedDict

from . import _lifecycle
from ._buffer import Buffer
from ._config import Compression, OverflowPolicy, Settings, label
from ._diag import RateLimited, emit
from ._options import build_settings
from ._record import RecordEncoder
from ._spool import FsyncPolicy, Spool, SpoolError
from ._transport import Transport, clear_muted_threads
from ._worker import Worker

#: Grace given to records that reach ``stop()`` after the exit budget is spent (loguru's
#: ``enqueue=True`` queue is drained after our atexit hook) when the server is answering.
_LATE_GRACE = 0.5


class Stats(TypedDict):
    """What :meth:`VLogsSink.stats` returns (docs/delivery.md explains each key)."""

    received: int
    accepted: int
    sent: int
    dropped: dict[str, int]
    dropped_total: int
    buffered: int
    buffered_bytes: int
    in_flight: int
    requests: int
    failed_requests: int
    retries: int
    bytes_raw: int
    bytes_sent: int
    consecutive_failures: int
    last_error: str | None
    last_success: float | None
    repairs: dict[str, int]
    spooled: int
    spool_sent: int
    spool_pending: int


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
        batch_size: int = 1000,
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
    ) -> None:
        self._kwargs: dict[str, Any] = {
            k: v for k, v in locals().items() if k not in ("self", "__class__")
        }
        self.settings: Settings = build_settings(**self._kwargs)
        # Resolved once, so a pickled copy (spawn) reports the same service and host.
        self._kwargs["service"] = self.settings.service
        self._kwargs["host"] = self.settings.host
        static: dict[str, Any] = dict(self.settings.fields)
        static["service"] = self.settings.service
        static["host"] = self.settings.host
        # The encoder's static_fields are the sink's `fields` (plus service and host).
        names = {
            "static_fields": label("fields"),
            "time_window": label("time_window"),
            "max_message_bytes": label("max_message_bytes"),
        }
        self._encoder = RecordEncoder(
            static_fields=static,
            names=names,
            max_message_bytes=self.settings.max_message_bytes,
            time_window=self.settings.time_window,
        )
        self._transport_factory: Callable[[], Transport] = self._http_transport
        self._build_engine()
        self.complete = _make_complete(self._complete)
        _lifecycle.install(self, handle_sigterm=self.settings.handle_sigterm)
        _lifecycle.on_fork_in_child(self._reset_after_fork)
        if self._worker.spool_pending:
            self._arm()  # an earlier process left records in the spool: send them now

    def _http_transport(self) -> Transport:
        # urllib3 is imported when the worker first sends, never at package import.
        from ._http import Urllib3Transport

        return Urllib3Transport(self.settings)

    def _build_engine(self, *, in_child: bool = False) -> None:
        s = self.settings
        spool = None
        try:
            spool = self._open_spool()
        except ValueError:
            if not in_child:
                raise
            # In a fork child the sink must come up whatever happens; write() retries the
            # spool at its first record (_arm) and warns there.
        self._buffer = Buffer(
            max_records=s.buffer_size,
            max_bytes=s.buffer_bytes,
            overflow=s.overflow,
            block_timeout=s.block_timeout,
            batch_size=s.batch_size,
            batch_bytes=s.batch_bytes,
        )
        self._warn = RateLimited(s.warn_interval)
        self._worker = Worker(
            s,
            self._buffer,
            self._transport_factory,
            self._warn,
            spool=spool,
        )
        self._armed = False
        self._arm_lock = threading.Lock()
        self._shutdown_lock = threading.Lock()
        self._reported_lost = 0
        self._reported_waiting = 0

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
        try:
            writer = threading.get_ident()
            if writer == self._worker.ident:
                # A record made on our own worker thread (stdlib logging routed into loguru):
                # shipping it would feed the sink its own traffic.
                self._count_unaccepted("recursion")
                self._warn.warn(
                    "recursion",
                    "a record logged on the sink's own worker thread was not shipped "
                    "(recursion; e.g. stdlib logging routed into loguru); see sink.stats()",
                )
                return
            if not self._armed:
                self._arm()
            record = getattr(message, "record", None)
            if record is None:
                record = _plain_record(str(message).rstrip("\n"))
            # orjson's bytes keep a ~4 KiB allocation whatever their length: a right-sized
            # copy (0.1 µs) keeps a buffered record near its JSON size in memory.
            line = memoryview(self._encoder.encode(record, message)).tobytes()
        except Exception as exc:  # noqa: BLE001 - a bad record must never reach the caller
            self._count_unaccepted("encode_error")
            self._warn.warn("encode", f"a record could not be encoded and was dropped: {exc!r}")
            return
        reason = self._buffer.put(line, writer)
        if reason is not None:
            self._warn.warn(
                "overflow",
                f"buffer full ({self.settings.buffer_size} records), overflow="
                f"{self.settings.overflow!r}: records dropped ({reason}); see sink.stats()",
            )

    __call__ = write

    def stop(self) -> None:
        """Called by loguru on ``remove()`` and at exit: send what is buffered, then stop."""
        now = time.monotonic()
        exit_started = _lifecycle.exit_started
        if exit_started is None:
            deadline = now + self.settings.shutdown_timeout
        else:
            deadline = exit_started + self.settings.shutdown_timeout
            if self._worker.counters["consecutive_failures"] == 0:
                deadline = max(deadline, now + _LATE_GRACE)
        self._shutdown(deadline)

    def _complete(self) -> None:
        """Wait until every record written before the call is delivered (or counted as failed).

        Returns early when an attempt fails (the records stay buffered for retry) or when
        nothing progresses for ``timeout`` seconds.
        """
        try:
            self._worker.drain(
                deadline=None, stop_on_failure=True, idle=self.settings.timeout + 1.0
            )
        except Exception as exc:  # noqa: BLE001 - complete() runs under loguru's lock: never raise
            emit(f"complete() failed: {exc!r}")

    # -- explicit API ----------------------------------------------------------------------------

    def drain(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (default: ``shutdown_timeout``) for delivery.

        Returns True when every record written before the call was delivered or counted.
        """
        wait = self.settings.shutdown_timeout if timeout is None else timeout
        return self._worker.drain(deadline=time.monotonic() + wait, stop_on_failure=False)

    def close(self, timeout: float | None = None) -> bool:
        """Send what is buffered within ``timeout`` seconds (default: ``shutdown_timeout``), stop.

        Returns True when nothing was left undelivered. Writing again restarts the sink.
        """
        wait = self.settings.shutdown_timeout if timeout is None else timeout
        return self._shutdown(time.monotonic() + wait)

    def stats(self) -> Stats:
        """Counters of this sink in this process (docs/delivery.md explains each key)."""
        worker = self._worker
        with self._buffer.cond:
            counters = dict(worker.counters)
            state = self._buffer.snapshot()
            spool_pending = worker.spool_pending
            in_flight = worker.in_flight()
        dropped = state.dropped
        return {
            "received": state.received,
            "accepted": state.accepted,
            "sent": counters["sent"],
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "buffered": state.buffered,
            "buffered_bytes": state.buffered_bytes,
            "in_flight": in_flight,
            "requests": counters["requests"],
            "failed_requests": counters["failed_requests"],
            "retries": counters["retries"],
            "bytes_raw": counters["bytes_raw"],
            "bytes_sent": counters["bytes_sent"],
            "consecutive_failures": counters["consecutive_failures"],
            "last_error": counters["last_error"],
            "last_success": counters["last_success"],
            "repairs": {
                k: v
                for k, v in {
                    **self._encoder.repairs,
                    "time_adjusted_in_spool": counters["spool_retimed"],
                }.items()
                if v
            },
            "spooled": counters["spooled"],
            "spool_sent": counters["spool_sent"],
            "spool_pending": spool_pending,
        }

    def __repr__(self) -> str:
        urls = [e.display for e in self.settings.endpoints]
        shown = urls[0] if len(urls) == 1 else urls
        return (
            f"VLogsSink(url={shown!r}, service={self.settings.service!r}, "
            f"stream_fields={list(self.settings.stream_fields)!r})"
        )

    # -- pickling (spawn / forkserver): configuration only ------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return dict(self._kwargs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        url = state.pop("url")
        self.__init__(url, **state)  # type: ignore[misc]

    # -- internals -------------------------------------------------------------------------------

    def _count_unaccepted(self, reason: str) -> None:
        self._buffer.refuse(reason)

    def _arm(self) -> None:
        """First write in this process: start the worker; in a multiprocessing child, make
        sure the buffer is flushed at its exit (it leaves through ``os._exit``, skipping atexit).
        """
        with self._arm_lock:
            if self._armed:
                return
            if self.settings.spool_dir is not None and self._worker.spool is None:
                try:
                    spool = self._open_spool()
                    if spool is not None:
                        self._worker.attach_spool(spool)
                except (ValueError, SpoolError) as exc:
                    self._warn.warn("spool", f"the spool cannot be opened again: {exc}")
            self._worker.start()
            _lifecycle.stop_at_child_exit(self)
            self._armed = True

    def _shutdown(self, deadline: float) -> bool:
        """Deliver until ``deadline``; report on stderr what could not be delivered.

        One at a time: the SIGTERM watchdog's flush may meet the application's ``close()``.
        """
        if not self._shutdown_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            return self._shutdown_locked(deadline)
        finally:
            self._shutdown_lock.release()

    def _shutdown_locked(self, deadline: float) -> bool:
        try:
            budget = max(0.0, deadline - time.monotonic())
            counters = self._worker.counters
            self._worker.stop(deadline)
            self._armed = False
            self._close_spool()
            # Reported since the last report, not since this call: with several sinks at
            # exit, a worker may give up (and count) before its own _shutdown() runs.
            with self._buffer.cond:
                lost_total = self._buffer.snapshot().dropped.get("shutdown", 0)
                lost = lost_total - self._reported_lost
                waiting = self._worker.spool_pending
                self._reported_lost = lost_total
                last_error = counters["last_error"]
            # Said once per exit (atexit, loguru's remove and a child's finalizer all stop it).
            if waiting and waiting != self._reported_waiting:
                emit(
                    f"{waiting} records wait in the spool {self.settings.spool_dir} "
                    f"(server unreachable: {last_error or 'unknown'}); the next process using "
                    "it, or `loguru-vlogs spool send`, delivers them"
                )
            self._reported_waiting = waiting
            if lost:
                urls = ", ".join(e.display for e in self.settings.endpoints)
                noun = "record" if lost == 1 else "records"
                emit(
                    f"{lost} {noun} could not be delivered to {urls} within {budget:.1f}s "
                    f"(shutdown_timeout={self.settings.shutdown_timeout:g}s); "
                    f"last error: {last_error or 'none'}"
                )
            return lost == 0
        except Exception as exc:  # noqa: BLE001 - loguru stops the other handlers only if we return
            emit(f"stopping the sink failed: {exc!r}")
            return False

    def _open_spool(self) -> Spool | None:
        s = self.settings
        if s.spool_dir is None:
            return None
        try:
            return Spool(s.spool_dir, max_bytes=s.spool_max_bytes, fsync=s.spool_fsync)  # type: ignore[arg-type]
        except SpoolError as exc:
            raise ValueError(f"Invalid spool_dir: {exc}") from exc

    def _close_spool(self) -> None:
        """Release the spool's files and locks, so other sinks or processes may take over."""
        spool = self._worker.detach_spool()
        if spool is not None:
            spool.close()

    def _reset_after_fork(self) -> None:
        """In a forked child: fresh locks, empty buffer (the parent sends its own), no thread."""
        # The parent's worker threads do not exist here; their idents may be reused.
        clear_muted_threads()
        self._build_engine(in_child=True)

    # -- the exit flush (_lifecycle) ------------------------------------------------------------

    def shutdown_budget(self) -> float:
        """Seconds this sink may spend flushing at exit (``shutdown_timeout``)."""
        return self.settings.shutdown_timeout

    def exit_flush_started(self, deadline: float) -> None:
        """The interpreter exits: start sending what is left, without waiting."""
        self._worker.request_stop(deadline)

    def exit_flush(self, deadline: float) -> None:
        """The interpreter exits: wait for the flush until ``deadline``, report losses."""
        self._shutdown(deadline)


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
