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
from ._retry import Backoff, classify, parse_retry_after
from ._transport import Outcome, Transport, make_compressor, mute_thread, unmute_thread

#: While stopping, a failing endpoint is retried at least this often (seconds), so a server
#: that comes back during the shutdown budget still gets the records.
_STOP_RETRY_CAP = 0.5
#: An attempt with less time than this left before the deadline is not worth starting.
_MIN_ATTEMPT = 0.05


class Worker:
    """Owns the sending side of one sink; all mutable state is guarded by ``buffer.cond``."""

    def __init__(
        self,
        settings: Settings,
        buffer: Buffer,
        transport_factory: Callable[[], Transport],
        warnings: RateLimited,
    ) -> None:
        self.settings = settings
        self.buffer = buffer
        self._transport_factory = transport_factory
        self._transport: Transport | None = None
        self._warn = warnings
        encoding, self._compress = make_compressor(settings.compression, settings.compression_level)
        self._headers = []
        for endpoint in settings.endpoints:
            headers = settings.request_headers(endpoint)
            if encoding:
                headers["Content-Encoding"] = encoding
            self._headers.append(headers)
        self._thread: threading.Thread | None = None
        self.ident: int | None = None
        # Guarded by buffer.cond:
        self._stopping = False
        self._deadline: float | None = None
        self._flush_until = 0
        self._kick = 0
        self._inflight: list[bytes] | None = None
        self._inflight_first = 0
        self._inflight_failed = False
        self._backoffs = [
            Backoff(settings.backoff_base, settings.backoff_max) for _ in settings.endpoints
        ]
        self._down_until = [0.0] * len(settings.endpoints)
        self._next_endpoint = 0
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
        }

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
            thread = threading.Thread(target=self._run, name="loguru-vlogs-worker", daemon=True)
            try:
                thread.start()
            except RuntimeError:
                # "can't create new thread at interpreter shutdown": stop() sends inline.
                return False
            self._thread = thread
            self.ident = thread.ident
            return True

    def stop(self, deadline: float) -> None:
        """Send what is buffered until ``deadline`` (monotonic), then end the thread.

        Whatever is left at the deadline is counted as dropped ("shutdown").
        """
        cond = self.buffer.cond
        with cond:
            self._stopping = True
            self._deadline = deadline
            cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()) + _MIN_ATTEMPT)
        if thread is None or not thread.is_alive():
            # No thread (fork child, interpreter exit): deliver inline on this thread.
            self._loop(inline=True)
        with cond:
            self._abandon()
            self._thread = None if thread is None or not thread.is_alive() else thread
        if self._transport is not None and not self.alive():
            self._transport.close()
            self._transport = None

    # -- waiting for delivery ----------------------------------------------------------------

    def drained(self, target: int) -> bool:
        """Every record numbered <= target is resolved (sent or counted). Hold ``cond``."""
        if self._inflight is not None and self._inflight_first <= target:
            return False
        return not self.buffer.lines or self.buffer.front_number() > target

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
            progress = self.counters["sent"] + sum(self.buffer.dropped.values())
            idle_deadline = None if idle is None else time.monotonic() + idle
            while not self.drained(target):
                if stop_on_failure and self.failures != failures:
                    return False
                now = time.monotonic()
                current = self.counters["sent"] + sum(self.buffer.dropped.values())
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

    def _run(self) -> None:
        mute_thread(threading.get_ident())
        try:
            self._loop(inline=False)
        except BaseException as exc:  # noqa: BLE001 - the worker must report, never die silently
            self._warn.warn("worker", f"worker thread failed: {type(exc).__name__}: {exc}")
        finally:
            unmute_thread(threading.get_ident())

    def _loop(self, *, inline: bool) -> None:
        while True:
            batch = self._next_batch(inline=inline)
            if batch is None:
                return
            self._deliver(batch)

    def _next_batch(self, *, inline: bool) -> list[bytes] | None:
        settings = self.settings
        buffer = self.buffer
        with buffer.cond:
            while True:
                if self._inflight is not None:
                    # A thread that died mid-send left its batch behind: stop() counts it.
                    return None
                n = len(buffer.lines)
                if (
                    self._stopping
                    and self._deadline is not None
                    and time.monotonic() >= self._deadline
                ):
                    return None
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
                        return batch
                    buffer.cond.wait(settings.flush_interval - waited)
                elif self._stopping or inline:
                    return None
                else:
                    buffer.cond.wait()

    def _pick_endpoint(self, now: float) -> tuple[int, float]:
        """``(endpoint index, seconds to wait first)``: round robin over healthy endpoints."""
        count = len(self._down_until)
        for step in range(count):
            index = (self._next_endpoint + step) % count
            if self._down_until[index] <= now:
                self._next_endpoint = (index + 1) % count
                return index, 0.0
        index = min(range(count), key=self._down_until.__getitem__)
        return index, self._down_until[index] - now

    def _deliver(self, batch: list[bytes]) -> None:
        body = b"\n".join(batch)
        payload = self._compress(body)
        started = time.monotonic()
        while True:
            attempt = self._next_attempt(batch, started)
            if attempt is None:
                return
            index, timeout = attempt
            if self._transport is None:
                self._transport = self._transport_factory()
            endpoint = self.settings.endpoints[index]
            outcome = self._transport.send(endpoint, payload, self._headers[index], timeout)
            if self._settle(batch, index, outcome, len(body), len(payload)):
                return

    def _next_attempt(self, batch: list[bytes], started: float) -> tuple[int, float] | None:
        """``(endpoint, timeout)`` of the next try, after any backoff; None when resolved."""
        max_elapsed = self.settings.retry_max_elapsed
        with self.buffer.cond:
            while True:
                if self._inflight is not batch:
                    return None  # abandoned by stop(): already counted
                now = time.monotonic()
                if (
                    max_elapsed is not None
                    and self._inflight_failed
                    and now - started > max_elapsed
                ):
                    self.buffer.count_drop("retry_exhausted", len(batch))
                    self._inflight = None
                    self.buffer.cond.notify_all()
                    last_error = self.counters["last_error"]
                    break
                index, wait = self._pick_endpoint(now)
                if wait > 0:
                    self._sleep(wait)
                    continue
                timeout = self.settings.timeout
                if self._deadline is not None:
                    timeout = min(timeout, self._deadline - now)
                    if timeout < _MIN_ATTEMPT:
                        self._abandon()
                        return None
                return index, timeout
        self._warn.warn(
            "exhausted",
            f"gave up a batch of {len(batch)} records after retrying for {max_elapsed:g}s "
            f"(retry_max_elapsed); last error: {last_error}",
        )
        return None

    def _sleep(self, seconds: float) -> None:
        """Back off for ``seconds`` (cond held) unless drain()/stop() asks for a try now."""
        cond = self.buffer.cond
        kick = self._kick
        stopping = self._stopping
        if stopping:
            seconds = min(seconds, _STOP_RETRY_CAP)
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            if self._kick != kick or self._stopping != stopping:
                # Someone waits for delivery: try again at once instead of sleeping it out.
                self._down_until = [0.0] * len(self._down_until)
                return
            cond.wait(remaining)

    def _settle(
        self, batch: list[bytes], index: int, outcome: Outcome, raw: int, sent: int
    ) -> bool:
        """Account for one attempt; True when the batch is resolved."""
        verdict = classify(outcome.status)
        endpoint = self.settings.endpoints[index]
        counters = self.counters
        with self.buffer.cond:
            if self._inflight is not batch:
                return True
            counters["requests"] += 1
            if verdict == "ok":
                counters["sent"] += len(batch)
                counters["bytes_raw"] += raw
                counters["bytes_sent"] += sent
                counters["consecutive_failures"] = 0
                counters["last_success"] = time.time()
                self._backoffs[index] = self._backoffs[index].reset()
                self._down_until[index] = 0.0
                self._inflight = None
                self.buffer.cond.notify_all()
                return True
            if outcome.status is None:
                error = f"{endpoint.display}: {outcome.error}"
            else:
                error = f"{endpoint.display}: HTTP {outcome.status} {outcome.body[:200]}".rstrip()
            counters["last_error"] = error
            if verdict == "reject":
                self.buffer.count_drop("rejected", len(batch))
                self._inflight = None
                self.buffer.cond.notify_all()
            else:
                counters["failed_requests"] += 1
                counters["retries"] += 1
                counters["consecutive_failures"] += 1
                self.failures += 1
                self._inflight_failed = True
                backoff = self._backoffs[index].next()
                self._backoffs[index] = backoff
                delay = backoff.delay(parse_retry_after(outcome.retry_after))
                self._down_until[index] = time.monotonic() + delay
                self.buffer.cond.notify_all()
        if verdict == "reject":
            self._warn.warn(
                f"reject:{outcome.status}",
                f"the server refused a batch of {len(batch)} records (not retryable, dropped): "
                f"{error}",
            )
            return True
        self._warn.warn("retry", f"sending failed, will retry: {error}")
        return False

    def _abandon(self) -> None:
        """Count what is in flight and buffered as dropped ("shutdown"). Hold ``cond``."""
        lost = len(self.buffer.lines)
        if self._inflight is not None:
            lost += len(self._inflight)
            self._inflight = None
        if lost:
            self.buffer.lines.clear()
            self.buffer.nbytes = 0
            self.buffer.count_drop("shutdown", lost)
        self.buffer.cond.notify_all()
