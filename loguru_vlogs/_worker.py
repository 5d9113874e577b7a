"""The one background thread: batching triggers, sending, retrying, draining and stopping.

Every wait is on the buffer's Condition with a deadline, so ``drain()`` and ``stop()`` can
interrupt a backoff, and nothing waits forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ._buffer import Buffer
from ._config import Settings
from ._diag import RateLimited
from ._drops import DropReporter
from ._explain import misrouted
from ._policy import MIN_ATTEMPT, Action, DeliveryPolicy, Endpoints, Situation
from ._retime import refresh_times
from ._retry import Backoff, Verdict, classify, parse_retry_after
from ._spool import Spool, SpoolError, SpoolFullError
from ._transport import Outcome, Transport, mute_thread, request_plan, unmute_thread

#: With a spool, an idle worker looks for segments left by dead processes this often (seconds).
_SPOOL_POLL = 5.0
#: After the spool refused a batch (disk full, read-only, deleted), the sink works as without
#: one for this long (seconds) before it tries the spool again.
_SPOOL_RETRY = 5.0


class Worker:
    """Owns the sending side of one sink; all mutable state is guarded by ``buffer.cond``."""

    def __init__(
        self,
        settings: Settings,
        buffer: Buffer,
        transport_factory: Callable[[], Transport],
        warnings: RateLimited,
        *,
        spool: Spool | None = None,
        drops: DropReporter | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.buffer = buffer
        #: tells ``on_drop`` about new drops, from this thread, between batches and waits
        self.drops = drops if drops is not None else DropReporter(None, warnings)
        self._transport_factory = transport_factory
        self._transport: Transport | None = None
        self._warn = warnings
        self._compress, self._headers = request_plan(settings)
        self._thread: threading.Thread | None = None
        #: the generation of the worker thread running this code (unset: inline, no thread)
        self._local = threading.local()
        self.ident: int | None = None
        # Guarded by buffer.cond:
        self._stopping = False
        self._deadline: float | None = None
        self._flush_until = 0
        self._kick = 0
        self._kick_seen = 0
        self._inflight: list[bytes] | None = None
        self._inflight_first = 0
        self._inflight_failed = False
        self._spooled_for_exit = False
        #: the thread that may act (a new start() leaves a thread stuck in a request behind)
        self._generation = 0
        #: a batch stop() took from a request still under way, and what stop() did with it
        #: ("shutdown": counted as dropped; "spool": written to the spool), so that a late
        #: answer is settled by what happened
        self._abandoned: tuple[list[bytes], str] | None = None
        #: the spool refused a batch: until this monotonic time the sink works as without one
        self._spool_refused_until = 0.0
        #: spool.dropped as last counted into the buffer's drops
        self._spool_drops_seen: dict[str, int] = dict(spool.dropped) if spool is not None else {}
        self._backoffs = [
            Backoff(settings.backoff_base, settings.backoff_max) for _ in settings.endpoints
        ]
        self._endpoints = Endpoints.healthy(len(settings.endpoints))
        self._policy = DeliveryPolicy(
            timeout=settings.timeout,
            retry_max_elapsed=settings.retry_max_elapsed,
            spool_threshold=settings.spool_threshold,
        )
        self.failures = 0
        self.counters: dict[str, Any] = {
            "sent": 0,
            "requests": 0,
            "failed_requests": 0,
            "retries": 0,
            "bytes_raw": 0,
            "bytes_sent": 0,
            "consecutive_failures": 0,
            "last_error": None,
            "last_success": None,
            "spooled": 0,
            "spool_sent": 0,
            "spool_retimed": 0,
        }
        #: records waiting in the spool (own and adopted), as last read from it
        self.spool_pending = spool.pending()[0] if spool is not None else 0

    # -- lifecycle -------------------------------------------------------------------------

    def alive(self) -> bool:
        """True while the thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> bool:
        """Start the thread if it does not run; False when threads cannot start (exit)."""
        with self.buffer.cond:
            if self.alive():
                return True
            self._stopping = False
            self._deadline = None
            self._spooled_for_exit = False
            self._generation += 1
            thread = threading.Thread(
                target=self._run, args=(self._generation,), name="loguru-vlogs-worker", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:
                # "can't create new thread at interpreter shutdown": stop() sends inline.
                return False
            self._thread = thread
            self.ident = thread.ident
            return True

    def request_stop(self, deadline: float) -> None:
        """Tell the thread to send what is left until ``deadline``; does not wait."""
        with self.buffer.cond:
            self._stopping = True
            self._deadline = deadline
            self.buffer.cond.notify_all()

    def stop(self, deadline: float) -> None:
        """Send what is buffered until ``deadline`` (monotonic), then end the thread.

        Whatever is left at the deadline goes to the spool, or is counted as dropped
        ("shutdown") without one.
        """
        self.request_stop(deadline)
        cond = self.buffer.cond
        with cond:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()) + MIN_ATTEMPT)
        if thread is None or not thread.is_alive():
            # No thread (fork child, interpreter exit): deliver inline on this thread.
            self._loop(inline=True)
        with cond:
            self._abandon()
            left_behind = thread is not None and thread.is_alive()
            if left_behind:
                # Stuck in a request past the deadline: it is left behind (its late answer
                # is still settled, see _account), and a write restarts a fresh thread.
                self._generation += 1
            self._thread = None
            transport, self._transport = self._transport, None
        # A thread left behind keeps the transport it is using; the next one makes its own.
        if transport is not None and not left_behind:
            transport.close()

    def attach_spool(self, spool: Spool) -> None:
        """Use ``spool`` from now on (opened again after a ``close()``)."""
        pending = spool.pending()[0]
        with self.buffer.cond:
            self.spool = spool
            self.spool_pending = pending
            self._spool_drops_seen = dict(spool.dropped)

    def detach_spool(self) -> Spool | None:
        """Hand the spool back to be closed, unless the thread still runs (it may use it).

        ``spool_pending`` keeps its count: those records still wait on disk.
        """
        with self.buffer.cond:
            spool = self.spool
            if spool is None or self.alive():
                return None
            self.spool = None
        self._refresh_spool(spool)  # its last drops are counted before it closes
        return spool

    # -- waiting for delivery ----------------------------------------------------------------

    def in_flight(self) -> int:
        """Records of the batch being sent (0 when none). Hold ``cond``."""
        return 0 if self._inflight is None else len(self._inflight)

    def drained(self, target: int) -> bool:
        """Every record numbered <= target is resolved (sent or counted). Hold ``cond``."""
        if self._inflight is not None and self._inflight_first <= target:
            return False
        if self.spool_pending:
            return False
        return not self.buffer or self.buffer.front_number() > target

    def drain(
        self,
        *,
        deadline: float | None,
        stop_on_failure: bool,
        idle: float | None = None,
    ) -> bool:
        """Wait until everything accepted before the call is resolved.

        Returns False at ``deadline``, at the first failed attempt after the call (when
        ``stop_on_failure``), or when nothing progressed for ``idle`` seconds.
        """
        cond = self.buffer.cond
        with cond:
            target = self.buffer.accepted
            if self.drained(target):
                return True
            self._flush_until = max(self._flush_until, target)
            self._kick += 1
            cond.notify_all()
            failures = self.failures
            progress = self.counters["sent"] + self.buffer.dropped_total()
            idle_deadline = None if idle is None else time.monotonic() + idle
            while not self.drained(target):
                if stop_on_failure and self.failures != failures:
                    return False
                if self.spool is None and self.spool_pending:
                    return False  # records wait in a closed spool: nothing will send them now
                now = time.monotonic()
                current = self.counters["sent"] + self.buffer.dropped_total()
                if current != progress:
                    progress = current
                    idle_deadline = None if idle is None else now + idle
                ends = [d for d in (deadline, idle_deadline) if d is not None]
                if ends and now >= min(ends):
                    return False
                if not self.alive() and not self._start_locked():
                    return False
                cond.wait(None if not ends else min(ends) - now)
            return True

    def _start_locked(self) -> bool:
        cond = self.buffer.cond
        cond.release()
        try:
            return self.start()
        finally:
            cond.acquire()

    # -- the thread ------------------------------------------------------------------------------

    def _run(self, generation: int) -> None:
        self._local.generation = generation
        mute_thread(threading.get_ident())
        self.buffer.worker_resting = False
        try:
            self._loop(inline=False, generation=generation)
        except BaseException as exc:  # noqa: BLE001 - the worker must report, never die silently
            self._warn.warn("worker", f"worker thread failed: {type(exc).__name__}: {exc}")
        finally:
            self.buffer.worker_resting = True  # no thread: callers have nobody to yield to
            unmute_thread(threading.get_ident())
            with self.buffer.cond:
                if self.ident == threading.get_ident():
                    # Thread ids are reused once a thread ends: a later writer given this one
                    # (loguru's enqueue thread, a new thread) is not the worker.
                    self.ident = None

    def _loop(self, *, inline: bool, generation: int | None = None) -> None:
        while True:
            if self._stale(generation):
                return  # left behind by stop(); a newer thread does the work now
            if self.spool_pending and self.spool is not None and not self._past_deadline():
                # Spooled records are older than anything in memory: they go first.
                self._deliver_spooled()
                continue
            batch = self._next_batch(inline=inline, generation=generation)
            if batch is None:
                return
            if batch:
                self._deliver(batch)
            else:
                self._refresh_spool()
            if not inline:
                self._report_drops_if_due()

    def _report_drops_if_due(self) -> None:
        if self.drops.callback is None:
            return
        with self.buffer.cond:
            due = self.drops.wait_time(self.buffer) == 0.0
        if due:
            self.report_drops()

    def report_drops(self) -> None:
        """Tell ``on_drop`` about the drops since the last report (cond NOT held)."""
        if self.drops.callback is None:
            return
        with self.buffer.cond:
            new = self.drops.take(self.buffer.snapshot().dropped, time.monotonic())
        self.drops.tell(new, on_worker=threading.get_ident() == self.ident)

    def _past_deadline(self) -> bool:
        with self.buffer.cond:
            return self._finished_locked()

    def _finished_locked(self) -> bool:
        """Stopping, and either out of time or everything is safe in the spool."""
        if not self._stopping:
            return False
        if self._spooled_for_exit:
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _next_batch(  # noqa: PLR0911 - each return is one reason to stop waiting
        self, *, inline: bool, generation: int | None
    ) -> list[bytes] | None:
        settings = self.settings
        buffer = self.buffer
        with buffer.cond:
            while True:
                if self._stale(generation):
                    return None
                if self._inflight is not None:
                    # A thread that died mid-send left its batch behind: stop() counts it.
                    return None
                n = len(buffer)
                if self._finished_locked():
                    return None
                report = None if inline else self.drops.wait_time(buffer)
                if report == 0.0:
                    return []  # on_drop is due: the loop tells it, then comes back
                if n:
                    now = time.monotonic()
                    waited = now - buffer.oldest
                    if (
                        inline
                        or self._stopping
                        or n >= settings.batch_size
                        or buffer.nbytes >= settings.batch_bytes
                        or waited >= settings.flush_interval
                        or buffer.front_number() <= self._flush_until
                    ):
                        first = buffer.front_number()
                        batch = buffer.take(settings.batch_size, settings.batch_bytes)
                        self._inflight = batch
                        self._inflight_first = first
                        self._inflight_failed = False
                        self._kick_seen = self._kick  # this send serves the drains so far
                        return batch
                    wait = settings.flush_interval - waited
                    buffer.cond.wait(wait if report is None else min(wait, report))
                elif self._stopping or inline:
                    return None
                elif self.spool is not None:
                    wait = _SPOOL_POLL if report is None else min(_SPOOL_POLL, report)
                    if not buffer.cond.wait(wait) and report is None:
                        return []  # idle: time to look for segments of dead processes
                else:
                    buffer.cond.wait(report)

    def _attempts(self, body: bytes, records: int, batch: list[bytes] | None) -> Verdict | None:
        """The one delivery loop, for a batch from memory (``batch``) or the spool (None):
        ask the policy, send, count, until the batch is settled. Returns the last attempt's
        verdict (OK, REJECT, or ABANDONED when stop() took the batch meanwhile), or None when
        the policy took the batch elsewhere (spooled, given up, abandoned at the deadline)."""
        payload = self._compress(body)
        started = time.monotonic()
        while True:
            attempt = self._next_attempt(batch, started)
            if attempt is None:
                return None
            index, timeout = attempt
            outcome = self._send(index, payload, timeout)
            verdict = self._account(index, outcome, records, len(body), len(payload), batch=batch)
            if verdict is not Verdict.RETRY:
                return verdict

    def _deliver(self, batch: list[bytes]) -> None:
        """Send one batch from memory until it is resolved (sent, rejected, spooled, counted)."""
        verdict = self._attempts(b"\n".join(batch), len(batch), batch)
        if verdict is None:
            return
        with self.buffer.cond:
            if self._inflight is batch:
                self._inflight = None
                if verdict is Verdict.REJECT:
                    self.buffer.count_drop("rejected", len(batch))
                self.buffer.cond.notify_all()

    def _deliver_spooled(self) -> None:
        """Send the oldest spooled entry until it is acknowledged (or the deadline passes)."""
        spool = self.spool
        assert spool is not None
        try:
            entry = spool.peek()
        except SpoolError as exc:
            self._warn.warn("spool", f"reading the spool failed: {exc}")
            entry = None
        if entry is None:
            self._refresh_spool(force_zero=True)
            return
        body = entry.payload
        if self.settings.time_window is not None:
            # A batch may have waited in the spool past the server's retention.
            body, moved = refresh_times(body, self.settings.time_window)
            if moved:
                with self.buffer.cond:
                    self.counters["spool_retimed"] += moved
        verdict = self._attempts(body, entry.records, None)
        if verdict is None or self._superseded():
            # Left behind by stop() while sending: the entry stays in the spool for the
            # thread that owns it now, which sends it again (a duplicate, never a loss)
            # and counts it once.
            return
        try:
            spool.ack(entry)
        except SpoolError as exc:
            self._warn.warn("spool", f"acknowledging a spooled batch failed: {exc}")
        # It leaves spool_pending as it becomes sent (or dropped), in one step, once
        # acknowledged: a drain() that returns has nothing left to redo after a crash.
        with self.buffer.cond:
            if verdict is Verdict.OK:
                self.counters["sent"] += entry.records
                self.counters["spool_sent"] += entry.records
            else:
                self.buffer.count_drop("rejected", entry.records)
            self.spool_pending -= entry.records
        self._refresh_spool()

    def _stale(self, generation: int | None) -> bool:
        """A worker thread of ``generation`` was left behind by stop(): a newer one does the
        work (None: inline, never stale)."""
        return generation is not None and generation != self._generation

    def _superseded(self) -> bool:
        """This thread was left behind by stop(): a newer one does the work (cond NOT held)."""
        generation = getattr(self._local, "generation", None)
        with self.buffer.cond:
            return self._stale(generation)

    def _send(self, index: int, payload: bytes, timeout: float) -> Outcome:
        transport = self._transport
        if transport is None:  # (made outside the lock: the first one imports urllib3)
            transport = self._transport = self._transport_factory()
        endpoint = self.settings.endpoints[index]
        self.buffer.worker_sending_since = time.monotonic()
        try:
            return transport.send(endpoint, payload, self._headers[index], timeout)
        finally:
            self.buffer.worker_sending_since = 0.0

    def _next_attempt(self, batch: list[bytes] | None, started: float) -> tuple[int, float] | None:
        """``(endpoint, timeout)`` of the next try, after any backoff; None when resolved.

        ``batch`` is the in-flight memory batch, or None for a spooled entry. The policy
        (:mod:`._policy`) decides; this carries the decision out.
        """
        cond = self.buffer.cond
        generation = getattr(self._local, "generation", None)
        while True:
            to_spool: list[bytes] | None = None
            with cond:
                if batch is not None and self._inflight is not batch:
                    return None  # abandoned by stop(): already counted
                if self._stale(generation):
                    return None  # this thread was left behind: a newer one does the work
                now = time.monotonic()
                index, wait, picked = self._endpoints.pick(now)
                decision = self._policy.decide(
                    Situation(
                        now=now,
                        started=started,
                        failed=batch is not None and self._inflight_failed,
                        from_spool=batch is None,
                        batch_records=0 if batch is None else len(batch),
                        buffered=len(self.buffer),
                        endpoint=index,
                        endpoint_wait=wait,
                        stopping=self._stopping,
                        deadline=self._deadline,
                        spool=self._spool_usable(now),
                    )
                )
                action = decision.action
                if action is Action.SEND:
                    self._endpoints = picked
                    return decision.endpoint, decision.seconds
                if action is Action.WAIT:
                    self._sleep(decision.seconds)
                    continue
                if action is Action.ABANDON:
                    if batch is not None:
                        self._abandon()
                    return None
                if action is Action.GIVE_UP:
                    assert batch is not None
                    self.buffer.count_drop("retry_exhausted", len(batch))
                    self._inflight = None
                    cond.notify_all()
                    last_error = self.counters["last_error"]
                    self._warn.warn(
                        "exhausted",
                        f"gave up a batch of {len(batch)} records after retrying for "
                        f"{self.settings.retry_max_elapsed:g}s (retry_max_elapsed); "
                        f"last error: {last_error}",
                    )
                    return None
                if action is Action.SPILL_ALL:
                    # Stopping while the server fails: put everything on disk and finish now
                    # rather than retrying until the deadline.
                    to_spool = [] if batch is None else self._release_inflight_to_spool(batch)
                    rest = self.buffer.take_all()
                    to_spool.extend(rest)
                    self.spool_pending += len(rest)
                    self._spooled_for_exit = True
                elif action is Action.SPILL_BATCH:
                    assert batch is not None
                    to_spool = self._release_inflight_to_spool(batch)
                else:  # Action.SPILL_MEMORY
                    to_spool = self.buffer.take(self.settings.batch_size, self.settings.batch_bytes)
                    self.spool_pending += len(to_spool)
            self._spool_lines(to_spool)
            if batch is not None or self._spooled_for_exit:
                return None

    def _spool_usable(self, now: float) -> bool:
        """A spool is open and has not refused a batch lately. Hold ``cond``."""
        return self.spool is not None and now >= self._spool_refused_until

    def _release_inflight_to_spool(self, batch: list[bytes]) -> list[bytes]:
        """Hand the in-flight batch over to the spool (cond held); returns a copy to append."""
        self._inflight = None
        self.spool_pending += len(batch)
        self.buffer.cond.notify_all()
        return list(batch)

    def _spool_lines(self, lines: list[bytes], *, final: bool = False) -> None:
        """Append ``lines`` (counted in ``spool_pending`` already) to the spool (cond NOT held).

        What the spool refuses goes back to memory under the overflow policy, as if there
        were no spool (only what memory cannot hold either is dropped, with the spool's
        reason), and the sink works without the spool for a while. ``final`` (stop()'s
        deadline): what the spool refuses cannot wait any more and counts as ``shutdown``.
        """
        spool = self.spool
        assert spool is not None
        size = self.settings.batch_size
        stored = 0
        refused: list[bytes] = []
        reason = ""
        error = ""
        for start in range(0, len(lines), size):
            chunk = lines[start : start + size]
            if refused:
                refused.extend(chunk)  # the spool failed: do not hammer it with the rest
                continue
            try:
                spool.append(chunk)
            except SpoolFullError as exc:
                reason, error = "spool_full", str(exc)
                refused.extend(chunk)
            except (SpoolError, OSError) as exc:
                reason, error = "spool_error", str(exc)
                refused.extend(chunk)
            else:
                stored += len(chunk)
        cond = self.buffer.cond
        with cond:
            self.counters["spooled"] += stored
            if refused:
                self.spool_pending -= len(refused)
                self._spool_refused_until = time.monotonic() + _SPOOL_RETRY
                self._spooled_for_exit = False  # they are in memory again: keep sending
                if final:
                    self.buffer.count_drop("shutdown", len(refused))
                else:
                    lost = self.buffer.restore(refused, reason)
                    if lost:
                        self._warn.warn(
                            "spool_refused_lost",
                            f"{lost} records dropped ({reason}): the spool refused them and "
                            "memory is full too",
                        )
                cond.notify_all()
        if refused:
            where = "they stay in memory" if not final else "they are lost"
            self._warn.warn(
                "spool",
                f"the spool refused {len(refused)} records ({reason}): {error}; {where}, and "
                f"the sink works without the spool for {_SPOOL_RETRY:g} s",
            )
        self._refresh_spool()

    def _refresh_spool(self, spool: Spool | None = None, *, force_zero: bool = False) -> None:
        """Re-read how many records wait in the spool, and count what it dropped since the
        last look (evicted for room, damaged) as the sink's drops, in one step (cond NOT held).
        """
        spool = self.spool if spool is None else spool
        if spool is None:
            return
        pending = 0
        if not force_zero:
            try:
                spool.peek()  # also picks up segments of dead processes, every few seconds
                pending = spool.pending()[0]
            except SpoolError as exc:
                self._warn.warn("spool", f"reading the spool failed: {exc}")
        dropped = dict(spool.dropped)
        new: dict[str, int] = {}
        with self.buffer.cond:
            for reason, count in dropped.items():
                delta = count - self._spool_drops_seen.get(reason, 0)
                if delta > 0:
                    self.buffer.count_drop(reason, delta)
                    new[reason] = delta
            self._spool_drops_seen = dropped
            self.spool_pending = pending
            self.buffer.cond.notify_all()
        for reason, count in new.items():
            what = "deleted to make room" if reason == "spool_full" else "found damaged"
            self._warn.warn(
                f"spool_drop:{reason}",
                f"{count} spooled records were {what} and dropped ({reason}; "
                f"spool_max_bytes={self.settings.spool_max_bytes}); see stats()",
            )

    def _sleep(self, seconds: float) -> None:
        """Back off for ``seconds`` (cond held) unless drain()/stop() asks for a try now,
        or memory piles up that should go to the spool."""
        spool_at = self.settings.spool_threshold if self.spool is not None else None
        stopping = self._stopping
        end = time.monotonic() + seconds
        # Backing off needs no GIL: callers a batch ahead need not yield it meanwhile.
        self.buffer.worker_resting = True
        try:
            self._sleep_until(end, spool_at, stopping)
        finally:
            self.buffer.worker_resting = False

    def _sleep_until(self, end: float, spool_at: int | None, stopping: bool) -> None:
        cond = self.buffer.cond
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            if self._kick != self._kick_seen or self._stopping != stopping:
                # Someone waits for delivery: try again at once instead of sleeping it out.
                # Each drain() buys one immediate try, even one made while we were sending.
                self._kick_seen = self._kick
                self._endpoints = self._endpoints.all_healthy()
                return
            if spool_at is not None and len(self.buffer) >= spool_at:
                return
            report = self.drops.wait_time(self.buffer)
            if report == 0.0:
                # Backing off while the server is down is when the buffer overflows: on_drop
                # hears about it now, not when the backoff ends.
                cond.release()
                try:
                    self.report_drops()
                finally:
                    cond.acquire()
                continue
            cond.wait(remaining if report is None else min(remaining, report))

    def _account(
        self,
        index: int,
        outcome: Outcome,
        records: int,
        raw: int,
        sent: int,
        *,
        batch: list[bytes] | None = None,
    ) -> Verdict:
        """Count one attempt; returns its verdict."""
        verdict = classify(outcome.status, outcome.body)
        counters = self.counters
        error = None
        if verdict is not Verdict.OK:
            endpoint = self.settings.endpoints[index].display
            mistake = None
            if outcome.status is None:
                error = f"{endpoint}: {outcome.error}"
            else:
                error = f"{endpoint}: HTTP {outcome.status} {outcome.body[:200]}".rstrip()
                mistake = misrouted(outcome.status, outcome.body)
            # Warn before waking drain()/complete() waiters, so what they return to is explained.
            if verdict is Verdict.REJECT:
                self._warn.warn(
                    f"reject:{outcome.status}",
                    f"the server refused a batch of {records} records "
                    f"(not retryable, dropped): {error}",
                )
            elif mistake is not None:
                self._warn.warn(
                    "misrouted",
                    f"cannot deliver to {endpoint}: {mistake}; the records are kept and "
                    "retried until the URL is fixed",
                )
            else:
                self._warn.warn("retry", f"sending failed, will retry: {error}")
        with self.buffer.cond:
            if batch is not None and self._inflight is not batch:
                self._settle_late(batch, verdict, records, raw, sent)
                return Verdict.ABANDONED  # stop() counted it already
            counters["requests"] += 1
            self.buffer.cond.notify_all()
            if verdict is Verdict.OK:
                if batch is not None:
                    # (a spooled entry is counted sent once acknowledged: _deliver_spooled)
                    counters["sent"] += records
                counters["bytes_raw"] += raw
                counters["bytes_sent"] += sent
                counters["consecutive_failures"] = 0
                counters["last_success"] = time.time()
                self._backoffs[index] = self._backoffs[index].reset()
                self._endpoints = self._endpoints.succeeded(index)
                return verdict
            counters["last_error"] = error
            if verdict is Verdict.REJECT:
                return verdict
            counters["failed_requests"] += 1
            counters["retries"] += 1
            counters["consecutive_failures"] += 1
            self.failures += 1
            if batch is not None:
                self._inflight_failed = True
            backoff = self._backoffs[index].next()
            self._backoffs[index] = backoff
            delay = backoff.delay(parse_retry_after(outcome.retry_after))
            delay = self._endpoints.failover_delay(delay, self.settings.backoff_base)
            self._endpoints = self._endpoints.failed(index, time.monotonic() + delay)
            return verdict

    def _settle_late(
        self, batch: list[bytes], verdict: Verdict, records: int, raw: int, sent: int
    ) -> None:
        """The answer to a request stop() gave up on arrived after all (cond held): a batch
        counted as lost that the server took is counted as sent instead. (One written to the
        spool stays there: it will be sent again, a duplicate, rather than risk a loss.)"""
        abandoned = self._abandoned
        if abandoned is None or abandoned[0] is not batch:
            return
        self._abandoned = None
        self.counters["requests"] += 1
        if verdict is Verdict.OK and abandoned[1] == "shutdown":
            self.buffer.uncount_drop("shutdown", records)
            self.counters["sent"] += records
            self.counters["bytes_raw"] += raw
            self.counters["bytes_sent"] += sent
            self.counters["last_success"] = time.time()
            self.buffer.cond.notify_all()

    def _abandon(self) -> None:
        """At the deadline: spool what is in flight and buffered, or count it ("shutdown").

        Call with ``cond`` held. A request still under way keeps running: its answer, if it
        comes, settles its batch by what happened (see :meth:`_account`).
        """
        in_flight = self._inflight
        self._inflight = None
        usable = self._spool_usable(time.monotonic())
        if in_flight is not None:
            self._abandoned = (in_flight, "spool" if usable else "shutdown")
        if not usable:
            if in_flight:
                self.buffer.count_drop("shutdown", len(in_flight))
            self.buffer.drop_all("shutdown")
        else:
            lines = list(in_flight or ()) + self.buffer.take_all()
            if lines:
                # At exit with the server down, disk beats loss. The worker may still be
                # blocked in a send; the spool is thread-safe, and a late success becomes a
                # duplicate.
                self.spool_pending += len(lines)
                self.buffer.cond.release()
                try:
                    self._spool_lines(lines, final=True)
                finally:
                    self.buffer.cond.acquire()
        self.buffer.cond.notify_all()
