"""A disk spool for an unreliable network: records wait on disk while the server is away.

    python examples/spool.py --url http://127.0.0.1:9428 --spool-dir /tmp/app-spool

With ``spool_dir`` the sink writes what the server cannot take yet to files in that
directory and sends them, oldest first, once the server is back; a later process with the
same directory sends what an earlier one left. VLOGS_SPOOL_DIR sets it from the environment.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile

from loguru import logger

from loguru_vlogs import VLogsSink

RECORDS = 10


def main() -> int:
    parser = argparse.ArgumentParser(description="Ship through a disk spool.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    parser.add_argument("--spool-dir", default=os.environ.get("VLOGS_SPOOL_DIR"))
    args = parser.parse_args()

    if "spool_dir" not in inspect.signature(VLogsSink).parameters:
        print("this version of loguru-vlogs has no spool_dir option yet: nothing to show")
        return 0
    spool_dir = args.spool_dir or tempfile.mkdtemp(prefix="loguru-vlogs-spool-")
    logger.remove()
    sink = VLogsSink(url=args.url, service="example-spool", spool_dir=spool_dir)
    logger.add(sink)
    for i in range(RECORDS):
        logger.info("measurement {}", i, seq=i)
    logger.complete()
    stats = sink.stats()
    print(f"spool in {spool_dir}: sent {stats['sent']} records, dropped {stats['dropped_total']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
