"""Process-model scenarios, each run in a fresh interpreter by ``tests/test_processes.py``.

``python -m tests.proc_scripts.run SCENARIO URL '{"param": value}'`` logs records identified by
``(who, i)`` to a ``VLogsSink`` on URL, starts and exits processes the way the scenario says, and
prints one JSON object (what only this process can see: pids, exit codes, ``stats()``) on its
last stdout line. The test counts what reached the receiver.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import urllib3
from loguru import logger

from loguru_vlogs import VLogsSink
from tests.proc_scripts import targets
from tests.proc_scripts.targets import log_records

# Python 3.12+ warns on every fork of a process that runs threads (ours: the sink's worker,
# loguru's writer). The scenarios fork on purpose; keep stderr for what the sink says.
warnings.filterwarnings(
    "ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning
)

#: Longest a scenario waits for one child before killing it and reporting ``None``.
CHILD_TIMEOUT = 30.0


def wait_pid(pid: int, timeout: float = CHILD_TIMEOUT) -> int | None:
    """Exit code of a raw ``os.fork`` child, or None (killed) if it did not end in time."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)


def join(process: Any, timeout: float = CHILD_TIMEOUT) -> int | None:
    """Exit code of a multiprocessing child, or None (killed) if it did not end in time."""
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    code: int | None = process.exitcode
    return code


