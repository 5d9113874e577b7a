"""The engine both fronts share: settings, buffer, worker, spool, process hooks and ``stats()``.

A front turns its records into JSON lines and hands them over: :class:`._sink.VLogsSink`
speaks loguru's protocol (``write`` / ``stop`` / ``complete``), :class:`._handler.VLogsHandler`
the ``logging.Handler`` one (``emit`` / ``flush`` / ``close``). Everything after the encoder is
here, once: the options are checked by the one table (:mod:`._options`), lines wait in the
bounded :class:`._buffer.Buffer`, the :class:`._worker.Worker` sends them, the spool keeps what
the server cannot take, :mod:`._lifecycle` flushes the engine at exit and rebuilds it in a fork
child, and losses are counted, reported on stderr and, with ``on_drop``, to the application.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, TypedDict

from . import _lifecycle
from ._buffer import Buffer
from ._config import Settings, label
from ._diag import RateLimited, emit
from ._drops import DropReporter
from ._options import build_settings
from ._spool import Spool, SpoolError
from ._transport import Transport, clear_muted_threads
from ._worker import Worker

#: Grace given to records that reach ``stop()`` after the exit budget is spent (loguru's
#: ``enqueue=True`` queue is drained after our atexit hook) when the server is answering.
LATE_GRACE = 0.5


class Stats(TypedDict):
    """What ``stats()`` returns (docs/delivery.md explains each key)."""

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


def encoder_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of a record encoder (``._record.RecordEncoder`` and its stdlib
    subclass) for ``settings``: the static fields are ``fields`` plus ``service`` and ``host``."""
    static: dict[str, Any] = dict(settings.fields)
    static["service"] = settings.service
    static["host"] = settings.host
    return {
        "static_fields": static,
        "names": {
            "static_fields": label("fields"),
            "time_window": label("time_window"),
            "max_message_bytes": label("max_message_bytes"),
        },
        "max_message_bytes": settings.max_message_bytes,
        "time_window": settings.time_window,
    }


