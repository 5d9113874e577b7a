"""Every process model: enqueue, fork, spawn/forkserver, pools, pre-fork, threads, asyncio, recursion.

Scenarios that create or end processes run in a fresh interpreter (``tests/proc_scripts/run.py``)
against a receiver in this process; each test counts what arrived: every record is identified by
``(who, i)`` and must be stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import closed_port_url

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    """A receiver in this process; the scenarios' subprocesses send to it."""
    with FakeVictoriaLogs() as srv:
        yield srv


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (a hung VictoriaLogs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@dataclass
class Run:
    """What a scenario printed (its JSON result), its stderr and its wall time."""

    result: dict[str, Any]
    stderr: str
    elapsed: float


def run_scenario(scenario: str, url: str, *, timeout: float = 60.0, **params: Any) -> Run:
    """Run one scenario of ``tests/proc_scripts/run.py``; kill its whole process group on hang."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "tests.proc_scripts.run", scenario, url, json.dumps(params)]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its children too are killed if it hangs
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"scenario {scenario!r} still running after {timeout}s (hang); stderr:\n{err}")
    elapsed = time.monotonic() - started
    assert 0 == proc.returncode, f"exit code {proc.returncode}; stderr:\n{err}\nstdout:\n{out}"
    return Run(json.loads(out.splitlines()[-1]), err, elapsed)


def expected(n: int, whos: Iterable[str]) -> Counter[tuple[str, int]]:
    """Each of ``n`` records of every ``who``, once."""
    return Counter({(who, i): 1 for who in whos for i in range(n)})


def arrived(server: FakeVictoriaLogs) -> Counter[tuple[str, int]]:
    """How many times each ``(who, i)`` record is stored."""
    return Counter((row["who"], int(row["i"])) for row in server.rows() if "who" in row)


def pids_of(server: FakeVictoriaLogs, prefix: str) -> set[int]:
    """The emitting pids of the records whose ``who`` starts with ``prefix``."""
    return {int(row["pid"]) for row in server.rows() if row.get("who", "").startswith(prefix)}


# -- 1 & 4. enqueue=True ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "context",
    [
        pytest.param(None, id="default"),
        pytest.param("spawn", marks=pytest.mark.slow),
        pytest.param("forkserver", marks=pytest.mark.slow),
    ],
)
def test_enqueue_children_records_arrive_once_through_the_parents_sink(
    server: FakeVictoriaLogs, context: str | None
) -> None:
    """enqueue=True: Process children and `with Pool` tasks that complete() are sent by the parent."""
    n = 20
    run = run_scenario("enqueue", server.url, context=context, n=n)
    whos = ["parent", "process-0", "process-1", *(f"task-{k}" for k in range(4))]
    assert expected(n, whos) == arrived(server)
    assert [0, 0] == run.result["codes"]
    # The parent's sink sent every record, the children's included: they never sent any.
    assert 7 * n == run.result["sent"]
    assert set(run.result["child_pids"]) == pids_of(server, "process-")
    assert run.result["pid"] not in pids_of(server, "task-") | pids_of(server, "process-")
    assert "" == run.stderr


# -- 2 & 4. no enqueue, fork ------------------------------------------------------------------


def test_fork_children_send_their_own_records_and_never_the_parents_buffer(
    server: FakeVictoriaLogs,
) -> None:
    """Raw forks (os._exit after complete, sys.exit), a Process and Pools each deliver once."""
    n = 20
    run = run_scenario("fork", server.url, n=n)
    whos = [
        "parent",
        "parent-after",
        "fork-complete-os_exit",
        "fork-sys_exit",
        "process-no-complete",
        "pool-close-0",
        "pool-close-1",
        "pool-with-complete-0",
        "pool-with-complete-1",
    ]
    # The parent's n records were buffered at every fork: a copy sent by a child would be a
    # duplicate here.
    assert expected(n, whos) == arrived(server)
    assert [0, 0, 0] == run.result["codes"]
    assert n == run.result["buffered_at_fork"]
    assert (0, n) == (run.result["parent_sent"], run.result["parent_buffered"])
    assert run.result["pid"] not in pids_of(server, "pool-") | pids_of(server, "fork-")
    assert "" == run.stderr


@pytest.mark.slow
def test_a_fork_while_the_parent_is_in_a_send_does_not_deadlock_the_child(
    server: FakeVictoriaLogs,
) -> None:
    """The receiver holds the parent's request open; children forked meanwhile send at once."""
    n, hold = 20, 2.0
    server.delay_next(1, hold)
    run = run_scenario("fork_mid_send", server.url, n=n, hold=hold)
    assert [0, 0] == run.result["codes"]
    assert (n, 0) == (run.result["in_flight_at_fork"], run.result["requests_at_fork"])
    # Both children forked, logged, delivered and exited while the parent's send was held.
    assert 0 == run.result["requests_when_children_done"]
    assert expected(n, ["parent", "fork-mid-send", "process-mid-send"]) == arrived(server)
    assert n == run.result["parent_sent"]
    assert "" == run.stderr


# -- 3 & 4. no enqueue, spawn / forkserver ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawned_children_send_from_the_pickled_sink_and_flush_at_exit(
    server: FakeVictoriaLogs, method: str
) -> None:
    """Process(args=(logger,)) and Pool(initializer) children deliver without calling complete()."""
    n = 20
    run = run_scenario("spawn", server.url, method=method, n=n)
    whos = ["parent", "process-0", "process-1", "pool-close-0", "pool-close-1"]
    assert expected(n, whos) == arrived(server)
    assert [0, 0] == run.result["codes"]
    # The children's records were sent by the children: the parent had sent nothing yet.
    assert (0, n) == (run.result["parent_sent"], run.result["parent_buffered"])
    assert run.result["pid"] not in pids_of(server, "process-") | pids_of(server, "pool-")
    assert "" == run.stderr


