"""A server that is slow, not down (issue: deadlines, failover, accounting that stays true).

Faults come from a TCP proxy on loopback (tests/proxy.py) in front of ``vlogs_server``: the
real VictoriaLogs when a binary is on PATH, else the package's receiver. Every wait is bounded.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink

from .helpers import subprocess_env, wait_for
from .proxy import FaultProxy

#: Each test waits on timeouts and retries of a second or so: the whole suite runs them, the
#: fast lane (-m "not slow") does not.
pytestmark = pytest.mark.slow

#: Hang guard for waits on events that come within a second or two.
GUARD = 15.0


def port_of(server: Any) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


def log_run(run_id: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        logger.bind(run_id=run_id, i=i).info("record {}", i)


def stored(server: Any, run_id: str, n: int) -> Counter[int]:
    """Record numbers of this run the server holds (waits until n are visible, bounded)."""
    server.wait_for_count(f'run_id:="{run_id}"', n, timeout=GUARD)
    return Counter(int(r["i"]) for r in server.rows(f'run_id:="{run_id}"', limit=100_000))


def unaccounted(stats: dict[str, Any]) -> int:
    return int(
        stats["received"]
        - stats["sent"]
        - stats["dropped_total"]
        - stats["buffered"]
        - stats["in_flight"]
        - stats["spool_pending"]
    )


def retrying_sink(url: str | list[str], **options: Any) -> VLogsSink:
    """Sends at once, retries every 0.05-0.1 s, gives up 0.2 s into remove()."""
    settings: dict[str, Any] = {
        "flush_interval": 0.02,
        "backoff_base": 0.05,
        "backoff_max": 0.1,
        "shutdown_timeout": 0.2,
        **options,
    }
    return VLogsSink(url, **settings)


@pytest.fixture
def trickle(vlogs_server: Any) -> Iterator[FaultProxy]:
    """Answers 200 with a body sent one byte every 0.5 s (and never forwards the request)."""
    with FaultProxy(port_of(vlogs_server), mode="trickle", interval=0.5) as proxy:
        yield proxy


# -- a whole request has one deadline -------------------------------------------------------------


def test_a_trickling_endpoint_is_left_for_the_healthy_one(
    vlogs_server: Any, vlogs_run_id: str, trickle: FaultProxy, capfd: pytest.CaptureFixture[str]
) -> None:
    """One trickling endpoint and one healthy: every record arrives through the healthy one
    within timeout + one backoff of the trickle's first request; stderr says it is too slow."""
    timeout, backoff = 1.0, 0.3
    sink = VLogsSink(
        [trickle.url, vlogs_server.url],
        timeout=timeout,
        backoff_base=backoff,
        backoff_max=backoff,
        flush_interval=0.05,
        batch_size=50,
    )
    logger.add(sink)
    try:
        started = time.monotonic()
        log_run(vlogs_run_id, 300)
        assert sink.drain(timeout=GUARD)
        elapsed = time.monotonic() - started
        assert Counter(range(300)) == stored(vlogs_server, vlogs_run_id, 300)
        # Every attempt on the trickle ends at `timeout`; each batch needs at most one of them.
        assert elapsed < timeout + backoff + 1.5, elapsed
        assert trickle.connections >= 1
        err = capfd.readouterr().err
        assert f"no complete answer within {timeout:g} s (timeout" in err
        assert "too slow" in err
        stats = sink.stats()
        assert (300, 0) == (stats["sent"], stats["dropped_total"])
    finally:
        logger.remove()


def test_the_status_line_trickling_too_is_bounded(vlogs_server: Any, vlogs_run_id: str) -> None:
    """Even a server that sends its status line one byte at a time gets `timeout` in all."""
    with FaultProxy(port_of(vlogs_server), mode="trickle_head", interval=0.2) as proxy:
        sink = VLogsSink(proxy.url, timeout=0.6, flush_interval=0.05, shutdown_timeout=0.5)
        logger.add(sink)
        try:
            log_run(vlogs_run_id, 5)
            started = time.monotonic()
            logger.complete()
            assert time.monotonic() - started < 0.6 + 1.0
            stats = sink.stats()
            assert stats["failed_requests"] >= 1
            assert "no complete answer within 0.6 s" in (stats["last_error"] or "")
        finally:
            logger.remove()


