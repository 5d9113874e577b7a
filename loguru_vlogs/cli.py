"""The ``loguru-vlogs`` command line (also ``python -m loguru_vlogs``)."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from loguru import logger

    from ._sink import VLogsSink
    from .testing import FakeVictoriaLogs, VLogsClient

    server = None
    url = args.url
    if url is None:
        server = FakeVictoriaLogs()
        server.start()
        url = server.url
        print(f"started the built-in VictoriaLogs-compatible receiver at {url}")
    else:
        print(f"using the VictoriaLogs server at {url}")
    run_id = uuid.uuid4().hex[:12]
    try:
        sink = VLogsSink(url=url, service="loguru-vlogs-demo", fields={"run_id": run_id})
        handler = logger.add(sink, level="DEBUG")
        started = time.perf_counter()
        count = _log_burst(args.records)
        logger.complete()
        elapsed = time.perf_counter() - started
        logger.remove(handler)
        stats = sink.stats()
        print(f"logged {count} records in {elapsed * 1000:.0f} ms (logger.complete() included)")
        print(
            f"sent {stats['sent']} in {stats['requests']} requests, "
            f"{stats['bytes_raw']} bytes of JSON as {stats['bytes_sent']} bytes gzip, "
            f"dropped {stats['dropped_total']}"
        )
        client = VLogsClient(url)
        stored = client.wait_for_count(f'run_id:="{run_id}"', count, timeout=10.0)
        print(f"the server stored {stored} of {count} records for run_id={run_id}")
        rows = client.rows(f'run_id:="{run_id}" AND level:="ERROR"', limit=1)
        if rows:
            print("\nan ERROR row as VictoriaLogs returns it:")
            for key, value in rows[0].items():
                shown = value if len(value) < 100 else value[:97] + "..."
                print(f"  {key:22} {shown!r}")
        return 0 if stored == count else 1
    finally:
        if server is not None:
            server.stop()


def _log_burst(records: int) -> int:
    """Log a realistic mix: levels, bound fields, kwargs, contextualize, one exception."""
    from loguru import logger as log

    count = 0
    with log.contextualize(request_id="req-7f3a"):
        for i in range(records):
            user = log.bind(user_id=1000 + i % 17, tenant="acme")
            if i % 10 == 0:
                user.debug("cache miss for key {}", f"product:{i}")
            elif i % 25 == 0:
                user.warning("slow query took {:.1f} ms", 120.5 + i)
            else:
                user.info(
                    "order {} paid", 1017 + i, amount=round(12.5 + i * 0.1, 2), currency="EUR"
                )
            count += 1
        try:
            {"a": 1}["missing"]
        except KeyError:
            log.bind(order_id=1017).exception("payment failed")
            count += 1
    return count


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="loguru-vlogs", description="Ship loguru logs to VictoriaLogs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="log a realistic burst through VLogsSink and read it back",
        description="Start the built-in receiver (or use --url), log a burst with extras and an "
        "exception through VLogsSink, read the rows back and print what arrived.",
    )
    demo.add_argument("--url", help="a real VictoriaLogs base URL (default: built-in receiver)")
    demo.add_argument("--records", type=int, default=200, help="records to log (default: 200)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loguru-vlogs`` command."""
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
