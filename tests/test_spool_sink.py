"""The sink with a spool directory: outages longer than memory, exit and SIGKILL survive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import closed_port_url, wait_for
from .proxy import FaultProxy
from .test_delivery import assert_accounted, delivered, fast_sink, log_numbered, port_of
from .test_exit import ROOT, run_script


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as srv:
        yield srv


def test_an_outage_longer_than_memory_loses_nothing_with_a_spool(
    server: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """Memory holds 100 records; 1000 logged during the outage all arrive from the spool."""
    with FaultProxy(port_of(server.url), mode="refuse") as proxy:
        sink = fast_sink(proxy.url, buffer_size=100, batch_size=50, spool_dir=tmp_path / "spool")
        logger.add(sink)
        for round_ in range(20):
            # A steady stream rather than one burst (memory alone holds 100): below
            # spool_threshold (= batch_size, 50) records wait in memory, the rest go to disk.
            log_numbered(50, start=round_ * 50)
            assert wait_for(lambda n=round_: sink.stats()["spooled"] >= n * 50, timeout=10)
        proxy.mode = "pass"
        assert sink.drain(timeout=15)
        stats = sink.stats()
        assert 0 == stats["dropped_total"], stats
        assert 0 == stats["spool_pending"]
        assert stats["spool_sent"] == stats["spooled"]
        assert_accounted(sink, server, 1000)
        assert 1000 == len(delivered(server))


def test_records_spooled_at_exit_are_delivered_by_the_next_process(
    server: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """Server down at exit: the script exits fast, says where the records are; a later run sends them."""
    spool = tmp_path / "spool"
    down = closed_port_url()
    body = f"""
        from loguru import logger
        from loguru_vlogs import VLogsSink
        logger.remove()
        logger.add(VLogsSink({down!r}, spool_dir={str(spool)!r}, shutdown_timeout=3, timeout=0.5))
        for i in range(300):
            logger.bind(i=i).info("line {{}}", i)
    """
    result, elapsed = run_script(body)
    assert 0 == result.returncode, result.stderr
    assert "300 records wait in the spool" in result.stderr
    assert "could not be delivered" not in result.stderr
    # With the server failing, everything goes to disk at once: the exit does not wait out
    # the 3 s budget retrying.
    assert elapsed < 1.5
    sink = VLogsSink(server.url, spool_dir=spool)
    assert sink.drain(timeout=10)
    assert set(range(300)) == set(delivered(server))
    assert 300 == sink.stats()["spool_sent"]


def kill_after_spooling(spool: Path, n: int) -> None:
    """Run a process that logs ``n`` records with the server down, spools them, and SIGKILL it."""
    down = closed_port_url()
    body = textwrap.dedent(f"""
        import sys, time
        from loguru import logger
        from loguru_vlogs import VLogsSink
        logger.remove()
        sink = VLogsSink({down!r}, spool_dir={str(spool)!r}, spool_threshold=1, batch_size=50,
                         flush_interval=0.01, backoff_base=0.01, backoff_max=0.05, timeout=0.5)
        logger.add(sink)
        for i in range({n}):
            logger.bind(i=i).info("line {{}}", i)
        deadline = time.monotonic() + 20
        while sink.stats()["spooled"] < {n} and time.monotonic() < deadline:
            time.sleep(0.01)
        print(sink.stats()["spooled"], flush=True)
        time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", body],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert str(n) == proc.stdout.readline().strip()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_a_process_killed_while_the_server_is_down_leaves_its_spool_to_the_next(
    server: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """SIGKILL after records reached the spool: a new process delivers every one of them."""
    spool = tmp_path / "spool"
    kill_after_spooling(spool, 500)
    sink = VLogsSink(server.url, spool_dir=spool)
    assert sink.drain(timeout=10)
    assert set(range(500)) == set(delivered(server))
    assert 0 == sink.stats()["spool_pending"]


def test_a_corrupted_spool_segment_delivers_the_rest_and_counts_the_damage(
    server: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """A flipped byte inside one spooled batch: that batch is counted, every other one arrives."""
    spool = tmp_path / "spool"
    kill_after_spooling(spool, 500)
    (segment,) = sorted(spool.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[8 + 20 + 10] ^= 0xFF  # inside the first entry's payload (file header 8, entry header 20)
    segment.write_bytes(bytes(data))
    sink = VLogsSink(server.url, spool_dir=spool)
    assert sink.drain(timeout=10)
    stats = sink.stats()
    corrupt = stats["dropped"].get("spool_corrupt", 0)
    assert 0 < corrupt <= 50
    assert 500 == len(delivered(server)) + corrupt
    assert 0 == stats["spool_pending"]


def test_an_unusable_spool_dir_is_refused_at_construction(tmp_path: Path) -> None:
    """A spool_dir that is a file is a configuration error, named as such."""
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError, match=r"^Invalid spool_dir: "):
        VLogsSink("http://127.0.0.1:9", spool_dir=target)


def _log_in_child(n: int) -> None:
    for i in range(n):
        logger.bind(i=i).info("from the child {}", i)


def test_a_forked_child_spools_its_own_records_when_the_server_is_down(
    server: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """fork + spool: the child gets its own spool writer; its records survive its exit."""
    import multiprocessing

    spool = tmp_path / "spool"
    sink = VLogsSink(closed_port_url(), spool_dir=spool, timeout=0.5, shutdown_timeout=2)
    logger.add(sink)
    child = multiprocessing.get_context("fork").Process(target=_log_in_child, args=(50,))
    child.start()
    child.join(20)
    assert 0 == child.exitcode
    logger.remove()
    later = VLogsSink(server.url, spool_dir=spool)
    assert later.drain(timeout=10)
    assert set(range(50)) == set(delivered(server))


@pytest.mark.parametrize("with_spool", [True, False])
def test_a_backing_off_worker_sleeps_instead_of_spinning(tmp_path: Path, with_spool: bool) -> None:
    """While waiting out a backoff with a few records in memory, the worker uses no CPU."""
    import time

    spool = {"spool_dir": tmp_path / "spool"} if with_spool else {}
    sink = VLogsSink(
        closed_port_url(),
        flush_interval=0.01,
        backoff_base=2,
        backoff_max=2,
        shutdown_timeout=0.1,
        **spool,
    )
    logger.add(sink)
    for _ in range(5):
        logger.info("x")
    assert wait_for(lambda: sink.stats()["failed_requests"] >= 1, timeout=5)
    started = time.process_time()
    time.sleep(0.5)  # the measured interval itself, not synchronisation
    assert time.process_time() - started < 0.2
