"""The ``loguru-vlogs`` command line (also ``python -m loguru_vlogs``).

``demo`` (the README's first command), ``check`` (is this server usable, and if not, why),
``ship`` (stdin lines -> VictoriaLogs through a ``VLogsSink``) and ``serve`` (the built-in
VictoriaLogs-compatible receiver). Options default to the ``VLOGS_*`` environment variables;
a command-line option wins. Exit codes: 0 success, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from collections.abc import Sequence

from . import _cli_check, _cli_ship, _cli_spool
from ._cli_common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, add_flag
from ._cli_ship import level_of_text
from ._explain import diagnose

# The commands live in the _cli_* modules; these names stay importable from here as before.
__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "diagnose",
    "level_of_text",
    "main",
]


# -- demo -------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from loguru import logger

    from ._sink import VLogsSink
    from .testing import FakeVictoriaLogs, VLogsClient

    # Only VictoriaLogs gets the burst: loguru's default stderr handler would print the
    # demo's deliberate exception as if the demo itself had failed.
    logger.remove()
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


# -- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from .testing import serve

    def ready(url: str) -> None:
        print(f"VictoriaLogs-compatible receiver listening on {url} (Ctrl-C to stop)", flush=True)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it
        serve(args.port, args.data, host=args.host, on_ready=ready, retention=None)
    return EXIT_OK


# -- the parser -------------------------------------------------------------------------------


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"it should be an integer, not: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"it should be >= 0, not: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"it should be a number of seconds, not: {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"it should be > 0, not: {text}")
    return value


def _connection_options() -> argparse.ArgumentParser:
    """Options shared by ``check`` and ``ship``; each defaults to its environment variable."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection (defaults from the VLOGS_* environment)")
    add_flag(group, "url", "server base URL, or several separated by commas")
    add_flag(group, "account_id", "tenant AccountID")
    add_flag(group, "project_id", "tenant ProjectID")
    add_flag(group, "bearer_token", "Authorization: Bearer token")
    group.add_argument("--user", help="basic auth user (env VLOGS_USERNAME)")
    group.add_argument(
        "--password",
        help="basic auth password (env VLOGS_PASSWORD; prefer the variable: "
        "command lines are visible to other users)",
    )
    add_flag(group, "ca_certs", "CA bundle to verify TLS with")
    add_flag(
        group,
        "verify",
        "do not verify TLS certificates (the variable: VLOGS_VERIFY=0)",
        action="store_false",
        default=None,
    )
    add_flag(group, "timeout", "seconds per request")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="loguru-vlogs",
        description="Ship loguru logs to VictoriaLogs.",
        epilog="Exit codes: 0 success, 1 failure, 2 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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

    connection = _connection_options()
    check = commands.add_parser(
        "check",
        parents=[connection],
        help="check that a server accepts and stores records, and say why not",
        description="Resolve the host, GET /health and /insert/ready, send one test record "
        "(POST /insert/jsonline), read it back with /select/logsql/query, and print the "
        "latency of each step, or what is wrong (DNS, refused, TLS, timeout, 4xx with the "
        "server's message, a 200 that stored nothing). Exit code 0 when the server is usable, "
        "1 when not.",
    )
    check.add_argument(
        "--wait",
        type=_seconds,
        default=5.0,
        help="seconds to wait for the test record to become visible (default: 5)",
    )
    check.set_defaults(handler=_cli_check.check)

    ship = commands.add_parser(
        "ship",
        parents=[connection],
        help="ship stdin lines to VictoriaLogs (e.g. mytool 2>&1 | loguru-vlogs ship)",
        description="Read lines from stdin and send each as a record through a VLogsSink "
        "(same batching, retries and delivery accounting as the sink). A plain line becomes "
        "_msg, with the level of a leading level word (ERROR, [warn], ...) or INFO. With "
        "--json each line is a JSON object: loguru's serialize=True lines map to the sink's "
        "usual fields; other objects give _msg/message/msg, level, time and extra fields. "
        "Stops on EOF, SIGINT or SIGTERM after sending what was read (within "
        "VLOGS_SHUTDOWN_TIMEOUT, default 5 s). Exit code 0 when every line was delivered.",
    )
    ship.add_argument(
        "--field",
        action="append",
        metavar="KEY=VALUE",
        help="a static field on every record (repeatable; adds to VLOGS_FIELDS)",
    )
    add_flag(ship, "stream_fields", "fields that make the stream", metavar="A,B")
    ship.add_argument("--json", action="store_true", help="each line is a JSON object")
    add_flag(ship, "service", "the service field (ship's default: loguru-vlogs-ship)")
    add_flag(ship, "spool_dir", "disk spool directory")
    add_flag(
        ship,
        "time_window",
        "records older or later than this are sent with the sending time and original_time, "
        "e.g. 30d,2d for a server kept 30 days, or none",
        metavar="MAX_AGE,MAX_FUTURE",
    )
    add_flag(
        ship,
        "max_message_bytes",
        "cut _msg to this many bytes, e.g. 64KiB, or none",
        metavar="BYTES",
    )
    ship.set_defaults(handler=_cli_ship.ship)

    spool = commands.add_parser(
        "spool",
        help="inspect, send or delete what a disk spool holds",
        description="Work on a spool directory (spool_dir / VLOGS_SPOOL_DIR): segments left by "
        "processes that have exited are taken over (those of running processes are left to "
        "them).",
    )
    spool_commands = spool.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    spool_dir = argparse.ArgumentParser(add_help=False)
    add_flag(spool_dir, "spool_dir", "the spool directory")
    status = spool_commands.add_parser(
        "status",
        parents=[spool_dir],
        help="what is waiting",
        description="Show how many records and bytes wait in the spool.",
    )
    status.set_defaults(handler=_cli_spool.status)
    send = spool_commands.add_parser(
        "send",
        parents=[spool_dir, connection],
        help="send it now",
        description="Send the waiting batches, oldest first, and delete each once the server "
        "accepted it (a progress bar on a terminal). Stops at the first batch no endpoint "
        "accepts; exit code 0 when the spool is empty afterwards.",
    )
    add_flag(
        send,
        "stream_fields",
        "stream fields to send with: use the writing application's",
        metavar="A,B",
    )
    add_flag(
        send,
        "time_window",
        "batches older or later than this are sent with the sending time and original_time: "
        "use the writing application's",
        metavar="MAX_AGE,MAX_FUTURE",
    )
    send.set_defaults(handler=_cli_spool.send)
    purge = spool_commands.add_parser(
        "purge",
        parents=[spool_dir],
        help="delete it after confirmation",
        description="Delete every waiting batch without sending it, after a confirmation "
        "(--yes to skip it, required without a terminal).",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=_cli_spool.purge)

    serve = commands.add_parser(
        "serve",
        help="run the built-in VictoriaLogs-compatible receiver for local development",
        description="Run loguru_vlogs.testing's VictoriaLogs-compatible receiver in the "
        "foreground until Ctrl-C: POST /insert/jsonline, /select/logsql/query, /health. "
        "For development and tests, not for production.",
    )
    serve.add_argument("--port", type=_nonnegative_int, default=9428, help="port (default: 9428)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--data", metavar="FILE", help="also append every stored row to FILE as a JSON line"
    )
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loguru-vlogs`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"loguru-vlogs {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
