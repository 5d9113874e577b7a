"""Buffer and worker with an in-memory transport: triggers, overflow, drain, stop, retries."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from loguru_vlogs._buffer import Buffer
from loguru_vlogs._transport import Outcome

from .helpers import FakeTransport, make_worker, wait_for


def line(i: int) -> bytes:
    return b'{"_msg":"m%d"}' % i


def make_buffer(
    max_records: int = 100,
    *,
    max_bytes: int = 10**9,
    overflow: str = "drop_oldest",
    block_timeout: float = 0,
    batch_size: int | None = None,
) -> Buffer:
    """A buffer without a worker; by default a batch is due only when it is full."""
    return Buffer(
        max_records=max_records,
        max_bytes=max_bytes,
        overflow=overflow,
        block_timeout=block_timeout,
        batch_size=max_records if batch_size is None else batch_size,
        batch_bytes=10**9,
    )


def test_a_full_batch_is_sent_without_waiting_for_the_interval() -> None:
    """batch_size records trigger a send long before flush_interval."""
    transport = FakeTransport()
    worker, buffer = make_worker(transport, batch_size=10, flush_interval=60.0)
    worker.start()
    for i in range(10):
        buffer.put(line(i))
    assert wait_for(lambda: len(transport.lines()) == 10, timeout=2.0)
    assert [line(i) for i in range(10)] == transport.lines()
    worker.stop(time.monotonic() + 1)


def test_batch_bytes_triggers_a_send() -> None:
    """Enough bytes trigger a send even below batch_size."""
    transport = FakeTransport()
    worker, buffer = make_worker(transport, batch_size=1000, batch_bytes=1024, flush_interval=60.0)
    worker.start()
    big = b'{"_msg":"' + b"x" * 600 + b'"}'
    buffer.put(big)
    buffer.put(big)
    assert wait_for(lambda: len(transport.sent) >= 1, timeout=2.0)
    worker.stop(time.monotonic() + 1)
    assert [big, big] == transport.lines()


def test_a_lone_record_goes_after_flush_interval() -> None:
    """One record waits at most flush_interval before it is sent."""
    transport = FakeTransport()
    worker, buffer = make_worker(transport, flush_interval=0.2)
    worker.start()
    started = time.monotonic()
    buffer.put(line(1))
    assert wait_for(lambda: transport.lines() == [line(1)], timeout=2.0)
    waited = time.monotonic() - started
    assert waited >= 0.15  # not sent before flush_interval (wait_for bounds the other side)
    worker.stop(time.monotonic() + 1)


def test_batches_respect_batch_size_and_order() -> None:
    """2500 records go as batches of at most batch_size, in order."""
    transport = FakeTransport()
    worker, buffer = make_worker(transport, batch_size=1000, flush_interval=0.05)
    for i in range(2500):
        buffer.put(line(i))
    worker.start()
    assert worker.drain(deadline=time.monotonic() + 5, stop_on_failure=False)
    assert [line(i) for i in range(2500)] == transport.lines()
    assert all(len(batch) <= 1000 for _, batch in transport.sent)
    worker.stop(time.monotonic() + 1)


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_overflow_drops_are_counted(policy: str) -> None:
    """A full buffer drops by policy and counts every drop as buffer_full."""
    buffer = make_buffer(5, overflow=policy)
    for i in range(8):
        buffer.put(line(i))
    assert {"buffer_full": 3} == buffer.snapshot().dropped
    kept = (
        [line(i) for i in range(3, 8)] if policy == "drop_oldest" else [line(i) for i in range(5)]
    )
    with buffer.cond:
        assert kept == buffer.take_all()


def test_buffer_bytes_bound_the_memory_too() -> None:
    """Beyond max_bytes the oldest records go, even if the record count is low."""
    buffer = make_buffer(100, max_bytes=1000)
    for _ in range(5):
        buffer.put(b"x" * 300)
    assert buffer.nbytes <= 1000
    assert 3 == len(buffer)
    assert {"buffer_full": 2} == buffer.snapshot().dropped


def test_block_policy_waits_for_room_then_gives_up_with_a_count() -> None:
    """overflow='block' waits at most block_timeout, then drops the record as block_timeout."""
    buffer = make_buffer(2, overflow="block", block_timeout=0.1)
    buffer.put(line(1))
    buffer.put(line(2))
    started = time.monotonic()
    assert "block_timeout" == buffer.put(line(3))
    assert 0.08 <= time.monotonic() - started < 5.0  # waited block_timeout, then gave up
    assert {"block_timeout": 1} == buffer.snapshot().dropped


def test_block_policy_resumes_when_the_worker_makes_room() -> None:
    """A blocked writer continues as soon as a batch leaves the buffer."""
    transport = FakeTransport()
    worker, buffer = make_worker(
        transport,
        buffer_size=10,
        batch_size=10,
        overflow="block",
        block_timeout=5.0,
        flush_interval=0.01,
    )
    worker.start()
    for i in range(100):
        assert buffer.put(line(i)) is None
    assert worker.drain(deadline=time.monotonic() + 5, stop_on_failure=False)
    assert [line(i) for i in range(100)] == transport.lines()
    worker.stop(time.monotonic() + 1)


def test_retryable_failures_are_retried_until_accepted() -> None:
    """503, 429 and connection errors are retried; the batch arrives once."""
    transport = FakeTransport(
        [
            Outcome(status=503),
            Outcome(status=None, error="refused"),
            Outcome(status=429, retry_after="0"),
        ]
    )
    worker, buffer = make_worker(
        transport, backoff_base=0.01, backoff_max=0.02, flush_interval=0.01
    )
    worker.start()
    buffer.put(line(1))
    assert wait_for(lambda: transport.lines() == [line(1)], timeout=5.0)
    assert 3 == worker.counters["retries"]
    assert 0 == worker.counters["consecutive_failures"]
    worker.stop(time.monotonic() + 1)


def test_a_rejected_batch_is_dropped_and_counted_and_the_sink_goes_on() -> None:
    """A 400 drops that batch (reason 'rejected'); the next batch is sent."""
    transport = FakeTransport([Outcome(status=400, body="bad tenant")])
    worker, buffer = make_worker(transport, batch_size=2, flush_interval=0.01)
    worker.start()
    buffer.put(line(1))
    buffer.put(line(2))
    assert worker.drain(deadline=time.monotonic() + 5, stop_on_failure=False)
    buffer.put(line(3))
    assert worker.drain(deadline=time.monotonic() + 5, stop_on_failure=False)
    assert {"rejected": 2} == buffer.snapshot().dropped
    assert [line(3)] == transport.lines()
    assert "HTTP 400 bad tenant" in worker.counters["last_error"]
    worker.stop(time.monotonic() + 1)


def test_drain_returns_on_failure_when_asked() -> None:
    """complete() semantics: a failed attempt ends the wait; the records stay buffered."""
    transport = FakeTransport([Outcome(status=None, error="refused")] * 50)
    worker, buffer = make_worker(transport, backoff_base=30.0, backoff_max=30.0)
    worker.start()
    buffer.put(line(1))
    started = time.monotonic()
    assert not worker.drain(deadline=time.monotonic() + 30, stop_on_failure=True)
    assert time.monotonic() - started < 10.0  # not the deadline, not the backoff
    with buffer.cond:
        assert not worker.drained(buffer.accepted)
    worker.stop(time.monotonic() + 0.2)


def test_drain_interrupts_a_long_backoff() -> None:
    """A drain after a failure retries at once instead of sleeping out the backoff."""
    transport = FakeTransport([Outcome(status=503)])
    worker, buffer = make_worker(
        transport, backoff_base=30.0, backoff_max=30.0, flush_interval=0.01
    )
    worker.start()
    buffer.put(line(1))
    assert wait_for(lambda: transport.attempts == 1, timeout=2.0)
    started = time.monotonic()
    assert worker.drain(deadline=time.monotonic() + 30, stop_on_failure=False)
    assert time.monotonic() - started < 10.0  # the 30 s backoff was cut short
    worker.stop(time.monotonic() + 1)


def test_stop_delivers_everything_buffered() -> None:
    """stop() sends what is left, even below every trigger."""
    transport = FakeTransport()
    worker, buffer = make_worker(transport, flush_interval=60.0)
    worker.start()
    for i in range(7):
        buffer.put(line(i))
    worker.stop(time.monotonic() + 2)
    assert [line(i) for i in range(7)] == transport.lines()
    assert not worker.alive()


def test_stop_with_a_dead_server_ends_at_the_deadline_and_counts_the_rest() -> None:
    """With every attempt failing, stop() returns by its deadline; the rest is 'shutdown'."""
    transport = FakeTransport([Outcome(status=None, error="refused")] * 10_000)
    worker, buffer = make_worker(transport, backoff_base=0.01, backoff_max=0.05)
    worker.start()
    for i in range(30):
        buffer.put(line(i))
    started = time.monotonic()
    worker.stop(started + 0.5)
    assert time.monotonic() - started < 0.5 + 3.0  # the deadline, not endless retries
    assert {"shutdown": 30} == buffer.snapshot().dropped


def test_stop_does_not_wait_for_a_hung_request_past_the_deadline() -> None:
    """A server that never answers cannot hold stop() past its deadline."""
    transport = FakeTransport()
    transport.gate.clear()
    worker, buffer = make_worker(transport, flush_interval=0.01, timeout=30.0)
    worker.start()
    buffer.put(line(1))
    assert transport.entered.wait(2.0)
    started = time.monotonic()
    worker.stop(started + 0.3)
    assert time.monotonic() - started < 0.3 + 3.0  # the deadline, not the 30 s timeout
    assert {"shutdown": 1} == buffer.snapshot().dropped
    transport.gate.set()


def test_stop_without_a_thread_delivers_inline() -> None:
    """When no worker thread runs (fork child, exit), stop() sends on the caller's thread."""
    transport = FakeTransport()
    worker, buffer = make_worker(transport)
    buffer.put(line(1))
    worker.stop(time.monotonic() + 2)
    assert [line(1)] == transport.lines()


