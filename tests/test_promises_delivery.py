"""Delivery promises through the public API: retry_max_elapsed, secrets, close(), stderr limits.

Every test here was checked to fail when its promise is broken on purpose in the package.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import closed_port_url, fast_sink, wait_for

#: Seconds the tests let a failing batch be retried before the sink must give it up.
MAX_ELAPSED = 0.5


def diag_lines(err: str, needle: str) -> list[str]:
    """The sink's stderr lines that contain ``needle``."""
    return [
        line for line in err.splitlines() if line.startswith("loguru-vlogs:") and needle in line
    ]


def log_numbered(n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        logger.bind(i=i).info("record {}", i)


# -- retry_max_elapsed ------------------------------------------------------------------------


def test_a_batch_failing_past_retry_max_elapsed_is_dropped_counted_and_reported(
    fake_vlogs: FakeVictoriaLogs, capfd: pytest.CaptureFixture[str]
) -> None:
    """A batch still failing after retry_max_elapsed is dropped as retry_exhausted, with a stderr line."""
    fake_vlogs.read_only = True  # every insert gets 429: retryable, never accepted
    sink = fast_sink(fake_vlogs.url, retry_max_elapsed=MAX_ELAPSED)
    logger.add(sink)
    started = time.monotonic()
    log_numbered(5)
    assert wait_for(
        lambda: sink.stats()["dropped"].get("retry_exhausted") == 5, timeout=MAX_ELAPSED + 3
    ), sink.stats()
    given_up_after = time.monotonic() - started
    # Retried for retry_max_elapsed first: not given up at the first failure.
    assert given_up_after >= MAX_ELAPSED
    stats = sink.stats()
    assert {"retry_exhausted": 5} == stats["dropped"]
    assert stats["failed_requests"] >= 2
    assert (0, 0, 0) == (stats["sent"], stats["buffered"], stats["in_flight"])
    lines = diag_lines(capfd.readouterr().err, "retry_max_elapsed")
    assert 1 == len(lines), lines
    assert "5 records" in lines[0]
    # The sink goes on: once the server takes records again, new ones are delivered.
    fake_vlogs.read_only = False
    logger.bind(i=5).info("after")
    logger.complete()
    assert ["after"] == [row["_msg"] for row in fake_vlogs.rows()]


def test_a_long_retry_after_does_not_stretch_retry_max_elapsed(
    fake_vlogs: FakeVictoriaLogs,
) -> None:
    """A server asking to retry after 30 s does not keep a batch past retry_max_elapsed."""
    fake_vlogs.fail_next(10_000, 503, retry_after=30)
    sink = fast_sink(fake_vlogs.url, retry_max_elapsed=MAX_ELAPSED)
    logger.add(sink)
    logger.info("x")
    # Tight on purpose: given up at retry_max_elapsed, not after the 30 s Retry-After.
    assert wait_for(
        lambda: sink.stats()["dropped"].get("retry_exhausted") == 1, timeout=MAX_ELAPSED + 1.0
    ), sink.stats()


def test_with_a_spool_a_batch_failing_past_retry_max_elapsed_is_spooled_then_delivered(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """With spool_dir, a batch given up after retry_max_elapsed goes to the spool, sent once the server is back."""
    fake_vlogs.read_only = True
    # 5 records stay far below spool_threshold (batch_size, 1000): only giving up spools them.
    sink = fast_sink(fake_vlogs.url, retry_max_elapsed=MAX_ELAPSED, spool_dir=tmp_path / "spool")
    logger.add(sink)
    started = time.monotonic()
    log_numbered(5)
    assert wait_for(lambda: sink.stats()["spooled"] == 5, timeout=MAX_ELAPSED + 3), sink.stats()
    assert time.monotonic() - started >= MAX_ELAPSED
    stats = sink.stats()
    assert {} == stats["dropped"]
    assert (0, 5) == (stats["sent"], stats["spool_pending"])
    assert 0 == fake_vlogs.count()
    fake_vlogs.read_only = False
    assert wait_for(lambda: sink.stats()["spool_sent"] == 5, timeout=5), sink.stats()
    stats = sink.stats()
    assert (5, 0, 0) == (stats["sent"], stats["spool_pending"], stats["dropped_total"])
    assert [0, 1, 2, 3, 4] == sorted(int(row["i"]) for row in fake_vlogs.rows())


# -- credentials --------------------------------------------------------------------------------

USER = "alice"
PASSWORD = "Hunter2-S3CRET-pw"
TOKEN = "tok-S3CRET-0123456789"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

#: How each kind of credential is given, and the texts that must never be shown.
CREDENTIALS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "url-userinfo": ({}, [PASSWORD, BASIC]),
    "auth": ({"auth": (USER, PASSWORD)}, [PASSWORD, BASIC]),
    "bearer_token": ({"bearer_token": TOKEN}, [TOKEN]),
    "authorization-header": ({"headers": {"Authorization": f"Bearer {TOKEN}"}}, [TOKEN]),
}


@pytest.mark.parametrize("failure", ["server-down", "http-500", "http-401"])
@pytest.mark.parametrize("kind", list(CREDENTIALS))
def test_credentials_never_show_after_a_failed_send(
    fake_vlogs: FakeVictoriaLogs, capfd: pytest.CaptureFixture[str], kind: str, failure: str
) -> None:
    """After failed sends, no credential is in stats(), in repr(sink) or on stderr."""
    options, secrets = CREDENTIALS[kind]
    url = closed_port_url() if failure == "server-down" else fake_vlogs.url
    if kind == "url-userinfo":
        url = url.replace("http://", f"http://{USER}:{PASSWORD}@")
    if failure == "http-500":
        fake_vlogs.fail_next(10_000, 500, body="internal error")
    elif failure == "http-401":
        fake_vlogs.fail_next(10_000, 401, body="unauthorized")
    sink = fast_sink(url, **options)
    logger.add(sink)
    log_numbered(3)
    if failure == "http-401":
        assert wait_for(lambda: sink.stats()["dropped"].get("rejected") == 3), sink.stats()
        expected_error = "HTTP 401 unauthorized"
    else:
        assert wait_for(lambda: sink.stats()["failed_requests"] >= 2), sink.stats()
        expected_error = "HTTP 500 internal error" if failure == "http-500" else "refused"
    closed = sink.close(timeout=0.3)
    assert closed is (failure == "http-401")  # rejected records are counted, not left over
    stats = sink.stats()
    assert expected_error in stats["last_error"]
    if failure != "server-down":
        # The credential did go out with the requests: the test is not vacuous.
        requests = fake_vlogs.requests
        assert requests
        assert all("Authorization" in r.headers for r in requests)
    err = capfd.readouterr().err
    assert diag_lines(err, expected_error)  # the failure was reported on stderr
    shown = {"stats": repr(stats), "repr": repr(sink), "str": str(sink), "stderr": err}
    for where, text in shown.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} shown in {where}: {text}"


