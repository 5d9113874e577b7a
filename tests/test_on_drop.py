"""on_drop: the application hears about every lost record, by reason, added up, never from a
logging call, and nothing it does stops the worker."""

from __future__ import annotations

import pickle
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs._diag import RateLimited
from loguru_vlogs._drops import DropReporter
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import closed_port_url, fast_sink, wait_for


class Calls:
    """A thread-safe on_drop that remembers (reason, count, thread name) per call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int, str]] = []

    def __call__(self, reason: str, count: int) -> None:
        with self.lock:
            self.calls.append((reason, count, threading.current_thread().name))

    def totals(self) -> dict[str, int]:
        with self.lock:
            totals: Counter[str] = Counter()
            for reason, count, _thread in self.calls:
                totals[reason] += count
            return dict(totals)


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as fake:
        yield fake


# -- the reporter: pure ---------------------------------------------------------------------------


def test_the_reporter_tells_what_is_new_per_reason() -> None:
    """take() gives the growth of each reason since the last take, then nothing."""
    reporter = DropReporter(lambda _r, _n: None, RateLimited(3600), interval=10.0)
    assert {"buffer_full": 3} == reporter.take({"buffer_full": 3}, now=0.0)
    assert {} == reporter.take({"buffer_full": 3}, now=1.0)
    assert {"buffer_full": 2, "rejected": 1} == reporter.take(
        {"buffer_full": 5, "rejected": 1}, now=2.0
    )


def test_a_count_that_goes_down_is_followed_not_reported() -> None:
    """A late answer turns shutdown drops into sent: the next growth is counted from there."""
    reporter = DropReporter(lambda _r, _n: None, RateLimited(3600))
    reporter.take({"shutdown": 10}, now=0.0)
    assert {} == reporter.take({"shutdown": 4}, now=1.0)
    assert {"shutdown": 1} == reporter.take({"shutdown": 5}, now=2.0)


def test_without_a_callback_nothing_is_ever_due() -> None:
    """No on_drop: the worker never wakes up for it."""
    from loguru_vlogs._buffer import Buffer

    buffer = Buffer(
        max_records=10,
        max_bytes=1 << 20,
        overflow="drop_newest",
        block_timeout=0.0,
        batch_size=10,
        batch_bytes=1 << 20,
    )
    buffer.refuse("encode_error")
    with buffer.cond:
        assert DropReporter(None, RateLimited(3600)).wait_time(buffer) is None
        reporter = DropReporter(lambda _r, _n: None, RateLimited(3600))
        assert 0.0 == reporter.wait_time(buffer)


def test_what_the_callback_raises_goes_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """tell() never raises: each failing call is said on stderr, the other reasons still told."""
    told: list[str] = []

    def on_drop(reason: str, count: int) -> None:
        told.append(reason)
        raise RuntimeError("metrics backend down")

    DropReporter(on_drop, RateLimited(0.0)).tell({"a": 1, "b": 2}, on_worker=True)
    assert ["a", "b"] == told
    err = capfd.readouterr().err
    assert "on_drop('a', 1) raised RuntimeError('metrics backend down')" in err


# -- through a sink ----------------------------------------------------------------------------


def overflowing_sink(calls: Calls) -> VLogsSink:
    """Server away, room for 5 in memory and 5 in flight, drop_newest, drops told to calls."""
    return fast_sink(
        closed_port_url(),
        buffer_size=5,
        batch_size=5,
        overflow="drop_newest",
        warn_interval=3600.0,
        on_drop=calls,
    )


def test_drops_are_told_by_reason_and_add_up_to_stats() -> None:
    """Server away, buffer of 5, drop_newest: every drop reaches on_drop, by reason, and the
    totals equal stats()["dropped"] once the sink is closed (the last report)."""
    calls = Calls()
    sink = overflowing_sink(calls)
    for i in range(20):
        sink.write(f"r{i}")
    sink.close(timeout=0.1)
    dropped = sink.stats()["dropped"]
    assert {"buffer_full", "shutdown"} == set(dropped)
    assert 20 == sum(dropped.values())
    assert dropped == calls.totals()


def test_on_drop_runs_on_the_worker_thread_never_in_the_logging_call() -> None:
    """The first drops are told within moments, from the worker (the logging thread never
    runs the callback)."""
    calls = Calls()
    sink = overflowing_sink(calls)
    try:
        for i in range(20):  # 5 in flight, 5 buffered, the rest dropped
            sink.write(f"r{i}")
        assert wait_for(lambda: calls.totals().get("buffer_full", 0) >= 1, timeout=5)
        assert {"loguru-vlogs-worker"} == {thread for _r, _n, thread in calls.calls}
    finally:
        sink.close(timeout=0.1)


def test_a_failing_callback_does_not_stop_delivery(
    server: FakeVictoriaLogs, capfd: pytest.CaptureFixture[str]
) -> None:
    """on_drop raises: stderr says so, and the sink goes on delivering."""

    def on_drop(_reason: str, _count: int) -> None:
        raise ValueError("nope")

    sink = fast_sink(server.url, on_drop=on_drop, warn_interval=0.0)

    class Broken:
        repairs: dict[str, int] = {}  # noqa: RUF012 - a test double

        def encode(self, *_args: Any) -> bytes:
            raise RuntimeError("cannot encode")

    good = sink._encoder
    sink._encoder = Broken()  # type: ignore[assignment]
    sink.write("lost")
    sink._encoder = good
    assert wait_for(lambda: "on_drop('encode_error', 1) raised" in capfd.readouterr().err, 5)
    sink.write("kept")
    assert sink.drain(timeout=5)
    assert ["kept"] == [r["_msg"] for r in server.rows()]
    sink.close()


def test_records_the_callback_logs_into_the_sink_are_not_reported_back(
    server: FakeVictoriaLogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An on_drop that logs through loguru into the same sink (on the worker thread): those
    records are counted as recursion, but the callback is never told about them (no loop)."""
    monkeypatch.setattr("loguru_vlogs._drops.REPORT_INTERVAL", 0.01)
    told: list[tuple[str, int]] = []

    def on_drop(reason: str, count: int) -> None:
        told.append((reason, count))
        logger.warning("dropped {} records ({})", count, reason)

    sink = fast_sink(server.url, on_drop=on_drop, warn_interval=3600.0)
    logger.add(sink, format="{message}", catch=False)
    sink.write("first")  # starts the worker
    sink._engine.encode_failed(RuntimeError("one drop"))
    assert wait_for(lambda: sink.stats()["dropped"].get("recursion", 0) >= 1, timeout=5)
    assert sink.drain(timeout=5)
    # Ten report intervals: a loop would tell "recursion" again and again.
    wait_for(lambda: False, timeout=0.1)
    assert [("encode_error", 1)] == told
    logger.remove()


def test_a_picklable_callback_travels_with_the_sink_a_lambda_stays_behind() -> None:
    """Pickling (spawn) keeps a module-level on_drop; a lambda is left out of the copy."""
    sink = VLogsSink(closed_port_url(), on_drop=print)
    copy = pickle.loads(pickle.dumps(sink))
    assert print is copy.settings.on_drop
    sink2 = VLogsSink(closed_port_url(), on_drop=lambda _r, _n: None)
    copy2 = pickle.loads(pickle.dumps(sink2))
    assert copy2.settings.on_drop is None
    for s in (sink, copy, sink2, copy2):
        s.close()