def test_failed_endpoint_is_skipped_while_others_carry_the_load() -> None:
    """With two endpoints, a failure on one sends the batch to the other at once."""
    transport = FakeTransport([Outcome(status=None, error="refused")])
    worker, buffer = make_worker(
        transport,
        url=["http://a:1", "http://b:1"],
        backoff_base=30.0,
        backoff_max=30.0,
        flush_interval=0.01,
    )
    worker.start()
    buffer.put(line(1))
    assert wait_for(lambda: transport.lines() == [line(1)], timeout=2.0)
    assert "http://b:1" == transport.sent[0][0]
    worker.stop(time.monotonic() + 1)


def test_concurrent_writers_lose_nothing() -> None:
    """8 threads x 2000 records: everything accepted is sent exactly once."""
    transport = FakeTransport()
    worker, buffer = make_worker(transport, batch_size=500, flush_interval=0.01)
    worker.start()

    def produce(t: int) -> None:
        for i in range(2000):
            buffer.put(b"%d-%d" % (t, i))

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert worker.drain(deadline=time.monotonic() + 10, stop_on_failure=False)
    lines = transport.lines()
    assert 16000 == len(lines)
    assert 16000 == len(set(lines))
    worker.stop(time.monotonic() + 1)


def test_take_respects_the_byte_limit_and_keeps_the_rest() -> None:
    """A batch holds at least one line and never more than max_bytes (newlines counted)."""
    buffer = make_buffer(100)
    for i in range(5):
        buffer.put(b"%d" % i + b"x" * 599)
    with buffer.cond:
        first = buffer.take(1000, 1300)
        assert [600, 600] == [len(x) for x in first]
        assert 3 * 600 == buffer.nbytes
        rest = buffer.take(1000, 10**6)
    assert [b"2", b"3", b"4"] == [x[:1] for x in rest]
    assert (0, 0) == (buffer.nbytes, len(buffer))


