"""Pre-fork servers (gunicorn, uWSGI, ...): add the sink in the master, fork the workers.

    python examples/gunicorn_style.py --url http://127.0.0.1:9428 --workers 3

A forked worker gets a copy of the sink; the sink notices the fork, drops the copied
buffer (the master sends its own records) and starts its own sending thread on the first
record. Workers that leave through ``os._exit`` (as pre-fork servers often do) skip exit
hooks, so they call ``logger.complete()`` first; ``sys.exit`` would run the hooks too.
Fork before the first record: the master then has no sending thread yet to copy.
"""

from __future__ import annotations

import argparse
import os
import sys

from loguru import logger

from loguru_vlogs import VLogsSink

LINES_PER_WORKER = 5


def worker(number: int) -> None:
    for request in range(LINES_PER_WORKER):
        logger.info("worker {} handled request {}", number, request, worker=number)


def main() -> int:
    parser = argparse.ArgumentParser(description="Log from forked workers.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    if not hasattr(os, "fork"):
        print("os.fork is not available on this platform")
        return 0

    logger.remove()
    logger.add(VLogsSink(url=args.url, service="example-prefork"))

    children = []
    for number in range(args.workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                worker(number)
                logger.complete()  # os._exit skips exit hooks: deliver now
            except BaseException:  # a worker must never return into the master's code
                code = 1
            os._exit(code)
        children.append(pid)

    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    logger.info("{} workers exited, {} failed", len(children), failed, failed=failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
