"""Short scripts that log and exit: every line delivered, never a hang, losses reported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import closed_port_url

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parents[1]


#: Slack over a budget for the interpreter to finish and the process to be reaped. A second
#: wait of the (1 s) budget at exit would pass it.
EXIT_SLACK = 0.8
#: Appended to every script: when its body ended (the exit hooks run after it).
_END = "\nimport sys as _sys, time as _time\nprint('END', _time.time(), flush=True)\n"


def run_script(body: str, timeout: float = 30.0) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``body`` in a fresh interpreter; returns the result and how long its exit took:
    from the end of the body (after the interpreter started and the script logged) until
    the process was gone. A body that raises has no end: then the whole run time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body) + _END],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    ended = time.time()
    marks = [line.split() for line in result.stdout.splitlines() if line.startswith("END ")]
    return result, ended - (float(marks[-1][1]) if marks else started)


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as srv:
        yield srv


SCRIPT = """
    import sys
    from loguru import logger
    from loguru_vlogs import VLogsSink
    logger.remove()
    logger.add(VLogsSink({url!r}, flush_interval=60, shutdown_timeout={shutdown}, timeout={shutdown}){add})
    for i in range({n}):
        logger.bind(i=i).info("line {{}}", i)
    {tail}
"""


def script(url: str, *, n: int = 1000, shutdown: float = 5.0, add: str = "", tail: str = "") -> str:
    return SCRIPT.format(url=url, n=n, shutdown=shutdown, add=add, tail=tail)


def test_a_script_that_just_exits_delivers_every_line(server: FakeVictoriaLogs) -> None:
    """No remove(), no complete(): the exit hook sends all 1000 lines."""
    result, _ = run_script(script(server.url))
    assert 0 == result.returncode, result.stderr
    assert "" == result.stderr
    assert 1000 == server.count()
    assert set(range(1000)) == {int(r["i"]) for r in server.rows(limit=2000)}


def test_enqueue_records_pending_at_exit_are_delivered(server: FakeVictoriaLogs) -> None:
    """With enqueue=True, loguru drains its queue after our exit hook: those lines still arrive."""
    result, _ = run_script(script(server.url, add=", enqueue=True"))
    assert 0 == result.returncode, result.stderr
    assert 1000 == server.count()


def test_an_uncaught_exception_still_ships_the_last_lines(server: FakeVictoriaLogs) -> None:
    """A crashing script delivers what it logged, including the error logged just before."""
    tail = "logger.error('about to crash')\n    raise SystemExit(3)"
    result, _ = run_script(script(server.url, n=10, tail=tail))
    assert 3 == result.returncode
    assert 11 == server.count()


@pytest.mark.slow
def test_with_the_server_down_the_script_exits_within_shutdown_timeout() -> None:
    """Server down: exit after ~shutdown_timeout, and stderr says how much was lost."""
    result, elapsed = run_script(script(closed_port_url(), shutdown=1.0))
    assert 0 == result.returncode
    assert "loguru-vlogs: 1000 records could not be delivered" in result.stderr
    assert elapsed < 1.0 + EXIT_SLACK


@pytest.mark.slow
def test_with_a_server_that_never_answers_the_script_still_exits(server: FakeVictoriaLogs) -> None:
    """A hung server (accepts, never answers) cannot hold the exit past shutdown_timeout."""
    server.delay_next(100, 30.0)
    result, elapsed = run_script(script(server.url, n=50, shutdown=1.0))
    assert 0 == result.returncode
    assert "50 records could not be delivered" in result.stderr
    assert elapsed < 1.0 + EXIT_SLACK


@pytest.mark.slow
def test_remove_then_exit_does_not_wait_twice() -> None:
    """An explicit remove() with the server down costs one shutdown_timeout, not one more at exit."""
    result, elapsed = run_script(
        script(
            closed_port_url(), n=5, shutdown=1.0, tail="logger.remove()\n    logger.info('after')"
        )
    )
    assert 0 == result.returncode
    assert result.stderr.count("could not be delivered") == 1
    # remove() spent the budget inside the body; the exit hook must not wait again.
    assert elapsed < EXIT_SLACK


@pytest.mark.slow
def test_a_dead_server_does_not_eat_the_exit_budget_of_another_sink(
    server: FakeVictoriaLogs,
) -> None:
    """Two sinks, one server down: the live sink still delivers everything at exit, in parallel."""
    down = closed_port_url()
    body = f"""
        from loguru import logger
        from loguru_vlogs import VLogsSink
        logger.remove()
        for url in ({down!r}, {server.url!r}, {down!r}):
            logger.add(VLogsSink(url, flush_interval=60, shutdown_timeout=1.0, timeout=1.0))
        for i in range(200):
            logger.bind(i=i).info("line {{}}", i)
    """
    result, elapsed = run_script(body)
    assert 0 == result.returncode, result.stderr
    assert 200 == server.count()
    assert 2 == result.stderr.count("200 records could not be delivered"), result.stderr
    assert elapsed < 1.0 + EXIT_SLACK