SCRIPT = """
import sys, time
from loguru import logger
from loguru_vlogs import VLogsSink
logger.remove()
logger.add(VLogsSink({url!r}, timeout=1.0, shutdown_timeout=1.0, flush_interval=0.05))
for i in range(200):
    logger.bind(i=i).info("record {{}}", i)
started = time.monotonic()
logger.complete()
print(f"complete {{time.monotonic() - started:.3f}}", flush=True)
"""


@pytest.mark.subprocess
def test_with_only_a_trickling_endpoint_complete_and_exit_are_bounded(
    trickle: FaultProxy, tmp_path: Path
) -> None:
    """complete() returns within timeout + 1 s, the process exits within shutdown_timeout + 1 s
    of that, and every record is counted (stderr says how many could not be delivered)."""
    script = tmp_path / "trickle.py"
    script.write_text(SCRIPT.format(url=trickle.url))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
        check=False,
    )
    wall = time.monotonic() - started
    assert 0 == done.returncode, done.stderr
    complete = float(done.stdout.split()[1])
    assert complete < 1.0 + 1.0, done.stdout
    # interpreter start + imports + complete() + the exit flush (shutdown_timeout 1 s)
    assert wall < 3.0 + complete + 1.0 + 1.0, wall
    assert "200 records could not be delivered" in done.stderr, done.stderr
    assert 1 == done.stderr.count("could not be delivered"), done.stderr


# -- close() then write() -------------------------------------------------------------------------


def test_writing_after_close_restarts_delivery_past_a_stuck_request(
    vlogs_server: Any, vlogs_run_id: str
) -> None:
    """A request stuck past close()'s deadline is left behind (its batch counted once); the
    next records are delivered within flush_interval + 1 s."""
    with FaultProxy(port_of(vlogs_server), mode="stall") as proxy:
        sink = VLogsSink(proxy.url, timeout=30.0, shutdown_timeout=0.3, flush_interval=0.05)
        logger.add(sink)
        try:
            log_run(vlogs_run_id, 10)
            assert wait_for(lambda: sink.stats()["in_flight"] == 10, timeout=GUARD)
            assert not sink.close(timeout=0.3)
            after_close = sink.stats()
            assert {"shutdown": 10} == after_close["dropped"]
            proxy.mode = "pass"  # new connections go through
            started = time.monotonic()
            log_run(vlogs_run_id, 500, start=10)
            assert wait_for(lambda: sink.stats()["sent"] == 500, timeout=GUARD)
            assert time.monotonic() - started < 0.05 + 1.0
            assert Counter(range(10, 510)) == stored(vlogs_server, vlogs_run_id, 500)
            stats = sink.stats()
            assert {"shutdown": 10} == stats["dropped"]
            assert 0 == unaccounted(stats), stats
        finally:
            logger.remove()


def test_a_late_success_is_counted_as_sent_not_lost(vlogs_server: Any, vlogs_run_id: str) -> None:
    """stop()'s deadline passes while the server is storing the batch: counted "shutdown" at
    first, then "sent" once the answer (200) arrives."""
    with FaultProxy(port_of(vlogs_server), mode="late", interval=1.0) as proxy:
        sink = VLogsSink(proxy.url, timeout=5.0, shutdown_timeout=0.3, flush_interval=0.05)
        logger.add(sink)
        try:
            log_run(vlogs_run_id, 20)
            assert wait_for(lambda: sink.stats()["in_flight"] == 20, timeout=GUARD)
            assert not sink.close(timeout=0.3)
            assert {"shutdown": 20} == sink.stats()["dropped"]
            assert wait_for(lambda: sink.stats()["sent"] == 20, timeout=GUARD)
            stats = sink.stats()
            assert ({}, 0) == (stats["dropped"], unaccounted(stats))
            assert Counter(range(20)) == stored(vlogs_server, vlogs_run_id, 20)
        finally:
            logger.remove()