class Engine:
    """Buffer, worker, spool and process hooks behind one front (``front`` names it in
    messages: ``"sink"`` or ``"handler"``).

    ``Engine(options)`` only checks the options (the front's keyword arguments, every option
    of the table): a wrong one raises before anything exists. :meth:`start` then builds the
    buffer, the worker and the spool and registers the process hooks.
    """

    def __init__(self, options: Mapping[str, Any], *, front: str) -> None:
        self.settings: Settings = build_settings(**options)
        #: the options a copy is rebuilt from (spawn); service and host resolved once, so a
        #: pickled copy reports the same ones
        self.options: dict[str, Any] = {
            **options,
            "service": self.settings.service,
            "host": self.settings.host,
        }
        self.front = front
        self._repairs: Mapping[str, int] = {}

    def start(self, repairs: Mapping[str, int]) -> None:
        """Build the buffer, worker and spool, register the exit and fork hooks; ``repairs``
        is the encoder's repair counters, for ``stats()``."""
        self._repairs = repairs
        self._build()
        _lifecycle.install(self, handle_sigterm=self.settings.handle_sigterm)
        _lifecycle.on_fork_in_child(self._reset_after_fork)
        if self.worker.spool_pending:
            self.arm()  # an earlier process left records in the spool: send them now

    def _http_transport(self) -> Transport:
        # urllib3 is imported when the worker first sends, never at package import.
        from ._http import Urllib3Transport

        return Urllib3Transport(self.settings)

    def _build(self, *, in_child: bool = False) -> None:
        s = self.settings
        spool = None
        try:
            spool = self._open_spool()
        except ValueError:
            if not in_child:
                raise
            # In a fork child the engine must come up whatever happens; the first record
            # retries the spool (arm) and warns there.
        self.buffer = Buffer(
            max_records=s.buffer_size,
            max_bytes=s.buffer_bytes,
            overflow=s.overflow,
            block_timeout=s.block_timeout,
            batch_size=s.batch_size,
            batch_bytes=s.batch_bytes,
        )
        self.warn = RateLimited(s.warn_interval)
        self.drops = DropReporter(s.on_drop, self.warn)
        self.worker = Worker(
            s,
            self.buffer,
            self._http_transport,
            self.warn,
            spool=spool,
            drops=self.drops,
        )
        #: the worker runs (or was started) in this process since the last stop
        self.armed = False
        self._arm_lock = threading.Lock()
        self._shutdown_lock = threading.Lock()
        self._reported_lost = 0
        self._reported_waiting = 0
        self._next_nudge = 0.0

    # -- the hot path's helpers ------------------------------------------------------------------

    def arm(self) -> None:
        """First record in this process: start the worker; in a multiprocessing child, make
        sure the buffer is flushed at its exit (it leaves through ``os._exit``, skipping atexit).
        """
        with self._arm_lock:
            if self.armed:
                return
            if self.settings.spool_dir is not None and self.worker.spool is None:
                try:
                    spool = self._open_spool()
                    if spool is not None:
                        self.worker.attach_spool(spool)
                except (ValueError, SpoolError) as exc:
                    self.warn.warn("spool", f"the spool cannot be opened again: {exc}")
            self.worker.start()
            _lifecycle.stop_at_child_exit(self)
            self.armed = True

    def refuse_recursion(self, hint: str = "") -> None:
        """A record made on the worker thread: never shipped (it would feed the front its own
        traffic), counted as ``recursion``."""
        self.refuse("recursion")
        self.warn.warn(
            "recursion",
            f"a record logged on the {self.front}'s own worker thread was not shipped "
            f"(recursion{hint}); see {self.front}.stats()",
        )

    def refuse(self, reason: str) -> None:
        """A record offered but never accepted, counted as dropped for ``reason``."""
        self.buffer.refuse(reason)
        if self.drops.callback is not None:
            if self.drops.calling and threading.get_ident() == self.worker.ident:
                with self.buffer.cond:
                    self.drops.callback_logged()
            else:
                self._nudge()

    def encode_failed(self, exc: BaseException) -> None:
        """A record that could not become a line: counted (``encode_error``), said on stderr."""
        self.refuse("encode_error")
        self.warn.warn("encode", f"a record could not be encoded and was dropped: {exc!r}")

    def overflowed(self, reason: str) -> None:
        """The buffer was full and a record was dropped (``reason``)."""
        if self.drops.callback is not None:
            self._nudge()
        self.warn.warn(
            "overflow",
            f"buffer full ({self.settings.buffer_size} records), overflow="
            f"{self.settings.overflow!r}: records dropped ({reason}); see {self.front}.stats()",
        )

    def _nudge(self) -> None:
        """Wake the worker so that ``on_drop`` hears of a drop made outside it (it may idle or
        back off for long); at most once per report interval."""
        now = time.monotonic()
        if now >= self._next_nudge:
            self._next_nudge = now + self.drops.interval
            with self.buffer.cond:
                self.buffer.cond.notify_all()

    # -- waiting and stopping --------------------------------------------------------------------

    def exit_aware_deadline(self, budget: float) -> float:
        """The deadline of a stop: ``budget`` seconds from now, or at exit what is left of the
        exit budget (plus a short grace while the server answers: records that arrive after
        the exit flush)."""
        now = time.monotonic()
        exit_started = _lifecycle.exit_started
        if exit_started is None:
            return now + budget
        deadline = exit_started + self.settings.shutdown_timeout
        if self.worker.counters["consecutive_failures"] == 0:
            deadline = max(deadline, now + LATE_GRACE)
        return deadline

    def stop(self) -> None:
        """Send what is buffered within ``shutdown_timeout`` (at exit: what is left of it), stop."""
        self.shutdown(self.exit_aware_deadline(self.settings.shutdown_timeout))

    def complete(self, deadline: float | None = None) -> bool:
        """Wait until every record accepted before the call is delivered (or counted).

        Returns early when an attempt fails (the records stay buffered for retry), when
        nothing progresses for ``timeout`` seconds, or at ``deadline``. Never raises.
        """
        try:
            return self.worker.drain(
                deadline=deadline, stop_on_failure=True, idle=self.settings.timeout + 1.0
            )
        except Exception as exc:  # noqa: BLE001 - runs under the front's caller's locks: never raise
            emit(f"waiting for delivery failed: {exc!r}")
            return False

    def drain(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (default: ``shutdown_timeout``) for delivery.

        Returns True when every record accepted before the call was delivered or counted.
        """
        wait = self.settings.shutdown_timeout if timeout is None else timeout
        return self.worker.drain(deadline=time.monotonic() + wait, stop_on_failure=False)

    def close(self, timeout: float | None = None) -> bool:
        """Send what is buffered within ``timeout`` seconds (default: ``shutdown_timeout``), stop.

        Returns True when nothing was left undelivered. A new record restarts the engine.
        """
        wait = self.settings.shutdown_timeout if timeout is None else timeout
        return self.shutdown(time.monotonic() + wait)

    def shutdown(self, deadline: float) -> bool:
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
            counters = self.worker.counters
            self.worker.stop(deadline)
            self.armed = False
            self._close_spool()
            # Reported since the last report, not since this call: with several engines at
            # exit, a worker may give up (and count) before its own shutdown() runs.
            with self.buffer.cond:
                lost_total = self.buffer.snapshot().dropped.get("shutdown", 0)
                lost = lost_total - self._reported_lost
                waiting = self.worker.spool_pending
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
            self.worker.report_drops()
            return lost == 0
        except Exception as exc:  # noqa: BLE001 - loguru stops the other handlers only if we return
            emit(f"stopping the {self.front} failed: {exc!r}")
            return False

    # -- stats -----------------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Counters of this engine in this process (docs/delivery.md explains each key)."""
        worker = self.worker
        with self.buffer.cond:
            counters = dict(worker.counters)
            state = self.buffer.snapshot()
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
                    **self._repairs,
                    "time_adjusted_in_spool": counters["spool_retimed"],
                }.items()
                if v
            },
            "spooled": counters["spooled"],
            "spool_sent": counters["spool_sent"],
            "spool_pending": spool_pending,
        }

    def urls_shown(self) -> str | list[str]:
        """The endpoints as a repr shows them (never with credentials)."""
        urls = [e.display for e in self.settings.endpoints]
        return urls[0] if len(urls) == 1 else urls

    def copy_options(self) -> dict[str, Any]:
        """The options a copy in another process is built from (pickling for spawn).

        An ``on_drop`` callback that cannot be pickled (a lambda, a bound method of an
        unpicklable object) stays behind: the copy counts its drops without calling it.
        """
        options = dict(self.options)
        callback = options.get("on_drop")
        if callback is not None:
            import pickle

            try:
                pickle.dumps(callback)
            except Exception:  # noqa: BLE001 - any pickling failure means: leave it behind
                options["on_drop"] = None
        return options

    # -- internals -------------------------------------------------------------------------------

    def _open_spool(self) -> Spool | None:
        s = self.settings
        if s.spool_dir is None:
            return None
        try:
            return Spool(s.spool_dir, max_bytes=s.spool_max_bytes, fsync=s.spool_fsync)  # type: ignore[arg-type]
        except SpoolError as exc:
            raise ValueError(f"Invalid spool_dir: {exc}") from exc

    def _close_spool(self) -> None:
        """Release the spool's files and locks, so other engines or processes may take over."""
        spool = self.worker.detach_spool()
        if spool is not None:
            spool.close()

    def _reset_after_fork(self) -> None:
        """In a forked child: fresh locks, empty buffer (the parent sends its own), no thread."""
        # The parent's worker threads do not exist here; their idents may be reused.
        clear_muted_threads()
        self._build(in_child=True)

    # -- the exit flush (_lifecycle) -------------------------------------------------------------

    def shutdown_budget(self) -> float:
        """Seconds this engine may spend flushing at exit (``shutdown_timeout``)."""
        return self.settings.shutdown_timeout

    def exit_flush_started(self, deadline: float) -> None:
        """The interpreter exits: start sending what is left, without waiting."""
        self.worker.request_stop(deadline)

    def exit_flush(self, deadline: float) -> None:
        """The interpreter exits: wait for the flush until ``deadline``, report losses."""
        self.shutdown(deadline)