def test_take_gives_one_oversize_line_alone() -> None:
    """A line bigger than max_bytes still leaves, alone."""
    buffer = make_buffer(100)
    buffer.put(b"y" * 5000)
    buffer.put(b"z")
    with buffer.cond:
        assert [b"y" * 5000] == buffer.take(10, 1024)
        assert [b"z"] == buffer.take(10, 1024)


class FakeClock:
    """Stands in for the ``time`` module of ``loguru_vlogs._buffer``: a settable clock, and
    ``sleep`` records its argument instead of sleeping."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    from loguru_vlogs import _buffer

    fake = FakeClock()
    monkeypatch.setattr(_buffer, "time", fake)  # this module's name only, not the real module
    return fake


def test_callers_a_batch_ahead_yield_the_gil_at_most_once_per_interval(clock: FakeClock) -> None:
    """With a batch or more waiting, put() sleeps briefly at most once per YIELD_INTERVAL;
    not with less than a batch, not while the worker backs off."""
    from loguru_vlogs import _buffer

    buffer = make_buffer(1000, batch_size=10)
    for i in range(9):
        buffer.put(line(i))
    assert [] == clock.sleeps  # less than a batch: the worker is not behind
    buffer.put(line(9))
    assert [_buffer._YIELD_SLEEP] == clock.sleeps
    buffer.put(line(10))
    assert 1 == len(clock.sleeps)  # same instant: within the interval
    clock.now += _buffer.YIELD_INTERVAL
    buffer.put(line(11))
    assert 2 == len(clock.sleeps)
    buffer.worker_resting = True  # backing off: it needs no GIL
    clock.now += 1.0
    buffer.put(line(12))
    assert 2 == len(clock.sleeps)
    assert 13 == len(buffer)


def test_batch_bytes_waiting_count_as_a_batch(clock: FakeClock) -> None:
    """Large records: batch_bytes fills before batch_size, and that is a batch waiting too."""
    buffer = Buffer(
        max_records=1000,
        max_bytes=10**9,
        overflow="drop_oldest",
        block_timeout=0,
        batch_size=500,
        batch_bytes=1024,
    )
    buffer.put(b"x" * 1000)
    assert [] == clock.sleeps
    buffer.put(b"x" * 100)
    assert 1 == len(clock.sleeps)


def test_interleaving_threads_stop_the_yields_and_a_lone_extra_record_does_not(
    clock: FakeClock,
) -> None:
    """Threads taking turns (SHARED_SWITCHES changes of writer within SWITCH_WINDOW) stop the
    yields for SHARED_HOLD: we would hand the GIL to a thread that then queues behind
    loguru's handler lock. A record now and then from a second thread changes nothing."""
    from loguru_vlogs import _buffer

    buffer = make_buffer(1000, batch_size=1)
    step = _buffer.YIELD_INTERVAL
    buffer.put(line(0), writer=1)  # the first writer: no interleaving yet
    assert 1 == len(clock.sleeps)
    for i in range(3):  # a heartbeat thread logs once per window beside the busy one
        clock.now += _buffer.SWITCH_WINDOW
        buffer.put(line(i), writer=2)
        buffer.put(line(i), writer=1)
    assert 1 + 3 == len(clock.sleeps)  # one yield per put past the interval: still yielding
    clock.now += _buffer.SWITCH_WINDOW
    for writer in (2, 1, 2, 1):  # now they interleave
        clock.now += step
        buffer.put(line(0), writer=writer)
    yields = len(clock.sleeps)
    clock.now += _buffer.SHARED_HOLD / 2
    buffer.put(line(0), writer=1)
    assert yields == len(clock.sleeps)
    clock.now += _buffer.SHARED_HOLD
    buffer.put(line(0), writer=1)  # one writer again for SHARED_HOLD
    assert yields + 1 == len(clock.sleeps)