# -- 2 & 3. a multiprocessing child's exit while its threads still run -----------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_child_thread_still_logging_after_the_target_returned_is_delivered(
    server: FakeVictoriaLogs, method: str
) -> None:
    """A non-daemon thread that logs 0.5 s after the Process target returned: all arrive."""
    n = 5
    run = run_scenario("late_thread", server.url, method=method, n=n, late=0.5)
    assert [0] == run.result["codes"]
    assert expected(n + 1, [f"late-{method}"]) == arrived(server)


def test_a_child_that_leaves_a_thread_pool_executor_running_exits_and_delivers(
    server: FakeVictoriaLogs,
) -> None:
    """An executor the child never shut down (Python stops it at exit): prompt exit, all sent."""
    n = 10
    run = run_scenario("executor_child", server.url, method="fork", n=n, wait=5.0)
    assert [0] == run.result["codes"]
    assert run.result["child_elapsed"] < 5.0
    assert expected(n, ["executor-fork"]) == arrived(server)


# -- 5. threads -------------------------------------------------------------------------------------

#: The issue asks for 8 threads x 20 000 records per policy. Through loguru this machine logs
#: ~25 000 records/s at best (46 us each, single thread), so 3 x 160 000 takes ~40 s: the suite
#: runs 8 x 5 000 (~4 s per policy); LOGURU_VLOGS_PER_THREAD=20000 runs the full figure.
THREADS = 8
PER_THREAD = int(os.environ.get("LOGURU_VLOGS_PER_THREAD", "5000"))


@pytest.mark.slow
@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest", "block"])
def test_threads_logging_while_complete_loops_lose_nothing_uncounted(
    server: FakeVictoriaLogs, overflow: str
) -> None:
    """8 threads log while complete() runs in a loop: no deadlock, stored + dropped == logged."""
    run = run_scenario(
        "threads",
        server.url,
        timeout=120.0,
        overflow=overflow,
        threads=THREADS,
        per_thread=PER_THREAD,
        # Small enough that the drop policies do drop (the accounting is the point).
        buffer_size=2_000,
        pace=0.01,
    )
    result = run.result
    assert [] == result["hung"]
    assert result["completes"] > 0
    stored = Counter((int(row["t"]), int(row["i"])) for row in server.rows())
    assert [] == [key for key, count in stored.items() if count > 1]
    assert THREADS * PER_THREAD == result["received"]
    assert THREADS * PER_THREAD == len(stored) + result["dropped_total"]
    assert result["sent"] == len(stored)
    assert (0, 0) == (result["buffered"], result["in_flight"])


