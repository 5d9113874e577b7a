"""Several endpoints: spread batches over a VictoriaLogs cluster's vlinsert nodes.

    python examples/cluster.py --url http://vlinsert-1:9428,http://vlinsert-2:9428

``url`` may be a list: batches go round robin to the healthy endpoints, and an endpoint
that fails is skipped for a backoff period while the others carry the load. (Behind a
load balancer or vmauth, give its single URL instead.) VLOGS_URL takes the same
comma-separated list.
"""

from __future__ import annotations

import argparse
import os

from loguru import logger

from loguru_vlogs import VLogsSink

RECORDS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description="Ship to several endpoints.")
    parser.add_argument(
        "--url",
        default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"),
        help="comma-separated base URLs",
    )
    args = parser.parse_args()
    urls = [u.strip() for u in args.url.split(",") if u.strip()]

    logger.remove()
    # Small batches only so that this short example visibly uses every endpoint.
    sink = VLogsSink(url=urls, service="example-cluster", batch_size=10)
    logger.add(sink)
    for i in range(RECORDS):
        logger.info("event {}", i, seq=i)
    logger.complete()
    stats = sink.stats()
    print(f"{len(urls)} endpoints: sent {stats['sent']} records in {stats['requests']} requests")


if __name__ == "__main__":
    main()
