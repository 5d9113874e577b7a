"""The record mix every figure logs: the same records through loguru and through stdlib logging.

Short messages, 3-5 extras per record (3 bound per request, 0-2 keyword arguments per call) and
1 % of records with an exception (a pre-made one, so raising it costs nothing in the loop).
Record ``i`` is the same in every run, for every sink.
"""

from __future__ import annotations

import logging
from typing import Any

#: Requests whose bound loggers the records rotate through (a power of two: ``i & MASK``).
REQUESTS = 64
_MASK = REQUESTS - 1
#: Every EXC_EVERY-th record carries the exception (1 %).
EXC_EVERY = 100


def _charge(order: int) -> None:
    raise ValueError(f"card declined for order {order}")


def _pay(order: int) -> None:
    try:
        _charge(order)
    except ValueError as exc:
        raise RuntimeError("payment failed") from exc


def make_exception() -> BaseException:
    """A chained exception with a three-frame traceback, raised once."""
    try:
        _pay(1017)
    except RuntimeError as exc:
        return exc
    raise AssertionError("unreachable")  # pragma: no cover


def _bound(i: int) -> dict[str, Any]:
    return {"request_id": f"req-{i:06d}", "user_id": 1000 + i, "path": "/api/orders"}


class LoguruMix:
    """Logs record ``i`` of the mix through a loguru logger (bound loggers made up front)."""

    def __init__(self, logger: Any) -> None:
        self.loggers = [logger.bind(**_bound(i)) for i in range(REQUESTS)]
        self.error = make_exception()

    def burst(self, start: int, stop: int) -> None:
        """Log records ``start`` .. ``stop - 1``."""
        loggers = self.loggers
        error = self.error
        for i in range(start, stop):
            log = loggers[i & _MASK]
            if i % EXC_EVERY == EXC_EVERY - 1:
                log.opt(exception=error).error("payment failed for order {}", i, amount=12.5)
                continue
            kind = i & 3
            if kind == 0:
                log.info("order {} paid", i, amount=12.5, status="ok")  # noqa: PLE1205 - loguru {} style
            elif kind == 1:
                log.info("cache miss for {key}", key=f"user:{i}")
            elif kind == 2:
                log.info("GET /api/orders 200 in {ms:.1f} ms", ms=3.25)
            else:
                log.info("user logged in")


class StdlibMix:
    """The same records through a stdlib ``logging.Logger`` (extras as ``extra=``)."""

    def __init__(self, logger: logging.Logger, static: dict[str, Any] | None = None) -> None:
        self.logger = logger
        # ``static``: what VLogsSink adds as ``fields=`` (here part of every record's extra).
        self.extras = [{**(static or {}), **_bound(i)} for i in range(REQUESTS)]
        self.error = make_exception()

    def burst(self, start: int, stop: int) -> None:
        """Log records ``start`` .. ``stop - 1``."""
        log = self.logger
        extras = self.extras
        error = self.error
        for i in range(start, stop):
            bound = extras[i & _MASK]
            if i % EXC_EVERY == EXC_EVERY - 1:
                log.error(
                    "payment failed for order %s",
                    i,
                    exc_info=error,
                    extra={**bound, "amount": 12.5},
                )
                continue
            kind = i & 3
            if kind == 0:
                log.info("order %s paid", i, extra={**bound, "amount": 12.5, "status": "ok"})
            elif kind == 1:
                key = f"user:{i}"
                log.info("cache miss for %s", key, extra={**bound, "key": key})
            elif kind == 2:
                log.info("GET /api/orders 200 in %.1f ms", 3.25, extra={**bound, "ms": 3.25})
            else:
                log.info("user logged in", extra=bound)
