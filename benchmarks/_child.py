"""Measurements that need a fresh interpreter, run by ``benchmarks/run.py``.

``python benchmarks/_child.py memory '{"url": ..., "n": 100000}'`` prints one JSON line: the
resident memory before and after the buffer took ``n`` records while the server is down.

``python benchmarks/_child.py exit '{"sink": "vlogs"|"noop", "url": ..., "n": 1000,
"shutdown_timeout": 1.0}'`` is the short script of the exit-latency figure: it logs ``n`` records
and exits (the parent times the whole process).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any

from _workload import LoguruMix


def rss_bytes() -> int:
    """Resident set size now (Linux), else the peak (``ru_maxrss``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def memory(url: str, n: int) -> dict[str, Any]:
    from loguru import logger

    from loguru_vlogs import VLogsSink

    warm = 2000
    logger.remove()
    sink = VLogsSink(
        url,
        buffer_size=n + 2 * warm,
        buffer_bytes=1 << 31,
        shutdown_timeout=0.1,
        warn_interval=3600.0,
    )
    logger.add(sink, backtrace=False, diagnose=False)
    mix = LoguruMix(logger)
    # Warm up: the worker has started, failed once and holds its first batch in flight.
    mix.burst(0, warm)
    _wait(lambda: sink.stats()["failed_requests"] >= 1, 10.0)
    gc.collect()
    before = sink.stats()
    rss_before = rss_bytes()
    mix.burst(warm, warm + n)
    gc.collect()
    after = sink.stats()
    rss_after = rss_bytes()
    held_before = before["buffered"] + before["in_flight"]
    held_after = after["buffered"] + after["in_flight"]
    added = after["buffered"] - before["buffered"]
    result = {
        "records": held_after - held_before,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "line_bytes": (after["buffered_bytes"] - before["buffered_bytes"]) / max(added, 1),
        "dropped": after["dropped_total"],
    }
    logger.remove()
    return result


def exit_script(sink: str, url: str, n: int, shutdown_timeout: float) -> None:
    from loguru import logger

    logger.remove()
    if sink == "vlogs":
        from loguru_vlogs import VLogsSink

        logger.add(
            VLogsSink(url, shutdown_timeout=shutdown_timeout, warn_interval=3600.0),
            backtrace=False,
            diagnose=False,
        )
    else:
        logger.add(lambda _message: None, backtrace=False, diagnose=False)
    LoguruMix(logger).burst(0, n)


def main() -> None:
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    if mode == "memory":
        print(json.dumps(memory(args["url"], args["n"])), flush=True)
    elif mode == "exit":
        exit_script(args["sink"], args["url"], args["n"], args["shutdown_timeout"])
    else:
        raise SystemExit(f"unknown mode: {mode!r}")


if __name__ == "__main__":
    main()