def test_a_request_waiting_for_the_server_slows_the_yields_down(clock: FakeClock) -> None:
    """Past SEND_PATIENCE in one request, the worker waits for the server, not for the GIL:
    one yield per SLOW_YIELD_INTERVAL then (enough for it to read the answer)."""
    from loguru_vlogs import _buffer

    buffer = make_buffer(1000, batch_size=1)
    buffer.worker_sending_since = clock.now
    buffer.put(line(0))
    assert 1 == len(clock.sleeps)  # a request just started: it may need the GIL
    clock.now += _buffer.SEND_PATIENCE + _buffer.YIELD_INTERVAL
    buffer.put(line(1))
    assert 2 == len(clock.sleeps)
    slow = clock.now + _buffer.SLOW_YIELD_INTERVAL
    while clock.now + _buffer.YIELD_INTERVAL < slow:
        clock.now += _buffer.YIELD_INTERVAL
        buffer.put(line(2))
    assert 2 == len(clock.sleeps)  # a whole slow interval without a yield
    clock.now = slow
    buffer.put(line(3))
    assert 3 == len(clock.sleeps)
    buffer.worker_sending_since = 0.0  # the answer came: back to one per YIELD_INTERVAL
    clock.now += _buffer.YIELD_INTERVAL
    buffer.put(line(4))
    assert 3 == len(clock.sleeps)  # still inside the slow interval set by the last yield
    clock.now += _buffer.SLOW_YIELD_INTERVAL
    buffer.put(line(5))
    clock.now += _buffer.YIELD_INTERVAL
    buffer.put(line(6))
    assert 5 == len(clock.sleeps)