def test_a_spooled_batch_answered_after_close_is_counted_once(
    vlogs_server: Any, vlogs_run_id: str, tmp_path: Path
) -> None:
    """close() leaves behind a thread whose request for a spooled batch is still under way;
    the next records restart delivery, which sends that batch again (a duplicate, as
    documented). When the old request's success arrives after all, the batch is not counted
    sent twice (nor acknowledged by the thread left behind)."""
    with FaultProxy(port_of(vlogs_server), mode="refuse", interval=1.5) as proxy:
        sink = VLogsSink(
            proxy.url,
            spool_dir=tmp_path / "spool",
            spool_threshold=1,
            timeout=5.0,
            shutdown_timeout=0.3,
            flush_interval=0.05,
            backoff_base=0.05,
            backoff_max=0.1,
            warn_interval=3600.0,
        )
        logger.add(sink)
        try:
            log_run(vlogs_run_id, 20)
            assert wait_for(lambda: sink.stats()["spool_pending"] == 20, timeout=GUARD)
            tried = proxy.connections
            proxy.mode = "late"  # stored by the server, its answer held back 1.5 s
            assert wait_for(lambda: proxy.connections > tried, timeout=GUARD)
            time.sleep(0.3)  # the request reaches the server
            sink.close(timeout=0.3)  # the request is left behind, its batch still spooled
            proxy.mode = "pass"
            log_run(vlogs_run_id, 1, start=20)
            assert wait_for(lambda: sink.stats()["sent"] >= 21, timeout=GUARD)
            time.sleep(1.5 + 0.5)  # the late answer arrives (to the thread left behind)
            stats = sink.stats()
            assert 21 == stats["sent"], stats
            assert (0, 0) == (stats["spool_pending"], unaccounted(stats)), stats
            assert set(range(21)) == set(stored(vlogs_server, vlogs_run_id, 21))
        finally:
            logger.remove()


# -- a failing spool never makes things worse -----------------------------------------------------


