"""Route the standard library's ``logging`` into loguru (InterceptHandler), then to VictoriaLogs.

    python examples/stdlib_intercept.py --url http://127.0.0.1:9428

Libraries that use ``logging`` end up in the same place as your loguru records. This is
loguru's documented InterceptHandler recipe; the stdlib logger's name is kept as the
``stdlib_logger`` field. The sink never ships its own HTTP traffic: urllib3's records made
on the sink's worker thread are filtered out, so ``level=0`` does not loop.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os

from loguru import logger

from loguru_vlogs import VLogsSink


def charge_card() -> None:
    raise TimeoutError("issuer did not answer")


class InterceptHandler(logging.Handler):
    """Hand each stdlib record to loguru, at the caller's frame and level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # Find the frame that called logging, so loguru reports the right module and line.
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.bind(stdlib_logger=record.name).opt(depth=depth, exception=record.exc_info).log(
            level, record.getMessage()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="stdlib logging -> loguru -> VictoriaLogs.")
    parser.add_argument("--url", default=os.environ.get("VLOGS_URL", "http://127.0.0.1:9428"))
    args = parser.parse_args()

    logger.remove()
    logger.add(VLogsSink(url=args.url, service="example-stdlib"), level="DEBUG")
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)

    payments = logging.getLogger("app.payments")
    payments.info("charging card for order %s", 1017)
    payments.warning("card issuer slow: %d ms", 930)
    try:
        charge_card()
    except TimeoutError:
        payments.exception("charge failed")
    logger.info("loguru and logging records share one sink")
    logger.complete()


if __name__ == "__main__":
    main()
