"""The bounded buffer between the callers and the worker: a deque guarded by a Condition.

Records are numbered in the order they are accepted. The buffer always holds a contiguous
run of the newest accepted numbers (appends at the right; batches and ``drop_oldest`` take
from the left), so "everything accepted up to N is resolved" is a cheap check, without a
number stored per record.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

#: Reasons a record is counted as dropped (the keys of ``stats()["dropped"]``).
DROP_REASONS = (
    "buffer_full",  # overflow="drop_oldest"/"drop_newest": the buffer was full
    "block_timeout",  # overflow="block": no room within block_timeout
    "encode_error",  # the record could not be turned into a line at all
    "rejected",  # the server refused the batch with a non-retryable status (4xx)
    "retry_exhausted",  # still failing after retry_max_elapsed seconds
    "shutdown",  # not delivered within shutdown_timeout at close/exit
    "recursion",  # logged from the sink's own worker thread (never shipped, by design)
)


#: With a batch or more waiting, callers yield the GIL at most once per this many seconds.
YIELD_INTERVAL = 0.001
#: Threads interleave when the writing thread changes SHARED_SWITCHES times within
#: SWITCH_WINDOW seconds; callers then do not yield for SHARED_HOLD seconds. (A thread that
#: logs now and then beside a busy one changes it twice per record: that is not interleaving.)
SHARED_SWITCHES = 4
SWITCH_WINDOW = 0.05
SHARED_HOLD = 0.1
#: A request running longer than this despite the yields waits for the server, not the GIL:
#: callers then yield only once per SLOW_YIELD_INTERVAL (its answer still needs the GIL).
SEND_PATIENCE = 0.1
SLOW_YIELD_INTERVAL = 0.01

#: How long a yield sleeps. What matters is that the thread really sleeps, so that the woken
#: worker takes the GIL first: Linux rounds 1 µs up to its timer slack (~70 µs in all here),
#: while ``sleep(0)`` returns at once on Python 3.10 and the worker still starves. Python 3.10
#: on Windows rounds any sleep up to a millisecond or more: there ``sleep(0)`` gives up the
#: time slice instead.
_YIELD_SLEEP = 0.0 if sys.platform == "win32" and sys.version_info < (3, 11) else 1e-6

#: ``sys._is_gil_enabled`` (3.13+); a free-threaded build may re-enable the GIL at run time.
_gil_enabled: Callable[[], bool] = getattr(sys, "_is_gil_enabled", lambda: True)


class BufferState(NamedTuple):
    """A consistent view of the buffer's counters (see :meth:`Buffer.snapshot`)."""

    received: int
    accepted: int
    buffered: int
    buffered_bytes: int
    dropped: dict[str, int]


