"""The sink's own diagnostics: rate-limited lines on stderr, never through loguru.

Logging through loguru from the worker would re-enter the sink (loguru refuses it on the
same thread and deadlocks across threads while ``complete()`` holds the handler lock).
"""

from __future__ import annotations

import sys
import threading
import time

PREFIX = "loguru-vlogs: "


def emit(text: str) -> None:
    """Write one line to the process's real stderr; never raises."""
    # sys.__stderr__: an application that redirects sys.stderr into loguru must not get
    # our diagnostics fed back into the sink.
    stream = sys.__stderr__ or sys.stderr
    if stream is None:  # pythonw: nowhere to write
        return
    try:
        stream.write(PREFIX + text + "\n")
        stream.flush()
    except Exception:  # noqa: BLE001, S110 - a closed stderr at exit must not break the sink
        pass


class RateLimited:
    """At most one line per key every ``interval`` seconds; says how many were suppressed."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, key: str, text: str) -> bool:
        """Emit ``text`` unless ``key`` was emitted less than ``interval`` ago; True if emitted."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            text += f" ({suppressed} similar messages suppressed)"
        emit(text)
        return True
