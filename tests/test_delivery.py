"""Delivery through outages: every record logged is delivered or counted as dropped."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs.testing import FakeVictoriaLogs

from . import helpers
from .helpers import wait_for
from .proxy import FaultProxy


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as srv:
        yield srv


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def fast_sink(url: Any, **kwargs: Any) -> VLogsSink:
    """Short timeouts and backoff so outages resolve within the test's time bound."""
    options: dict[str, Any] = {
        "flush_interval": 0.05,
        "backoff_max": 0.2,
        "timeout": 1.0,
        "batch_size": 50,
        "shutdown_timeout": 5.0,
    }
    return helpers.fast_sink(url, **{**options, **kwargs})


def log_numbered(n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        logger.bind(i=i).info("record {}", i)


def delivered(server: FakeVictoriaLogs) -> Counter[int]:
    """How many times each record number was stored."""
    return Counter(int(r["i"]) for r in server.rows(limit=10**6))


def assert_accounted(
    sink: VLogsSink, server: FakeVictoriaLogs, logged: int, *, max_dups: int = 0
) -> None:
    """Delivered (distinct) + counted as dropped == logged; duplicates bounded."""
    stored = delivered(server)
    stats = sink.stats()
    assert logged == len(stored) + stats["dropped_total"], (stats, len(stored))
    assert sum(stored.values()) - len(stored) <= max_dups


def test_server_down_at_start_then_up(server: FakeVictoriaLogs) -> None:
    """Records logged while the server is unreachable arrive once it is back."""
    with FaultProxy(port_of(server.url), mode="refuse") as proxy:
        sink = fast_sink(proxy.url)
        logger.add(sink)
        log_numbered(200)
        assert wait_for(lambda: sink.stats()["failed_requests"] >= 2, timeout=5)
        proxy.mode = "pass"
        assert sink.drain(timeout=10)
        assert_accounted(sink, server, 200)
        assert 0 == sink.stats()["dropped_total"]


@pytest.mark.slow
def test_server_restarting_in_the_middle_of_a_stream(server: FakeVictoriaLogs) -> None:
    """Connections dropped and refused mid-stream: nothing lost, duplicates rare."""
    with FaultProxy(port_of(server.url)) as proxy:
        sink = fast_sink(proxy.url)
        logger.add(sink)
        for round_ in range(6):
            log_numbered(300, start=round_ * 300)
            if round_ in (2, 4):
                proxy.mode = "refuse"
                proxy.drop_all()
                time.sleep(0.2)  # the outage itself, not synchronisation
                proxy.mode = "pass"
        assert sink.drain(timeout=15)
        assert_accounted(sink, server, 1800, max_dups=100)


@pytest.mark.slow
def test_429_with_retry_after_is_honoured(server: FakeVictoriaLogs) -> None:
    """A 429 with Retry-After: 1 delays the retry by about a second, then it is stored."""
    server.fail_next(1, status=429, retry_after=1)
    sink = fast_sink(server.url, flush_interval=60)
    logger.add(sink)
    log_numbered(10)
    started = time.monotonic()
    assert sink.drain(timeout=10)
    assert time.monotonic() - started >= 0.9
    assert 1 == sink.stats()["retries"]
    assert_accounted(sink, server, 10)


def test_a_503_storm_is_weathered(server: FakeVictoriaLogs) -> None:
    """Twenty 503 answers in a row: retried with backoff until accepted."""
    server.fail_next(20, status=503)
    sink = fast_sink(server.url, backoff_max=0.05)
    logger.add(sink)
    log_numbered(100)
    assert sink.drain(timeout=15)
    assert sink.stats()["retries"] >= 20
    assert_accounted(sink, server, 100)


def test_a_slow_server_times_out_and_is_retried(server: FakeVictoriaLogs) -> None:
    """A request slower than timeout is retried; the record is stored (possibly twice)."""
    server.delay_next(1, 2.0)
    sink = fast_sink(server.url, timeout=0.3, flush_interval=60)
    logger.add(sink)
    log_numbered(5)
    assert sink.drain(timeout=10)
    assert sink.stats()["failed_requests"] >= 1
    assert "no complete answer within 0.3 s (timeout" in (sink.stats()["last_error"] or "")
    assert wait_for(lambda: len(delivered(server)) == 5, timeout=5)
    assert_accounted(sink, server, 5, max_dups=5)


def test_a_rejected_batch_is_counted_and_later_batches_flow(
    server: FakeVictoriaLogs, capfd: pytest.CaptureFixture[str]
) -> None:
    """A 400 drops its batch with a reason and one stderr line; the rest is delivered."""
    server.fail_next(1, status=400, body="cannot parse AccountID")
    sink = fast_sink(server.url, batch_size=10, flush_interval=60)
    logger.add(sink)
    log_numbered(10)
    assert sink.drain(timeout=5)
    log_numbered(15, start=10)
    assert sink.drain(timeout=5)
    assert {"rejected": 10} == sink.stats()["dropped"]
    assert_accounted(sink, server, 25)
    err = capfd.readouterr().err
    assert 1 == err.count("refused a batch of 10 records")
    assert "HTTP 400 cannot parse AccountID" in err


def test_an_outage_longer_than_the_buffer_counts_every_drop(server: FakeVictoriaLogs) -> None:
    """Without a spool, what overflows the memory buffer is counted, the rest delivered."""
    with FaultProxy(port_of(server.url), mode="refuse") as proxy:
        sink = fast_sink(proxy.url, buffer_size=100, batch_size=50)
        logger.add(sink)
        log_numbered(500)
        proxy.mode = "pass"
        assert sink.drain(timeout=10)
        stats = sink.stats()
        assert stats["dropped"]["buffer_full"] >= 350
        assert_accounted(sink, server, 500)


def test_one_endpoint_of_three_dead(server: FakeVictoriaLogs) -> None:
    """Two healthy endpoints carry the load; the dead one is skipped after failing."""
    port = port_of(server.url)
    with FaultProxy(port, "refuse") as dead, FaultProxy(port) as a, FaultProxy(port) as b:
        sink = fast_sink([dead.url, a.url, b.url], backoff_base=5.0, backoff_max=5.0, batch_size=20)
        logger.add(sink)
        for round_ in range(10):
            log_numbered(20, start=round_ * 20)
            assert sink.drain(timeout=5)
        assert_accounted(sink, server, 200)
        assert 0 == sink.stats()["dropped_total"]
        assert dead.connections <= 2
        assert a.connections >= 1
        assert b.connections >= 1


def test_a_lost_answer_gives_a_rare_duplicate(server: FakeVictoriaLogs) -> None:
    """The server stored the batch but the answer was cut: the retry is a duplicate, nothing lost."""
    with FaultProxy(port_of(server.url), mode="cut") as proxy:
        sink = fast_sink(proxy.url)
        logger.add(sink)
        log_numbered(10)
        assert wait_for(lambda: sink.stats()["failed_requests"] >= 1, timeout=5)
        proxy.mode = "pass"
        assert sink.drain(timeout=10)
        assert_accounted(sink, server, 10, max_dups=10 * sink.stats()["failed_requests"])


def _restartable_servers() -> list[Any]:
    from loguru_vlogs.testing import find_binary

    kinds: list[Any] = ["fake"]
    real = pytest.param(
        "real",
        marks=pytest.mark.skipif(
            find_binary() is None, reason="no victoria-logs binary (PATH / VLOGS_BINARY)"
        ),
    )
    kinds.append(real)
    return kinds


@pytest.mark.parametrize("kind", _restartable_servers())
def test_the_server_process_restarts_in_the_middle_of_a_stream(kind: str, tmp_path: Any) -> None:
    """Stop the server, keep logging, start it again: everything arrives, exactly once."""
    from loguru_vlogs.testing import RealVictoriaLogs

    srv: Any = (
        FakeVictoriaLogs() if kind == "fake" else RealVictoriaLogs(data_dir=tmp_path / "data")
    )
    srv.start()
    try:
        sink = fast_sink(srv.url, spool_dir=tmp_path / "spool")
        logger.add(sink)
        log_numbered(300)
        assert sink.drain(timeout=10)
        srv.stop()
        log_numbered(300, start=300)
        assert wait_for(lambda: sink.stats()["failed_requests"] >= 1, timeout=5)
        srv.start()
        log_numbered(300, start=600)
        assert sink.drain(timeout=20)
        assert 900 == srv.wait_for_count("*", 900, timeout=10)
        rows = srv.rows(limit=10_000)
        assert Counter(range(900)) == Counter(int(r["i"]) for r in rows)
        assert 0 == sink.stats()["dropped_total"]
    finally:
        logger.remove()
        srv.stop()
