"""``enqueue=True`` with a process pool: workers log through a queue to the parent's sink.

    python examples/enqueue_pool.py --url http://127.0.0.1:9428

With ``enqueue=True`` only the parent process owns the sink: children put their records on
loguru's multiprocessing queue. A child must call ``logger.complete()`` before its task
returns (the pool may terminate it right after), and the parent calls it after the pool is
done, which waits until the server has the records. The "spawn" context works the same on
Linux, macOS and Windows; the logger travels to the children through the pool initializer.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from typing import TYPE_CHECKING

from loguru import logger

from loguru_vlogs import VLogsSink

if TYPE_CHECKING:
    from loguru import Logger

TASKS = 8
LINES_PER_TASK = 5


def set_logger(parent_logger: Logger) -> None:
    """Pool initializer: use the parent's logger (its handlers write to the shared queue)."""
    global logger  # noqa: PLW0603 - loguru's documented recipe for spawned children
    logger = parent_logger


def work(task: int) -> int:
    for step in range(LINES_PER_TASK):
        logger.info("task {} step {}", task, step, task=task, step=step, pid=os.getpid())
    logger.complete()  # the records are on the queue before the task reports back
    return task * task


def main() -> None:
    parser = argparse.ArgumentParser(description="Log from a process pool through enqueue=True.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    logger.remove()
    sink = VLogsSink(url=args.url, service="example-enqueue-pool")
    logger.add(sink, enqueue=True, context=context)

    logger.info("starting {} tasks", TASKS)
    with context.Pool(2, initializer=set_logger, initargs=(logger,)) as pool:
        results = pool.map(work, range(TASKS))
        pool.close()
        pool.join()
    logger.info("results: {}", results)
    logger.complete()  # waits for the queue, then for the server
    stats = sink.stats()
    print(f"sent {stats['sent']} records, dropped {stats['dropped_total']}")


if __name__ == "__main__":
    main()
