"""Standard library ``logging`` straight to VictoriaLogs: ``VLogsHandler`` from a dictConfig.

    loguru-vlogs serve &                    # or any VictoriaLogs server
    python examples/stdlib_handler.py --url http://127.0.0.1:9428

No loguru in the program: the handler has the sink's engine and fields. The console gets the
usual text line; VictoriaLogs gets ``_msg`` alone, with the level, logger, source location and
every ``extra=`` key as fields of their own.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    args = parser.parse_args()

    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"console": {"format": "%(levelname)s %(name)s: %(message)s"}},
            "handlers": {
                "console": {"class": "logging.StreamHandler", "formatter": "console"},
                "vlogs": {
                    "class": "loguru_vlogs.VLogsHandler",
                    "url": args.url.split(","),
                    "service": "example-stdlib-handler",
                    "fields": {"env": "dev"},
                    "level": "INFO",
                },
            },
            "root": {"level": "DEBUG", "handlers": ["console", "vlogs"]},
        }
    )
    log = logging.getLogger("app.orders")
    log.debug("console only: below the handler's level")
    log.info("order %s paid", 1017, extra={"user_id": 42, "amount": 12.5})
    try:
        {"a": 1}["missing"]
    except KeyError:
        log.exception("payment failed", extra={"request_id": "req-7f3a"})

    # Optional here (the exit hook sends what is left), but it makes the stats below final.
    (handler,) = [h for h in logging.getLogger().handlers if hasattr(h, "stats")]
    handler.flush()
    stats = handler.stats()
    print(f"sent {stats['sent']} records, dropped {stats['dropped_total']}")


if __name__ == "__main__":
    main()
