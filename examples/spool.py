"""A disk spool for an unreliable network: records wait on disk while the server is away.

Run it once with the server down, then again with it up:

    python examples/spool.py --url http://127.0.0.1:1 --spool-dir /tmp/app-spool
    python examples/spool.py --url http://127.0.0.1:9428 --spool-dir /tmp/app-spool

The first run cannot reach the server: at exit its records go to the spool directory
instead of being lost. The second run (a restarted process) sends what the first one left,
oldest first, then its own records. ``loguru-vlogs spool status|send`` works on the same
directory from a shell; VLOGS_SPOOL_DIR sets it from the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from loguru import logger

from loguru_vlogs import VLogsSink

RECORDS = 10


def main() -> int:
    parser = argparse.ArgumentParser(description="Ship through a disk spool.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    parser.add_argument(
        "--spool-dir",
        default=os.environ.get("VLOGS_SPOOL_DIR")
        or os.path.join(tempfile.gettempdir(), "loguru-vlogs-example-spool"),
    )
    args = parser.parse_args()

    logger.remove()
    # timeout: give up on an unreachable server quickly in this demonstration.
    sink = VLogsSink(url=args.url, service="example-spool", spool_dir=args.spool_dir, timeout=1.0)
    handler = logger.add(sink)
    for i in range(RECORDS):
        logger.info("measurement {}", i, seq=i, pid=os.getpid())
    logger.remove(handler)  # sends, or keeps on disk what the server cannot take
    stats = sink.stats()
    print(
        f"sent {stats['sent']} records ({stats['spool_sent']} of them from the spool), "
        f"{stats['spool_pending']} waiting in {args.spool_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