def fork_child(body: Callable[[], None], exit_with: str) -> int:
    """``os.fork()``; the child runs ``body`` and leaves through ``os._exit`` or ``sys.exit``."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    try:
        body()
    except BaseException:
        os._exit(70)
    if exit_with == "os._exit":
        os._exit(0)
    sys.exit(0)  # unwinds to the interpreter: atexit hooks run, as in a gunicorn worker


def add_sink(url: str, **options: Any) -> VLogsSink:
    """A sink that sends only when asked or at exit (records stay buffered across forks)."""
    options.setdefault("flush_interval", 60.0)
    return VLogsSink(url, **options)


# -- 1. enqueue=True: children hand records to the parent's sink ------------------------------


def enqueue(url: str, context: str | None, n: int) -> dict[str, Any]:
    """enqueue=True: Process children and `with Pool` tasks log, complete(), the parent sends."""
    ctx: Any = multiprocessing.get_context(context)  # typeshed: only literal names narrow it
    sink = add_sink(url)
    logger.add(sink, enqueue=True, context=ctx)
    log_records(logger, "parent", n)
    processes = [
        ctx.Process(target=targets.child, args=(logger, f"process-{k}", n, True)) for k in range(2)
    ]
    for p in processes:
        p.start()
    codes = [join(p) for p in processes]
    # Leaving the `with` block terminates the workers: only what the tasks completed survives.
    with ctx.Pool(2, initializer=targets.set_logger, initargs=(logger,)) as pool:
        jobs = [(f"task-{k}", n, True) for k in range(4)]
        pool_pids = pool.map_async(targets.task, jobs, chunksize=1).get(CHILD_TIMEOUT)
    logger.complete()
    stats = sink.stats()
    return {
        "pid": os.getpid(),
        "method": ctx.get_start_method(),
        "codes": codes,
        "child_pids": [p.pid for p in processes],
        "pool_pids": pool_pids,
        "sent": stats["sent"],
        "dropped_total": stats["dropped_total"],
    }


# -- 2. no enqueue, fork: every child has its own sink -----------------------------------------


def fork(url: str, n: int) -> dict[str, Any]:
    """No enqueue, fork: raw forks, a Process and two Pools, each forked with records buffered."""
    ctx = multiprocessing.get_context("fork")
    sink = add_sink(url)
    logger.add(sink)
    log_records(logger, "parent", n)  # still buffered at every fork below
    buffered_at_fork = sink.stats()["buffered"]

    def then_complete() -> None:
        log_records(logger, "fork-complete-os_exit", n)
        logger.complete()

    codes = [
        wait_pid(fork_child(then_complete, "os._exit")),
        wait_pid(fork_child(lambda: log_records(logger, "fork-sys_exit", n), "sys.exit")),
    ]
    # Raw forks first: a raw fork child running atexit would also run the multiprocessing
    # finalizers (pools) it inherited.
    process = ctx.Process(target=targets.child, args=(logger, "process-no-complete", n, False))
    process.start()
    codes.append(join(process))
    pool = ctx.Pool(2)
    jobs = [(f"pool-close-{k}", n, False) for k in range(2)]
    pool_pids = pool.map_async(targets.task, jobs, chunksize=1).get(CHILD_TIMEOUT)
    pool.close()
    pool.join()
    with ctx.Pool(2) as pool:
        jobs = [(f"pool-with-complete-{k}", n, True) for k in range(2)]
        pool_pids += pool.map_async(targets.task, jobs, chunksize=1).get(CHILD_TIMEOUT)
    stats = sink.stats()
    log_records(logger, "parent-after", n)  # delivered by the exit hook, with the first n
    return {
        "pid": os.getpid(),
        "codes": codes,
        "pool_pids": pool_pids,
        "buffered_at_fork": buffered_at_fork,
        "parent_sent": stats["sent"],
        "parent_buffered": stats["buffered"],
    }


def fork_mid_send(url: str, n: int, hold: float) -> dict[str, Any]:
    """The receiver holds the parent's first request for ``hold`` s; children fork meanwhile."""
    ctx = multiprocessing.get_context("fork")
    sink = add_sink(url, timeout=hold + 5.0)
    logger.add(sink)
    log_records(logger, "parent", n)
    sink.drain(timeout=0.01)  # asks the worker to send now; returns before the held answer
    deadline = time.monotonic() + 5.0
    while sink.stats()["in_flight"] != n and time.monotonic() < deadline:
        time.sleep(0.005)
    # Let the worker get from taking the batch into urllib3 (connection checked out, request
    # written, waiting for the answer): the state a fork must survive.
    time.sleep(0.2)
    before = sink.stats()
    started = time.monotonic()

    def then_complete() -> None:
        log_records(logger, "fork-mid-send", n)
        logger.complete()

    codes = [wait_pid(fork_child(then_complete, "os._exit"), hold + 10.0)]
    process = ctx.Process(target=targets.child, args=(logger, "process-mid-send", n, False))
    process.start()
    codes.append(join(process, hold + 10.0))
    children_elapsed = time.monotonic() - started
    during = sink.stats()
    logger.complete()
    after = sink.stats()
    return {
        "codes": codes,
        "in_flight_at_fork": before["in_flight"],
        "requests_at_fork": before["requests"],
        "requests_when_children_done": during["requests"],
        "children_elapsed": children_elapsed,
        "parent_sent": after["sent"],
    }


def late_thread(url: str, method: str, n: int, late: float) -> dict[str, Any]:
    """A child whose non-daemon thread logs after the target returned (after the exit flush)."""
    ctx: Any = multiprocessing.get_context(method)
    logger.add(add_sink(url))
    process = ctx.Process(
        target=targets.child_with_late_thread, args=(logger, f"late-{method}", n, late)
    )
    process.start()
    return {"codes": [join(process)]}


def executor_child(url: str, method: str, n: int, wait: float) -> dict[str, Any]:
    """A child that logs from a ThreadPoolExecutor it never shuts down, then returns."""
    ctx: Any = multiprocessing.get_context(method)
    logger.add(add_sink(url))
    process = ctx.Process(
        target=targets.child_with_executor, args=(logger, f"executor-{method}", n)
    )
    started = time.monotonic()
    process.start()
    code = join(process, wait)
    return {"codes": [code], "child_elapsed": time.monotonic() - started}


# -- 3. no enqueue, spawn / forkserver: the pickled sink works in the child ------------------