class CountingReceiver:
    """Answers every insert at once and only counts its lines: unlike the pure-Python fake
    (~20 000 rows/s), it never limits how fast a worker can ship."""

    def __init__(self) -> None:
        self.lines = 0
        counts = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = zlib.decompress(body, 47)
                counts.lines += body.count(b"\n") + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.slow
def test_a_thread_logging_flat_out_does_not_starve_the_worker() -> None:
    """A loop logging flat out with 1 % exceptions: formatting a traceback, loguru stats the
    source file, releasing the GIL for an instant, and CPython hands it straight back to the
    logging thread. Without the sink's yields the worker got few turns (the scenario with
    yield_gil=False sent 2 200-3 000 of 20 000 while the loop ran, on Python 3.10, 3.11 and
    3.13 here); with them it keeps pace (19 500-19 700)."""
    n = 20_000
    receiver = CountingReceiver()
    try:
        run = run_scenario("busy_thread", receiver.url, n=n, exc_every=100)
    finally:
        receiver.close()
    result = run.result
    assert (n, 0, n) == (result["sent"], result["dropped_total"], receiver.lines)
    assert result["sent_while_logging"] >= n // 2, result


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest", "block"])
def test_threads_overflowing_the_buffer_keep_every_record_accounted(
    black_hole: str, overflow: str
) -> None:
    """A hung server and a 100-record buffer: received == logged == sent + dropped + held."""
    sink = VLogsSink(
        black_hole,
        buffer_size=100,
        batch_size=100,
        overflow=overflow,
        block_timeout=0.0,
        flush_interval=60.0,
        shutdown_timeout=0.2,
        warn_interval=3600.0,
    )
    logger.add(sink, format="{message}")
    threads, per_thread = 8, 100

    def produce(t: int) -> None:
        for i in range(per_thread):
            logger.info("r", t=t, i=i)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10.0)
    stats = sink.stats()
    # Nothing can be sent: at most one batch in flight and a full buffer; the rest is dropped.
    assert stats["dropped_total"] >= threads * per_thread - 200
    assert threads * per_thread == stats["received"]
    assert stats["received"] == (
        stats["sent"] + stats["dropped_total"] + stats["buffered"] + stats["in_flight"]
    )


# -- 6. asyncio -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_asyncio_tasks_log_without_blocking_the_event_loop(server: FakeVictoriaLogs) -> None:
    """200 tasks with contextualize() while a send hangs: no call or loop tick stalls; all arrive."""
    tasks, steps, hold = 200, 10, 1.0
    server.delay_next(1, hold)  # the first request hangs: a send on the loop would stall it 1 s
    logger.add(VLogsSink(server.url, batch_size=250, flush_interval=0.05))
    worst_call = worst_tick = 0.0

    async def request(request_id: int) -> None:
        nonlocal worst_call
        with logger.contextualize(request_id=request_id):
            for step in range(steps):
                started = time.perf_counter()
                logger.info("step {}", step, step=step)
                worst_call = max(worst_call, time.perf_counter() - started)
                await asyncio.sleep(0)

    async def heartbeat(done: asyncio.Event) -> None:
        nonlocal worst_tick
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst_tick = max(worst_tick, now - last)
            last = now

    async def main() -> None:
        done = asyncio.Event()
        beat = asyncio.create_task(heartbeat(done))
        await asyncio.gather(*(request(r) for r in range(tasks)))
        done.set()
        await beat
        await logger.complete()

    asyncio.run(main())
    # Generous bounds (a loaded 2-core CI box stalls a thread for tens of ms): they catch
    # network I/O on the loop (a whole `hold`), not slowness.
    assert worst_call < hold / 4
    assert worst_tick < hold / 4
    stored = Counter((int(row["request_id"]), int(row["step"])) for row in server.rows())
    assert Counter({(r, s): 1 for r in range(tasks) for s in range(steps)}) == stored