class Buffer:
    """Bounded FIFO of encoded lines plus the counters that must change under the same lock."""

    def __init__(
        self,
        *,
        max_records: int,
        max_bytes: int,
        overflow: str,
        block_timeout: float,
        batch_size: int,
        batch_bytes: int,
    ) -> None:
        self._lock = threading.Lock()
        #: The buffer's Condition: writers and the worker wait on it. The worker keeps its own
        #: state (the batch in flight, its counters) under it too, so that a record moving from
        #: here to the worker and a ``stats()`` snapshot are each one step (docs/architecture.md).
        self.cond = threading.Condition(self._lock)
        self._lines: deque[bytes] = deque()
        self._nbytes = 0
        #: records offered to the sink (accepted or not)
        self._received = 0
        #: number of the newest accepted record (the first record is 1)
        self._accepted = 0
        self._dropped: dict[str, int] = {}
        #: monotonic time the oldest unsent record arrived (valid while records wait)
        self._oldest = 0.0
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._overflow = overflow
        self._block_timeout = block_timeout
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        # Set by the worker, read without the lock (a stale value only adds or skips one yield):
        #: True while it backs off or has no thread (it then needs no GIL)
        self.worker_resting = False
        #: monotonic time its current request started, 0.0 when it is not sending
        self.worker_sending_since = 0.0
        self._next_yield = 0.0
        self._writer = 0
        self._switches = 0
        self._switch_window_end = 0.0
        self._shared_until = 0.0

    def count_drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` dropped records; call with ``cond`` held."""
        self._dropped[reason] = self._dropped.get(reason, 0) + n

    def uncount_drop(self, reason: str, n: int) -> None:
        """``n`` records counted as dropped for ``reason`` were delivered after all (a late
        answer); call with ``cond`` held."""
        left = self._dropped.get(reason, 0) - n
        if left > 0:
            self._dropped[reason] = left
        else:
            self._dropped.pop(reason, None)

    def restore(self, lines: list[bytes], reason: str) -> int:
        """Put ``lines`` (older than anything here) back at the front, as far as the bounds
        allow; the oldest that do not fit are counted as dropped for ``reason``. Returns how
        many were dropped. Call with ``cond`` held."""
        kept = list(lines)
        room = self._max_records - len(self._lines)
        size = sum(map(len, kept))
        lost = 0
        while kept and (len(kept) > room or self._nbytes + size > self._max_bytes):
            size -= len(kept.pop(0))
            lost += 1
        if lost:
            self.count_drop(reason, lost)
        if kept:
            if not self._lines:
                self._oldest = time.monotonic()
            self._lines.extendleft(reversed(kept))
            self._nbytes += size
        return lost

    def _full(self, size: int) -> bool:
        return len(self._lines) >= self._max_records or (
            self._nbytes + size > self._max_bytes and bool(self._lines)
        )

    def put(self, line: bytes, writer: int = 0) -> str | None:
        """Append one line; returns the drop reason when a record was dropped, else None.

        ``writer`` identifies the calling thread (``threading.get_ident()``).
        """
        if writer != self._writer:
            self._writer_changed(writer)
        size = len(line)
        dropped = None
        lines = self._lines
        # The bare lock (the Condition's own) is entered faster than the Condition: hot path.
        with self._lock:
            self._received += 1
            nbytes = self._nbytes + size
            # _full() inlined for the common case (room left): this runs on every record.
            if len(lines) >= self._max_records or (nbytes > self._max_bytes and lines):
                if self._overflow == "drop_newest":
                    self.count_drop("buffer_full")
                    return "buffer_full"
                if self._overflow == "block":
                    deadline = time.monotonic() + self._block_timeout
                    while self._full(size):
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            self.count_drop("block_timeout")
                            return "block_timeout"
                        self.cond.notify_all()  # make sure the worker is sending
                        self.cond.wait(remaining)
                else:
                    while self._full(size):
                        self._nbytes -= len(self._lines.popleft())
                        self.count_drop("buffer_full")
                        dropped = "buffer_full"
                nbytes = self._nbytes + size
            lines.append(line)
            self._nbytes = nbytes
            self._accepted += 1
            n = len(lines)
            if n == 1:
                self._oldest = time.monotonic()
                self.cond.notify_all()
            elif n == self._batch_size or (nbytes >= self._batch_bytes > nbytes - size):
                # Only when a threshold is crossed: a worker busy sending re-checks the
                # buffer before it waits again, so waking it on every put would be wasted.
                self.cond.notify_all()
        if (n >= self._batch_size or nbytes >= self._batch_bytes) and not self.worker_resting:
            self._maybe_yield()
        return dropped

    # -- keeping the worker from starving ------------------------------------------------------
    #
    # A logging thread that releases the GIL for an instant more often than every 5 ms
    # (loguru stats a source file for each traceback it formats; small reads do the same)
    # takes it straight back before the worker, woken to take it, gets there: CPython hands
    # the GIL to a waiting thread only after its 5 ms switch interval, and every release
    # restarts that wait. The worker then starves for seconds and the buffer overflows. So
    # while a batch or more waits, callers sleep briefly now and then to let it run.

    def _writer_changed(self, writer: int) -> None:
        now = time.monotonic()
        self._writer = writer
        if now >= self._switch_window_end:
            self._switch_window_end = now + SWITCH_WINDOW
            self._switches = 0
        self._switches += 1
        if self._switches >= SHARED_SWITCHES:
            self._shared_until = now + SHARED_HOLD

    def _maybe_yield(self) -> None:
        now = time.monotonic()
        if now < self._next_yield:
            return
        if now < self._shared_until:
            # Threads interleave. We are inside loguru's handler lock: handing the GIL to
            # another logging thread would queue it behind that lock (measured with 2
            # threads: 20 µs per call became 30-40 µs), and threads blocking on that lock
            # give the worker its turns anyway.
            return
        started = self.worker_sending_since
        if started and now - started > SEND_PATIENCE:
            # The request waits for the server: frequent yields would not speed it up.
            self._next_yield = now + SLOW_YIELD_INTERVAL
        else:
            self._next_yield = now + YIELD_INTERVAL
        if _gil_enabled():  # a free-threaded build has no GIL to hand over
            time.sleep(_YIELD_SLEEP)

    # -- the worker's and the sink's view (call with ``cond`` held) ----------------------------

    def __len__(self) -> int:
        """Records waiting."""
        return len(self._lines)

    @property
    def nbytes(self) -> int:
        """Bytes of the records waiting."""
        return self._nbytes

    @property
    def accepted(self) -> int:
        """Number of the newest accepted record (the first record is 1)."""
        return self._accepted

    @property
    def oldest(self) -> float:
        """Monotonic time the oldest waiting record arrived (valid while records wait)."""
        return self._oldest

    def dropped_total(self) -> int:
        """Records counted as dropped so far, all reasons."""
        return sum(self._dropped.values())

    def snapshot(self) -> BufferState:
        """The counters and fill level, consistent with each other."""
        return BufferState(
            received=self._received,
            accepted=self._accepted,
            buffered=len(self._lines),
            buffered_bytes=self._nbytes,
            dropped=dict(self._dropped),
        )

    def refuse(self, reason: str) -> None:
        """A record offered to the sink but never accepted (``reason`` says why). Takes the lock."""
        with self._lock:
            self._received += 1
            self.count_drop(reason)

    def take_all(self) -> list[bytes]:
        """Every waiting record, oldest first; the buffer is empty afterwards."""
        lines = list(self._lines)
        self._lines.clear()
        self._nbytes = 0
        self.cond.notify_all()  # writers blocked by overflow="block" may go on
        return lines

    def drop_all(self, reason: str) -> int:
        """Count every waiting record as dropped for ``reason``; returns how many."""
        count = len(self.take_all())
        if count:
            self.count_drop(reason, count)
        return count

    def take(self, max_records: int, max_bytes: int) -> list[bytes]:
        """Pop a batch from the left: up to ``max_records`` lines, and ``max_bytes`` once one is in.

        Call with ``cond`` held. Writers wait for this lock, so the common case (everything
        fits) is one C-level copy rather than a Python loop per record.
        """
        lines = self._lines
        n = len(lines)
        if n <= max_records and self._nbytes + n <= max_bytes:
            batch = list(lines)
            lines.clear()
            self._nbytes = 0
        else:
            count = 0
            total = 0
            for size in map(len, itertools.islice(lines, max_records)):
                if count and total + size + 1 > max_bytes:
                    break
                total += size + 1
                count += 1
            popleft = lines.popleft
            batch = [popleft() for _ in range(count)]
            self._nbytes -= total - count
        # ``oldest`` is left as it is: what remains arrived after it, so keeping that time
        # sends the rest a little early rather than late.
        if len(lines) < self._max_records:
            self.cond.notify_all()  # writers blocked by overflow="block" may go on
        return batch

    def front_number(self) -> int:
        """Number of the oldest buffered record (``accepted + 1`` when empty)."""
        return self._accepted - len(self._lines) + 1
