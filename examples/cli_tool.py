"""A short command-line tool: it logs and exits at once, and every line still arrives.

    python examples/cli_tool.py --url http://127.0.0.1:9428 --items 20

No ``logger.complete()`` and no ``logger.remove()``: the sink's exit hook sends what is
buffered within ``shutdown_timeout`` (here 2 s). With the server down the tool still exits
after about that long and stderr says how many records could not be delivered.
"""

from __future__ import annotations

import argparse
import os
import sys

from loguru import logger

from loguru_vlogs import VLogsSink


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Process some items and log each one.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    parser.add_argument("--items", type=int, default=20, help="how many items to process")
    args = parser.parse_args(argv)

    logger.remove()  # no console output: this tool only ships its log
    logger.add(VLogsSink(url=args.url, service="example-cli-tool", shutdown_timeout=2.0))
    for item in range(args.items):
        logger.info("processed item {}", item, item=item)
    return 0


if __name__ == "__main__":
    sys.exit(main())
