"""An asyncio service: each request's records carry its request id via ``contextualize``.

    python examples/asyncio_service.py --url http://127.0.0.1:9428

``logger.contextualize()`` stores the fields in a context variable, so concurrent tasks
never mix them up. ``await logger.complete()`` returns once the server has every record
logged before it (the sink does its work when called, then returns a finished awaitable).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random

from loguru import logger

from loguru_vlogs import VLogsSink

REQUESTS = 10


async def handle(request_id: str, path: str) -> int:
    with logger.contextualize(request_id=request_id):
        logger.info("request started", path=path)
        await asyncio.sleep(random.uniform(0.001, 0.02))  # simulated work
        logger.info("request finished", status=200)
    return 200


async def serve(url: str) -> None:
    logger.remove()
    logger.add(VLogsSink(url=url, service="example-asyncio"))
    await asyncio.gather(*(handle(f"req-{i:03d}", f"/items/{i}") for i in range(REQUESTS)))
    await logger.complete()
    print(f"handled {REQUESTS} requests")


def main() -> None:
    parser = argparse.ArgumentParser(description="Concurrent requests with their own ids.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    asyncio.run(serve(parser.parse_args().url))


if __name__ == "__main__":
    main()
