"""Shutdown scenarios for ``tests/test_signals.py``, each run in a fresh interpreter.

``python -m tests.proc_scripts.signals SCENARIO URL '{"param": value}'`` adds a ``VLogsSink``
on URL whose records carry ``run_id``, logs, and then either prints ``READY`` and waits to be
signalled (the test sends the signal), or runs processes to the end and prints one JSON line.
Records are identified by ``(who, i)``.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

from loguru import logger

from loguru_vlogs import VLogsSink
from tests.proc_scripts import targets
from tests.proc_scripts.targets import log_records

warnings.filterwarnings(
    "ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning
)

#: Longest a scenario waits for its signal; the test kills it long before.
WAIT = 60.0


def add_sink(url: str, run_id: str, **options: Any) -> VLogsSink:
    """A sink that sends only at shutdown (``flush_interval`` 60 s, ``batch_size`` 1000)."""
    options.setdefault("flush_interval", 60.0)
    options.setdefault("timeout", 1.0)
    sink = VLogsSink(url, fields={"run_id": run_id}, **options)
    logger.add(sink)
    return sink


def ready() -> None:
    """Tell the test it may send its signal now."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()


def ready_and_wait(how: str) -> None:
    """Say READY, then wait for the signal: in Python (``sleep``); in C code that does not
    return to Python when a signal arrives (glibc's ``system()`` retries its wait on EINTR;
    its shell says READY, so the main thread is in there); or logging flat out (``log``: the
    signal lands inside the sink's code at times)."""
    if how == "c":
        sys.stdout.flush()
        ctypes.CDLL(None).system(b"echo READY; exec sleep 60")
        return
    ready()
    if how == "sleep":
        time.sleep(WAIT)
    elif how == "log":
        i = 0
        while True:
            logger.bind(who="busy", i=i).info("busy {}", i)
            i += 1


# -- a process that waits for SIGTERM ---------------------------------------------------------


def wait_for_signal(
    url: str, run_id: str, n: int, how: str = "sleep", options: dict[str, Any] | None = None
) -> None:
    """Log ``n`` records, then wait for the test's signal."""
    add_sink(url, run_id, **(options or {}))
    log_records(logger, "main", n)
    ready_and_wait(how)


def stdlib_handler(url: str, run_id: str, n: int) -> None:
    """VLogsHandler on stdlib logging (no loguru sink): the same SIGTERM handling."""
    import logging

    from loguru_vlogs import VLogsHandler

    handler = VLogsHandler(url, fields={"run_id": run_id}, flush_interval=60.0, timeout=1.0)
    std = logging.getLogger("signals.stdlib")
    std.addHandler(handler)
    std.setLevel(logging.INFO)
    for i in range(n):
        std.info("record %s", i, extra={"who": "stdlib", "i": i})
    ready_and_wait("sleep")


def app_handler_first(url: str, run_id: str, n: int) -> None:
    """The application's SIGTERM handler (``sys.exit(0)``) is installed before the sink."""

    def leave(signum: int, frame: FrameType | None) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, leave)
    add_sink(url, run_id)
    assert signal.getsignal(signal.SIGTERM) is leave
    log_records(logger, "main", n)
    ready()
    time.sleep(WAIT)


def framework_later(url: str, run_id: str, n: int) -> None:
    """A framework takes SIGTERM after the sink (uvicorn's ``capture_signals``): its handler
    ends the serving loop; then it restores the handler it found and raises the signal again."""
    add_sink(url, run_id)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    log_records(logger, "serving", n)
    ready()
    stop.wait(WAIT)  # the server runs until the signal
    log_records(logger, "shutting-down", n)
    signal.signal(signal.SIGTERM, previous)
    signal.raise_signal(signal.SIGTERM)
    time.sleep(WAIT)


def sighup_recipe(url: str, run_id: str, n: int) -> None:
    """docs/production.md's recipe: SIGHUP ends the process through sys.exit, so the exit
    hook flushes (the sink does not take SIGHUP itself)."""
    signal.signal(signal.SIGHUP, lambda signum, frame: sys.exit(128 + signum))
    add_sink(url, run_id)
    log_records(logger, "main", n)
    ready()
    time.sleep(WAIT)


def sink_in_a_thread(url: str, run_id: str, n: int) -> None:
    """The first sink is made outside the main thread: SIGTERM keeps its default action."""
    thread = threading.Thread(target=add_sink, args=(url, run_id))
    thread.start()
    thread.join()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    log_records(logger, "main", n)
    ready()
    time.sleep(WAIT)


def event_loop_first(url: str, run_id: str, n: int) -> None:
    """An asyncio loop took the signal wakeup fd (add_signal_handler) before the sink was made:
    it keeps it; the sink's handler still takes SIGTERM."""
    import asyncio

    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    theirs = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(theirs)
    add_sink(url, run_id)
    assert theirs == signal.set_wakeup_fd(theirs)
    log_records(logger, "main", n)
    ready()
    loop.run_until_complete(asyncio.sleep(WAIT))


# -- pools: run to the end ----------------------------------------------------------------------


def pool(url: str, run_id: str, method: str, kind: str) -> dict[str, Any]:
    """``with Pool(3) as p: p.map(task, range(30))`` (terminate() on exit), each task logging
    50 records through the sink without enqueue; or the same with ProcessPoolExecutor."""
    ctx: Any = multiprocessing.get_context(method)
    add_sink(url, run_id)
    init: dict[str, Any] = {}
    if method != "fork":  # loguru's recipe: hand the logger (and its sink) to the workers
        init = {"initializer": targets.set_logger, "initargs": (logger,)}
    if kind == "pool":
        with ctx.Pool(3, **init) as workers:
            pids = workers.map(targets.task50, range(30))
    elif kind == "executor":
        with concurrent.futures.ProcessPoolExecutor(3, mp_context=ctx, **init) as executor:
            pids = list(executor.map(targets.task50, range(30)))
    else:  # billiard, Celery's fork of multiprocessing
        import billiard  # type: ignore[import-not-found]

        with billiard.get_context(method).Pool(3, **init) as workers:
            pids = workers.map(targets.task50, range(30))
    return {"workers": len(set(pids))}


SCENARIOS: dict[str, Callable[..., Any]] = {
    "wait_for_signal": wait_for_signal,
    "app_handler_first": app_handler_first,
    "stdlib_handler": stdlib_handler,
    "framework_later": framework_later,
    "sighup_recipe": sighup_recipe,
    "sink_in_a_thread": sink_in_a_thread,
    "event_loop_first": event_loop_first,
    "pool": pool,
}


def main(argv: list[str]) -> None:
    targets.run_scenario(SCENARIOS, argv)


if __name__ == "__main__":
    main(sys.argv)
