"""Code that runs inside child processes: importable by name, so spawn and forkserver find it."""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from loguru import logger as _loguru_logger

#: The logger tasks use. Pool workers started by spawn/forkserver get the parent's logger from
#: :func:`set_logger` (loguru's documented pattern); fork workers inherit the global one.
logger: Any = _loguru_logger


def set_logger(logger_: Any) -> None:
    """Pool initializer: use the logger pickled from the parent."""
    global logger  # noqa: PLW0603 - loguru's documented multiprocessing recipe
    logger = logger_


def log_records(log: Any, who: str, n: int) -> None:
    """Log ``n`` records, each identified by ``(who, i)`` and the emitting pid."""
    pid = os.getpid()
    for i in range(n):
        log.bind(who=who, i=i, pid=pid).info("record {} from {}", i, who)


def child(log: Any, who: str, n: int, complete: bool) -> None:
    """``Process`` target: log, optionally ``logger.complete()``, return (the process exits)."""
    log_records(log, who, n)
    if complete:
        log.complete()


def task(args: tuple[str, int, bool]) -> int:
    """Pool task: log through the worker's logger, optionally complete; returns the worker pid."""
    who, n, complete = args
    log_records(logger, who, n)
    if complete:
        logger.complete()
    return os.getpid()


def task50(k: int) -> int:
    """Pool task ``k``: log 50 records as ``task-K`` (no complete()); returns the worker pid."""
    log_records(logger, f"task-{k}", 50)
    return os.getpid()


def child_with_late_thread(log: Any, who: str, n: int, late: float) -> None:
    """``Process`` target that returns while a non-daemon thread it started is still working.

    The thread logs ``n`` records ``late`` seconds after the target returned: after
    multiprocessing ran its exit finalizers, before it joins the thread and calls os._exit.
    """
    log.bind(who=who, i=0, pid=os.getpid()).info("before the target returns")

    def finish_the_job() -> None:
        time.sleep(late)  # the rest of the job: the scenario, not a synchronisation
        for i in range(1, n + 1):
            log.bind(who=who, i=i, pid=os.getpid()).info("after the target returned")

    threading.Thread(target=finish_the_job, name="still-working").start()


#: An application-wide executor, never shut down by the application: Python stops its
#: threads at exit (threading's exit callbacks), after multiprocessing's finalizers ran.
_EXECUTOR: concurrent.futures.ThreadPoolExecutor | None = None


def child_with_executor(log: Any, who: str, n: int) -> None:
    """``Process`` target that logs from a ThreadPoolExecutor it leaves running."""
    global _EXECUTOR  # noqa: PLW0603 - the long-lived executor of a real application
    _EXECUTOR = concurrent.futures.ThreadPoolExecutor(2)
    _EXECUTOR.submit(log_records, log, who, n).result()


def run_scenario(scenarios: Mapping[str, Callable[..., Any]], argv: list[str]) -> None:
    """``script SCENARIO URL [JSON params]``: run it, print its result as one JSON line."""
    scenario, url = argv[1], argv[2]
    params = json.loads(argv[3]) if len(argv) > 3 else {}
    _loguru_logger.remove()
    result = scenarios[scenario](url, **params)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