# -- close() ------------------------------------------------------------------------------------


def test_close_returns_false_within_its_timeout_when_the_server_is_down_and_writing_again_works(
    fake_vlogs: FakeVictoriaLogs, capfd: pytest.CaptureFixture[str]
) -> None:
    """close(timeout) with the server down returns False within timeout; writing after it restarts the sink."""
    sink = fast_sink(fake_vlogs.url, shutdown_timeout=30.0)
    logger.add(sink)
    fake_vlogs.stop()
    log_numbered(3)
    assert wait_for(lambda: sink.stats()["failed_requests"] >= 1), sink.stats()
    started = time.monotonic()
    assert sink.close(timeout=0.5) is False
    # Bounded by close()'s own timeout, not shutdown_timeout (30 s).
    assert time.monotonic() - started < 0.5 + 1.5
    assert {"shutdown": 3} == sink.stats()["dropped"]
    assert diag_lines(capfd.readouterr().err, "3 records could not be delivered")
    fake_vlogs.start()  # the same port again
    log_numbered(2, start=3)
    # Nothing but the writes themselves: they must restart the worker, which sends them.
    assert wait_for(lambda: fake_vlogs.count() == 2, timeout=5), sink.stats()
    assert [3, 4] == sorted(int(row["i"]) for row in fake_vlogs.rows())
    assert sink.close(timeout=5) is True


