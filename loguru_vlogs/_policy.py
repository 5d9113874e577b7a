"""The delivery policy as plain values: what to do next with a batch, and which endpoint.

Pure code, in the spirit of OpenTelemetry's ``BatchExportStrategy`` and urllib3's ``Retry``:
the worker thread describes where it stands (:class:`Situation`), :meth:`DeliveryPolicy.decide`
answers with a :class:`Decision`, and the thread carries it out. Endpoint health is a value
too (:class:`Endpoints`). Nothing here locks, sleeps, or touches a socket or a file, so every
rule is tested without threads (``tests/test_policy.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

#: While stopping, a failing endpoint is retried at least this often (seconds), so a server
#: that comes back during the shutdown budget still gets the records.
STOP_RETRY_CAP = 0.5
#: An attempt with less time than this left before the deadline is not worth starting.
MIN_ATTEMPT = 0.05


class Action(enum.Enum):
    """What the worker does next with the batch in hand."""

    #: POST the batch to ``Decision.endpoint`` with ``Decision.seconds`` as its timeout.
    SEND = "send"
    #: Back off for ``Decision.seconds`` (a ``drain()`` or ``stop()`` may cut it short).
    WAIT = "wait"
    #: Stopping while every endpoint fails: the batch and everything buffered go to the spool,
    #: and the worker is done.
    SPILL_ALL = "spill_all"
    #: The batch from memory goes to the spool (it gave up, or memory piles up).
    SPILL_BATCH = "spill_batch"
    #: Sending a spooled batch while memory piles up: move one memory batch to the spool,
    #: then decide again.
    SPILL_MEMORY = "spill_memory"
    #: ``retry_max_elapsed`` has passed without a spool: the batch is dropped, counted.
    GIVE_UP = "give_up"
    #: The deadline leaves no time for another attempt: stop trying this batch.
    ABANDON = "abandon"


@dataclass(frozen=True)
class Decision:
    action: Action
    #: endpoint index for SEND
    endpoint: int = -1
    #: the request timeout for SEND, the backoff for WAIT (seconds)
    seconds: float = 0.0


@dataclass(frozen=True)
class Situation:
    """Where the worker stands with one batch (all times are ``time.monotonic()`` seconds)."""

    now: float
    #: when the first attempt of this batch started
    started: float
    #: an attempt of this batch has failed
    failed: bool
    #: the batch came from the spool (it is there already: it is never spilled again)
    from_spool: bool
    #: records in the batch and waiting in memory besides it
    batch_records: int
    buffered: int
    #: the endpoint to use and how long until it is healthy (0: now), from :class:`Endpoints`
    endpoint: int
    endpoint_wait: float
    #: the sink is stopping (remove(), close(), exit), with this deadline
    stopping: bool = False
    deadline: float | None = None
    #: a spool is open
    spool: bool = False


@dataclass(frozen=True)
class DeliveryPolicy:
    """The rules for one batch, from the sink's options (docs/delivery.md)."""

    #: ``timeout``: seconds for one request
    timeout: float
    #: ``retry_max_elapsed``: give a failing batch up (or spool it) after this many seconds
    retry_max_elapsed: float | None = None
    #: ``spool_threshold``: with a spool, records waiting in memory that start spilling
    spool_threshold: int = 1
    min_attempt: float = MIN_ATTEMPT

    def decide(self, s: Situation) -> Decision:  # noqa: PLR0911 - one rule per answer, in order
        """The next step for the batch, by the first rule that applies."""
        limit = self.retry_max_elapsed
        exhausted = (
            not s.from_spool and limit is not None and s.failed and s.now - s.started > limit
        )
        down = s.endpoint_wait > 0
        if down and s.stopping and s.spool:
            return Decision(Action.SPILL_ALL)
        if (
            not s.from_spool
            and s.spool
            and (exhausted or (down and s.buffered + s.batch_records >= self.spool_threshold))
        ):
            return Decision(Action.SPILL_BATCH)
        if s.from_spool and down and s.spool and s.buffered >= self.spool_threshold:
            return Decision(Action.SPILL_MEMORY)
        if exhausted:
            return Decision(Action.GIVE_UP)
        if down:
            wait = s.endpoint_wait
            if not s.from_spool and limit is not None and s.failed:
                # Give up on time: a long backoff or Retry-After must not overshoot it.
                wait = min(wait, max(0.0, s.started + limit - s.now) + 0.001)
            if s.stopping:
                wait = min(wait, STOP_RETRY_CAP)
            return Decision(Action.WAIT, seconds=wait)
        timeout = self.timeout
        if s.deadline is not None:
            timeout = min(timeout, s.deadline - s.now)
            if timeout < self.min_attempt:
                return Decision(Action.ABANDON)
        return Decision(Action.SEND, endpoint=s.endpoint, seconds=timeout)


@dataclass(frozen=True)
class Endpoints:
    """Health of the endpoints: round robin over those not backing off.

    ``down_until[i]`` is the monotonic time endpoint ``i`` may be tried again (0: healthy).
    """

    down_until: tuple[float, ...]
    next_index: int = 0

    @classmethod
    def healthy(cls, count: int) -> Endpoints:
        return cls((0.0,) * count)

    def pick(self, now: float) -> tuple[int, float, Endpoints]:
        """``(index, seconds to wait first, the state after the pick)``."""
        count = len(self.down_until)
        for step in range(count):
            index = (self.next_index + step) % count
            if self.down_until[index] <= now:
                return index, 0.0, replace(self, next_index=(index + 1) % count)
        index = min(range(count), key=self.down_until.__getitem__)
        return index, self.down_until[index] - now, self

    def failed(self, index: int, until: float) -> Endpoints:
        """Endpoint ``index`` failed: out of rotation until ``until``."""
        down = list(self.down_until)
        down[index] = until
        return replace(self, down_until=tuple(down))

    def succeeded(self, index: int) -> Endpoints:
        """Endpoint ``index`` answered: back in rotation."""
        if self.down_until[index] == 0.0:
            return self
        return self.failed(index, 0.0)

    def all_healthy(self) -> Endpoints:
        """Everyone may be tried now (a ``drain()`` asks for a try at once)."""
        return replace(self, down_until=(0.0,) * len(self.down_until))

    def failover_delay(self, delay: float, backoff_base: float) -> float:
        """With other endpoints to carry the load, a failed one stays out of rotation for at
        least ``backoff_base`` (full jitter alone may retry it almost at once)."""
        return max(delay, backoff_base) if len(self.down_until) > 1 else delay
