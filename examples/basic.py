"""The basics: add the sink, log with bound fields, keyword extras, context and an exception.

    loguru-vlogs serve &                    # or any VictoriaLogs server
    python examples/basic.py --url http://127.0.0.1:9428

The URL also comes from VLOGS_URL. Each extra becomes its own field in VictoriaLogs;
query them with e.g. ``service:="example-basic" AND user_id:=42``.
"""

from __future__ import annotations

import argparse
import os

from loguru import logger

from loguru_vlogs import VLogsSink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    args = parser.parse_args()

    sink = VLogsSink(url=args.url, service="example-basic", fields={"env": "dev"})
    logger.add(sink, level="INFO")

    logger.info("service starting")
    logger.bind(user_id=42).info("order {} paid", 1017, amount=12.5, currency="EUR")
    with logger.contextualize(request_id="req-7f3a"):
        logger.warning("slow request", duration_ms=812)
        try:
            {"a": 1}["missing"]
        except KeyError:
            logger.exception("payment failed")

    # Optional here (the exit hook sends what is left), but it makes the stats below final.
    logger.complete()
    stats = sink.stats()
    print(f"sent {stats['sent']} records, dropped {stats['dropped_total']}")


if __name__ == "__main__":
    main()