def spawn(url: str, method: str, n: int) -> dict[str, Any]:
    """No enqueue, spawn/forkserver: the logger (and sink) pickled into each child."""
    ctx: Any = multiprocessing.get_context(method)
    sink = add_sink(url)
    logger.add(sink)
    log_records(logger, "parent", n)
    # loguru's documented pattern: hand the logger (and its sinks) to the child explicitly.
    processes = [
        ctx.Process(target=targets.child, args=(logger, f"process-{k}", n, False)) for k in range(2)
    ]
    for p in processes:
        p.start()
    codes = [join(p) for p in processes]
    pool = ctx.Pool(2, initializer=targets.set_logger, initargs=(logger,))
    jobs = [(f"pool-close-{k}", n, False) for k in range(2)]
    pool_pids = pool.map_async(targets.task, jobs, chunksize=1).get(CHILD_TIMEOUT)
    pool.close()
    pool.join()
    stats = sink.stats()
    return {
        "pid": os.getpid(),
        "codes": codes,
        "pool_pids": pool_pids,
        "parent_sent": stats["sent"],
        "parent_buffered": stats["buffered"],
    }


# -- 5. threads ---------------------------------------------------------------------------------


def threads(
    url: str, overflow: str, threads: int, per_thread: int, buffer_size: int, pace: float
) -> dict[str, Any]:
    """``threads`` producers log ``per_thread`` records each while one thread loops complete()."""
    sink = VLogsSink(
        url,
        overflow=overflow,
        buffer_size=buffer_size,
        batch_size=min(1000, buffer_size),
        flush_interval=0.1,
        block_timeout=10.0,
        timeout=10.0,
        shutdown_timeout=20.0,
        warn_interval=3600.0,
    )
    logger.add(sink, format="{message}")
    barrier = threading.Barrier(threads + 1)
    done = threading.Event()
    completes = 0

    def produce(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            logger.info("r", t=t, i=i)

    def complete_in_a_loop() -> None:
        nonlocal completes
        barrier.wait()
        while not done.is_set():
            logger.complete()
            completes += 1
            done.wait(pace)  # pacing only: let the producers take loguru's handler lock

    producers = [threading.Thread(target=produce, args=(t,), daemon=True) for t in range(threads)]
    completer = threading.Thread(target=complete_in_a_loop, daemon=True)
    started = time.monotonic()
    for thread in [*producers, completer]:
        thread.start()
    deadline = started + 60.0
    for thread in producers:
        thread.join(max(0.0, deadline - time.monotonic()))
    done.set()
    completer.join(max(0.0, deadline - time.monotonic()) + 1.0)
    hung = [thread.name for thread in [*producers, completer] if thread.is_alive()]
    logging_elapsed = time.monotonic() - started
    if not hung:
        logger.remove()  # sends what is left, within shutdown_timeout
    stats = sink.stats()
    result = {
        "hung": hung,
        "completes": completes,
        "logging_elapsed": logging_elapsed,
        "received": stats["received"],
        "sent": stats["sent"],
        "dropped": stats["dropped"],
        "dropped_total": stats["dropped_total"],
        "buffered": stats["buffered"],
        "in_flight": stats["in_flight"],
    }
    if hung:  # a deadlock: report it rather than hang the interpreter's exit
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        os._exit(3)
    return result


def _raised() -> BaseException:
    try:
        raise ValueError("card declined")
    except ValueError as exc:
        return exc


def busy_thread(url: str, n: int, exc_every: int, yield_gil: bool = True) -> dict[str, Any]:
    """The main thread logs ``n`` records flat out, one in ``exc_every`` with an exception:
    formatting its traceback, loguru stats the source file and so releases the GIL for an
    instant. Reports how much the worker delivered while the loop ran. ``yield_gil=False``
    turns the sink's GIL yields off (to check that this scenario starves the worker then)."""
    if not yield_gil:
        from loguru_vlogs import _buffer

        _buffer._gil_enabled = lambda: False
    sink = VLogsSink(url, batch_size=200, flush_interval=0.05, warn_interval=3600.0)
    logger.add(sink, format="{message}", backtrace=False, diagnose=False)
    pid = os.getpid()
    error = _raised()
    started = time.monotonic()
    for i in range(n):
        log = logger.bind(who="busy", i=i, pid=pid)
        if i % exc_every == exc_every - 1:
            log.opt(exception=error).error("record {} from busy failed", i)
        else:
            log.info("record {} from busy", i)  # noqa: PLE1205 - loguru's {} style
    sent_while_logging = sink.stats()["sent"]
    logging_elapsed = time.monotonic() - started
    logger.complete()
    stats = sink.stats()
    return {
        "sent_while_logging": sent_while_logging,
        "logging_elapsed": logging_elapsed,
        "sent": stats["sent"],
        "dropped_total": stats["dropped_total"],
    }


# -- 7. stdlib logging routed into loguru --------------------------------------------------------


class InterceptHandler(logging.Handler):
    """loguru's README recipe: route stdlib logging into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = sys._getframe(6), 6
        while frame and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back  # type: ignore[assignment]
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def recursion(url: str, enqueue: bool, n: int, app_http: bool) -> dict[str, Any]:
    """Stdlib logging at NOTSET routed into loguru; complete() after each record."""
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.NOTSET, force=True)
    seen: list[tuple[str, str]] = []
    logger.add(lambda m: seen.append((m.record["name"] or "", m.record["thread"].name)), level=0)
    # A generous timeout: a slow answer must not put a "sending failed" line on stderr.
    sink = add_sink(url, timeout=5.0, shutdown_timeout=1.0, warn_interval=60.0)
    logger.add(sink, level="DEBUG", enqueue=enqueue)
    started = time.monotonic()

    def app(who: str) -> None:
        if app_http:
            # The application's own urllib3 traffic, on its own thread: those records are
            # the application's and are shipped like any other.
            urllib3.PoolManager().request("GET", url + "/health", retries=False)
        for i in range(n):
            logging.getLogger("app").info("stdlib %s %d", who, i)
            logger.bind(who=who, i=i).info("loguru {} {}", who, i)
            logger.complete()  # under loguru's lock, while the worker sends (and urllib3 logs)

    app("parent")
    fork_code = None
    if app_http:
        fork_code = wait_pid(fork_child(lambda: app("fork"), "os._exit"))
    stats = sink.stats()
    return {
        "fork_code": fork_code,
        "elapsed": time.monotonic() - started,
        "seen_threads": sorted({thread for _, thread in seen}),
        "seen_urllib3": sorted({f"{name}@{thread}" for name, thread in seen if "urllib3" in name}),
        "dropped": stats["dropped"],
        "sent": stats["sent"],
    }


# -- 8. gunicorn-style pre-fork ------------------------------------------------------------------


def prefork(url: str, workers: int, n: int) -> dict[str, Any]:
    """A master adds the sink and logs, then forks workers that log and exit, as gunicorn does."""
    sink = add_sink(url)
    logger.add(sink)
    log_records(logger, "master", n)
    pids = []
    for w in range(workers):

        def serve(w: int = w) -> None:
            log_records(logger, f"worker-{w}", n)
            if w % 2:  # a worker_exit hook that completes, then a hard exit
                logger.complete()

        # gunicorn's workers leave through sys.exit; odd ones here through os._exit.
        pids.append(fork_child(serve, "os._exit" if w % 2 else "sys.exit"))
    codes = [wait_pid(pid) for pid in pids]
    log_records(logger, "master-after", n)
    stats = sink.stats()
    return {"codes": codes, "master_sent": stats["sent"], "master_buffered": stats["buffered"]}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "enqueue": enqueue,
    "fork": fork,
    "fork_mid_send": fork_mid_send,
    "late_thread": late_thread,
    "executor_child": executor_child,
    "spawn": spawn,
    "threads": threads,
    "busy_thread": busy_thread,
    "recursion": recursion,
    "prefork": prefork,
}


def main(argv: list[str]) -> None:
    targets.run_scenario(SCENARIOS, argv)


if __name__ == "__main__":
    main(sys.argv)