def test_without_a_gil_callers_do_not_yield(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A free-threaded build (sys._is_gil_enabled() is False) has no GIL to hand over."""
    from loguru_vlogs import _buffer

    monkeypatch.setattr(_buffer, "_gil_enabled", lambda: False)
    buffer = make_buffer(1000, batch_size=10)
    for i in range(50):
        clock.now += _buffer.YIELD_INTERVAL
        buffer.put(line(i))
    assert [] == clock.sleeps
    monkeypatch.setattr(_buffer, "_gil_enabled", lambda: True)
    clock.now += _buffer.YIELD_INTERVAL
    buffer.put(line(50))
    assert 1 == len(clock.sleeps)


def test_the_worker_rests_while_backing_off_and_when_its_thread_ends() -> None:
    """worker_resting (callers then skip yielding) is set during a backoff and once the
    thread is gone; worker_sending_since is set during a request only."""
    transport = FakeTransport([Outcome(status=503)])
    worker, buffer = make_worker(
        transport, backoff_base=30.0, backoff_max=30.0, flush_interval=0.01
    )
    seen_sending: list[float] = []
    send = transport.send

    def spying_send(*args: Any) -> Outcome:
        seen_sending.append(buffer.worker_sending_since)
        return send(*args)

    transport.send = spying_send  # type: ignore[method-assign]
    worker.start()
    assert not buffer.worker_resting
    buffer.put(line(1))
    assert wait_for(lambda: buffer.worker_resting, timeout=2.0)
    assert 1 == transport.attempts
    assert 0.0 == buffer.worker_sending_since
    assert worker.drain(deadline=time.monotonic() + 5, stop_on_failure=False)
    assert 2 == transport.attempts
    assert all(since > 0 for since in seen_sending)
    assert 0.0 == buffer.worker_sending_since
    worker.stop(time.monotonic() + 1)
    assert buffer.worker_resting
