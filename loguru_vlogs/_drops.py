"""``on_drop``: the application hears about lost records, aggregated and off the logging path.

Every drop is counted by the buffer under its lock (``stats()["dropped"]``). The reporter
remembers how many of each reason the callback has been told about and tells it the
difference: ``on_drop(reason, count)``, once per reason with new drops, at most once per
:data:`REPORT_INTERVAL`, from the worker thread (and a last time when the engine stops, from
the thread that stops it). A logging call never runs the callback, and nothing the callback
raises reaches the worker: it is said on stderr (rate limited) and the worker goes on.

A record the callback logs into the same front is made on the worker thread: it is counted as
``recursion`` like any such record, but not reported back to the callback (no feedback loop).

The reporter's state is guarded by the buffer's Condition (the worker's lock); the callback
runs without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ._buffer import Buffer
from ._diag import RateLimited

#: Seconds between two reports (drops in between are added up).
REPORT_INTERVAL = 1.0

#: ``on_drop(reason, count)``: ``count`` records were dropped for ``reason`` since the last call.
DropCallback = Callable[[str, int], object]


class DropReporter:
    """Tells ``callback`` about new drops by reason; does nothing without one."""

    def __init__(
        self, callback: DropCallback | None, warnings: RateLimited, interval: float | None = None
    ) -> None:
        self.callback = callback
        #: seconds between two reports (default :data:`REPORT_INTERVAL`)
        self.interval = REPORT_INTERVAL if interval is None else interval
        self._warn = warnings
        #: per reason, the drops the callback was told about (or never will be)
        self._reported: dict[str, int] = {}
        self._reported_total = 0
        self._next = 0.0
        #: True while the callback runs on the worker thread
        self.calling = False

    def wait_time(self, buffer: Buffer) -> float | None:
        """Seconds until a report is due (0: now), or None when there is nothing to report
        (Condition held)."""
        if self.callback is None or buffer.dropped_total() == self._reported_total:
            return None
        return max(0.0, self._next - time.monotonic())

    def callback_logged(self) -> None:
        """A record the callback made on the worker thread was refused (``recursion``): it is
        no news for the callback (Condition held)."""
        self._reported["recursion"] = self._reported.get("recursion", 0) + 1
        self._reported_total += 1

    def take(self, dropped: Mapping[str, int], now: float) -> dict[str, int]:
        """The new drops per reason since the last report, from now on counted as reported.

        ``dropped`` is the buffer's counters (Condition held).
        """
        new = {}
        for reason, count in dropped.items():
            delta = count - self._reported.get(reason, 0)
            if delta > 0:
                new[reason] = delta
        # A late answer can lower a count (``shutdown`` becomes ``sent``): follow it down.
        self._reported = dict(dropped)
        self._reported_total = sum(dropped.values())
        self._next = now + self.interval
        return new

    def tell(self, new: Mapping[str, int], *, on_worker: bool) -> None:
        """Call the callback once per reason (Condition NOT held); never raises."""
        callback = self.callback
        if callback is None or not new:
            return
        self.calling = on_worker
        try:
            for reason, count in new.items():
                try:
                    callback(reason, count)
                except Exception as exc:  # noqa: BLE001 - the application's code must not stop the worker
                    self._warn.warn("on_drop", f"on_drop({reason!r}, {count}) raised {exc!r}")
        finally:
            self.calling = False