@pytest.mark.parametrize("fault", ["disk_full", "read_only"])
def test_a_spool_that_cannot_write_loses_nothing_memory_can_hold(
    fault: str,
    vlogs_server: Any,
    vlogs_run_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Outage shorter than memory can hold; the spool's disk is full (ENOSPC) or its directory
    is gone: 0 records lost, as without a spool, and stderr says the spool refused."""
    import loguru_vlogs._spool as spool_module

    if fault == "disk_full":

        def full(*_: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(spool_module, "_write_all", full)
    with FaultProxy(port_of(vlogs_server), mode="refuse") as proxy:
        spool_dir = tmp_path / "spool"
        sink = VLogsSink(
            proxy.url,
            spool_dir=spool_dir,
            batch_size=100,
            flush_interval=0.02,
            backoff_base=0.02,
            backoff_max=0.1,
        )
        if fault == "read_only":
            # Root ignores permissions: a directory replaced by a file refuses everyone.
            for path in spool_dir.iterdir():
                path.unlink()
            spool_dir.rmdir()
            spool_dir.write_text("not a directory")
        logger.add(sink)
        try:
            log_run(vlogs_run_id, 3000)
            assert wait_for(lambda: "the spool refused" in capfd.readouterr().err, timeout=GUARD)
            proxy.mode = "pass"
            assert sink.drain(timeout=GUARD)
            stats = sink.stats()
            assert (3000, {}, 0) == (stats["sent"], stats["dropped"], stats["spooled"])
            assert Counter(range(3000)) == stored(vlogs_server, vlogs_run_id, 3000)
        finally:
            logger.remove()


# -- the identity holds at every look ---------------------------------------------------------------


def test_the_accounting_identity_holds_at_every_sampled_stats_call(
    vlogs_server: Any, vlogs_run_id: str, tmp_path: Path
) -> None:
    """stats() sampled every 2 ms through an outage with a spool, overflow drops and the
    recovery: received == sent + dropped_total + buffered + in_flight + spool_pending at
    every sample."""
    with FaultProxy(port_of(vlogs_server), mode="refuse") as proxy:
        sink = VLogsSink(
            proxy.url,
            spool_dir=tmp_path / "spool",
            batch_size=50,
            buffer_size=2000,
            flush_interval=0.01,
            backoff_base=0.01,
            backoff_max=0.05,
        )
        logger.add(sink)
        broken: list[dict[str, Any]] = []
        samples = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal samples
            while not stop.is_set():
                stats = sink.stats()
                samples += 1
                if unaccounted(stats):
                    broken.append(stats)
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            log_run(vlogs_run_id, 3000)
            assert wait_for(lambda: sink.stats()["spooled"] >= 1000, timeout=GUARD)
            proxy.mode = "pass"
            log_run(vlogs_run_id, 1000, start=3000)
            assert sink.drain(timeout=GUARD)
        finally:
            stop.set()
            sampler.join(5)
            logger.remove()
        assert samples > 20  # one every 2 ms at most, for as long as the scenario runs
        assert [] == broken[:3]
        stats = sink.stats()
        assert 0 == unaccounted(stats)
        assert 4000 == stats["sent"] + stats["dropped_total"]
        assert stats["sent"] == sum(stored(vlogs_server, vlogs_run_id, stats["sent"]).values())


# -- configuration mistakes are named, kept and retried ---------------------------------------------


def test_a_url_path_the_server_does_not_serve_is_named_and_the_records_kept(
    vlogs_server: Any, vlogs_run_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """A wrong path prefix: one stderr line says what to change; nothing is dropped."""
    sink = retrying_sink(vlogs_server.url + "/vlogs")
    logger.add(sink)
    try:
        log_run(vlogs_run_id, 5)
        assert wait_for(lambda: sink.stats()["failed_requests"] >= 2, timeout=GUARD)
        stats = sink.stats()
        assert ({}, 5) == (stats["dropped"], stats["buffered"] + stats["in_flight"])
        err = capfd.readouterr().err
        assert "is the URL the server's base URL (mind a proxy's path prefix)?" in err
        assert "the records are kept and retried until the URL is fixed" in err
    finally:
        logger.remove()


def test_https_spoken_to_a_plain_http_port_is_named(
    vlogs_server: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """https:// to a plain-HTTP server: the same words as `loguru-vlogs check`, no raw SSL text
    alone, and the records kept."""
    url = vlogs_server.url.replace("http://", "https://")
    sink = retrying_sink(url, verify=False)
    logger.add(sink)
    try:
        logger.info("over TLS?")
        assert wait_for(lambda: sink.stats()["failed_requests"] >= 1, timeout=GUARD)
        assert "does not speak TLS: use http:// instead of https://" in capfd.readouterr().err
        assert {} == sink.stats()["dropped"]
    finally:
        logger.remove()


def test_an_html_page_answered_with_200_is_not_taken_for_delivery(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A host that is not VictoriaLogs answering 200 with a web page: not counted as sent."""
    import http.server

    class Page(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<!DOCTYPE html><html><body>Welcome</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    sink = retrying_sink(f"http://127.0.0.1:{web.server_address[1]}")
    logger.add(sink)
    try:
        logger.info("to a web server")
        assert wait_for(lambda: sink.stats()["failed_requests"] >= 1, timeout=GUARD)
        stats = sink.stats()
        assert (0, {}) == (stats["sent"], stats["dropped"])
        assert "with an HTML page: the URL does not lead to VictoriaLogs" in capfd.readouterr().err
    finally:
        logger.remove()
        web.shutdown()
        web.server_close()


# -- messages at exit -----------------------------------------------------------------------------

EXIT_SCRIPT = """
from loguru import logger
from loguru_vlogs import VLogsSink
logger.remove()
logger.add(VLogsSink({url!r}, spool_dir={spool!r}, shutdown_timeout=0.5, timeout=0.5))
for i in range(50):
    logger.info("record {{}}", i)
"""


@pytest.mark.subprocess
def test_the_spool_message_at_exit_is_said_once(tmp_path: Path) -> None:
    """Server down, spool on: "N records wait in the spool" appears exactly once at exit."""
    script = tmp_path / "exit.py"
    script.write_text(
        textwrap.dedent(EXIT_SCRIPT.format(url="http://127.0.0.1:9", spool=str(tmp_path / "s")))
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert 1 == done.stderr.count("records wait in the spool"), done.stderr
    assert "50 records wait in the spool" in done.stderr