@pytest.mark.parametrize("down", ["refused", "hung"])
def test_awaited_complete_with_the_server_down_returns_within_timeout(
    black_hole: str, down: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """`await logger.complete()` with no server answering returns after about `timeout`."""
    timeout = 0.5
    url = closed_port_url() if down == "refused" else black_hole
    sink = VLogsSink(url, timeout=timeout, shutdown_timeout=0.5, flush_interval=60.0)
    logger.add(sink)

    async def main() -> float:
        for i in range(10):
            logger.info("record {}", i)
        started = time.perf_counter()
        await logger.complete()
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    assert elapsed < timeout + 1.0
    assert 10 == sink.stats()["buffered"] + sink.stats()["in_flight"]
    assert "sending failed, will retry" in capfd.readouterr().err


# -- 7. recursion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("enqueue", [False, True])
def test_stdlib_routed_into_loguru_ships_the_apps_records_never_the_sinks_traffic(
    server: FakeVictoriaLogs, enqueue: bool
) -> None:
    """InterceptHandler at NOTSET: the app's urllib3 records arrive, the worker's never exist."""
    n = 5
    run = run_scenario("recursion", server.url, enqueue=enqueue, n=n, app_http=True)
    rows = server.rows()
    own = [row for row in rows if not row["logger"].startswith("urllib3")]
    assert Counter(
        {
            f"{kind} {who} {i}": 1
            for kind in ("stdlib", "loguru")
            for who in ("parent", "fork")
            for i in range(n)
        }
    ) == Counter(row["_msg"] for row in own)
    # The application's own GET (parent and fork child) logged on their main threads, shipped.
    http = [row for row in rows if row["logger"].startswith("urllib3")]
    assert 2 == len({row["process"] for row in http})
    assert {"MainThread"} == {row["thread_name"] for row in http}
    # The worker's urllib3 records never even reached loguru (filtered, not refused by the sink).
    assert [] == [seen for seen in run.result["seen_urllib3"] if not seen.endswith("@MainThread")]
    assert "loguru-vlogs-worker" not in run.result["seen_threads"]
    assert {} == run.result["dropped"]
    assert 0 == run.result["fork_code"]
    assert "" == run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("enqueue", [False, True])
def test_a_dead_server_with_intercepted_logging_neither_storms_nor_deadlocks(enqueue: bool) -> None:
    """50 records, each followed by complete() under loguru's lock: two stderr lines, prompt exit."""
    run = run_scenario("recursion", closed_port_url(), enqueue=enqueue, n=50, app_http=False)
    lines = run.stderr.splitlines()
    assert 2 == len(lines), run.stderr
    assert "sending failed, will retry" in lines[0]
    assert lines[1].startswith("loguru-vlogs: 100 records could not be delivered")
    assert run.result["elapsed"] < 10.0
    assert run.elapsed < 20.0


# -- 8. gunicorn-style pre-fork -----------------------------------------------------------------


def test_prefork_workers_forked_after_the_sink_was_added_deliver_each_record_once(
    server: FakeVictoriaLogs,
) -> None:
    """A master with a sink forks 4 workers that log and exit: every record arrives once."""
    n, workers = 25, 4
    run = run_scenario("prefork", server.url, workers=workers, n=n)
    whos = ["master", "master-after", *(f"worker-{w}" for w in range(workers))]
    assert expected(n, whos) == arrived(server)
    assert [0] * workers == run.result["codes"]
    assert (0, 2 * n) == (run.result["master_sent"], run.result["master_buffered"])
    assert workers == len(pids_of(server, "worker-"))
    assert "" == run.stderr
