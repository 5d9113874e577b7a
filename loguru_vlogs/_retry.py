"""Retry policy as data: which outcomes are retried and how long to wait before the next try.

Pure code: no threads, no sockets, so every rule is tested directly.
"""

from __future__ import annotations

import email.utils
import enum
import random
import time
from dataclasses import dataclass, replace

from ._explain import misrouted

#: Statuses that mean "the request is wrong or not allowed": resending the same batch cannot
#: help, so the batch is dropped (counted) and the sink keeps working.
NOT_RETRYABLE = frozenset({400, 401, 403, 411, 413, 414, 415, 422})

#: Longest wait a ``Retry-After`` header may impose (seconds): a buggy proxy answering
#: ``Retry-After: 86400`` must not park the sink for a day.
MAX_RETRY_AFTER = 300.0


class Verdict(enum.Enum):
    """What one attempt means for its batch."""

    #: stored (a 2xx): the batch is done
    OK = "ok"
    #: no answer, 408, 429 or 5xx: try again after a backoff
    RETRY = "retry"
    #: the request itself is wrong (see NOT_RETRYABLE): resending cannot help
    REJECT = "reject"
    #: the batch was given up (stop()'s deadline) while the attempt ran: already counted
    ABANDONED = "abandoned"


def classify(status: int | None, body: str = "") -> Verdict:
    """The verdict for an answer (``status`` None: no answer at all).

    An answer that shows the URL does not lead to VictoriaLogs' insert API (``misrouted``:
    a wrong path, an HTML page, a redirect, TLS spoken on the other side) is a configuration
    mistake, not a bad batch: the batch is kept and retried, so fixing the URL or the proxy
    loses nothing (a 200 with an HTML page too: VictoriaLogs stored nothing).
    """
    if status is None or misrouted(status, body) is not None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.OK
    if status in NOT_RETRYABLE:
        return Verdict.REJECT
    if status == 429 or status >= 500 or status == 408:
        return Verdict.RETRY
    # Other 4xx: the request is wrong for this server: not retryable.
    return Verdict.REJECT


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    seconds: float
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        seconds = parsed.timestamp() - current
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter; ``attempt`` is the number of failures so far."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0

    def next(self) -> Backoff:
        """The policy after one more failure."""
        return replace(self, attempt=self.attempt + 1)

    def reset(self) -> Backoff:
        """The policy after a success."""
        return replace(self, attempt=0)

    def ceiling(self) -> float:
        """Upper bound of the next wait (no jitter)."""
        if self.attempt <= 0:
            return 0.0
        # Cap the exponent: 2**1000 would overflow the float before min() applies.
        return min(self.cap, self.base * 2.0 ** min(self.attempt - 1, 62))

    def delay(self, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next try: full jitter over [0, ceiling], at least ``retry_after``."""
        jittered: float = (rng or random).uniform(0, self.ceiling())
        if retry_after is not None:
            return max(retry_after, jittered)
        return jittered