def test_close_returns_true_once_delivered_and_a_write_after_it_restarts_delivery(
    fake_vlogs: FakeVictoriaLogs,
) -> None:
    """close() returns True when everything was delivered; records written after it still arrive."""
    sink = fast_sink(fake_vlogs.url)
    logger.add(sink)
    log_numbered(3)
    assert sink.close(timeout=5) is True
    assert 3 == fake_vlogs.count()
    log_numbered(2, start=3)
    # Nothing but the writes themselves: the restarted worker sends after flush_interval.
    assert wait_for(lambda: fake_vlogs.count() == 5, timeout=5), sink.stats()
    assert sink.close(timeout=5) is True
    stats = sink.stats()
    assert (5, 5, 0) == (stats["received"], stats["sent"], stats["dropped_total"])


# -- stderr rate limiting -----------------------------------------------------------------------


def stuck_sink(**kwargs: Any) -> VLogsSink:
    """Server down, one record in flight, room for one more: every further record is a drop."""
    sink = fast_sink(
        closed_port_url(), batch_size=1, buffer_size=1, overflow="drop_newest", **kwargs
    )
    logger.add(sink)
    logger.info("in flight")
    assert wait_for(lambda: sink.stats()["in_flight"] == 1), sink.stats()
    logger.info("buffered")
    return sink


@pytest.mark.slow
def test_many_drops_of_one_kind_give_one_line_and_another_kind_gets_its_own(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Within warn_interval one stderr line per kind: 20 buffer_full drops give one, retry_exhausted its own."""
    sink = stuck_sink(warn_interval=3600.0, retry_max_elapsed=MAX_ELAPSED)
    for _ in range(20):
        logger.info("dropped")
    assert 20 == sink.stats()["dropped"].get("buffer_full")
    # Both batches (in flight and buffered) are given up: two drops of a second kind.
    assert wait_for(
        lambda: sink.stats()["dropped"].get("retry_exhausted") == 2, timeout=2 * MAX_ELAPSED + 3
    ), sink.stats()
    assert sink.stats()["failed_requests"] >= 2
    err = capfd.readouterr().err
    assert 1 == len(diag_lines(err, "buffer full")), err
    assert 1 == len(diag_lines(err, "retry_max_elapsed")), err
    assert 1 == len(diag_lines(err, "sending failed")), err


@pytest.mark.slow
def test_the_first_line_after_warn_interval_says_how_many_were_suppressed(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """20 drops within warn_interval: one line; the next drop after the interval says 19 were suppressed."""
    interval = 1.0
    sink = stuck_sink(warn_interval=interval)
    burst_started = time.monotonic()
    for _ in range(20):
        logger.info("dropped")
    burst_ended = time.monotonic()
    assert burst_ended - burst_started < interval, "premise: the burst fits in one interval"
    assert 1 == len(diag_lines(capfd.readouterr().err, "buffer full"))
    # What is under test is the clock: the interval must pass before the next line is due.
    assert wait_for(lambda: time.monotonic() >= burst_ended + interval, timeout=interval + 1)
    logger.info("dropped after the interval")
    assert 21 == sink.stats()["dropped"].get("buffer_full")
    lines = diag_lines(capfd.readouterr().err, "buffer full")
    assert 1 == len(lines), lines
    assert lines[0].endswith("(19 similar messages suppressed)")
