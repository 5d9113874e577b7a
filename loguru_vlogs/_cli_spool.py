"""``loguru-vlogs spool status|send|purge``: what a disk spool holds, sent or deleted now."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import IO, Any

from ._cli_common import (
    CHECK_ARGUMENTS,
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    build_settings,
    connection_overrides,
    flag_overrides,
    isatty,
)


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} bytes"  # pragma: no cover - the loop always returns


def _open_spool(args: argparse.Namespace) -> Any:
    """The spool named by --spool-dir or VLOGS_SPOOL_DIR, holding every orphaned segment."""
    from ._spool import Spool, SpoolError

    directory = args.spool_dir or os.environ.get("VLOGS_SPOOL_DIR", "").strip()
    if not directory:
        raise UsageError("give --spool-dir DIR or set VLOGS_SPOOL_DIR")
    if not os.path.isdir(directory):
        raise UsageError(f"there is no spool directory at {directory!r}")
    try:
        return Spool(directory)
    except (SpoolError, TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _spool_summary(spool: Any) -> str:
    stats = spool.stats()
    lines = [
        f"{spool.directory}: {stats['pending_records']} records "
        f"({_size(int(stats['pending_bytes']))}) waiting to be sent"
    ]
    if stats["foreign_bytes"]:
        lines.append(
            f"  and {_size(int(stats['foreign_bytes']))} in segments held by running "
            "processes (they send their own)"
        )
    lost = {k: v for k, v in dict(stats["dropped"]).items() if v}
    if lost or stats["corrupt_unknown"]:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(lost.items()))
        damaged = stats["corrupt_unknown"]
        lines.append(f"  lost: {reasons or 'none counted'}; damaged regions: {damaged}")
    return "\n".join(lines)


def status(args: argparse.Namespace) -> int:
    with _open_spool(args) as spool:
        print(_spool_summary(spool))
    return EXIT_OK


def send(args: argparse.Namespace) -> int:
    """Send what the spool holds through the sink's own delivery loop (the worker's), so a
    batch is settled exactly as a sink settles it: sent, or refused by the server (dropped,
    counted), or left in the spool when no endpoint takes it now."""
    import math
    import threading

    from ._buffer import Buffer
    from ._diag import RateLimited
    from ._http import Urllib3Transport
    from ._worker import Worker

    only = (*CHECK_ARGUMENTS, "stream_fields", "compression", "compression_level", "time_window")
    overrides = connection_overrides(args)
    overrides.update(flag_overrides(args, ("stream_fields", "time_window")))
    settings = build_settings(overrides, only=only)
    with _open_spool(args) as spool:
        total = spool.pending()[0]
        buffer = Buffer(
            max_records=1,
            max_bytes=1,
            overflow="drop_newest",
            block_timeout=0.0,
            batch_size=settings.batch_size,
            batch_bytes=settings.batch_bytes,
        )
        worker = Worker(
            settings,
            buffer,
            lambda: Urllib3Transport(settings),
            RateLimited(settings.warn_interval),
            spool=spool,
        )
        # Stopping with no deadline: every spooled batch is tried; when no endpoint takes
        # one (each failed once), the worker's policy ends the run and the rest stays.
        runner = threading.Thread(target=worker.stop, args=(math.inf,), name="loguru-vlogs-send")
        bar = _Bar(sys.stderr, total) if isatty(sys.stderr) else None
        runner.start()
        try:
            while runner.is_alive():
                runner.join(0.05)
                if bar is not None:
                    bar.update(worker.counters["spool_sent"])
        except KeyboardInterrupt:
            worker.request_stop(time.monotonic())  # finish the request under way, then stop
            runner.join()
        if bar is not None:
            bar.done()
        spool.rescan()  # segments whose writer exited meanwhile count as left
        left = spool.pending()[0]
    with buffer.cond:
        counters = dict(worker.counters)
        rejected = buffer.snapshot().dropped.get("rejected", 0)
    print(
        f"sent {counters['spool_sent']} records in {counters['requests']} requests; "
        f"{left} left in the spool"
    )
    failure = counters["last_error"] or "the server did not accept a batch"
    if rejected:
        print(f"dropped {rejected} records the server refused: {failure}")
    if left:
        print(f"stopped: {failure}; run it again later")
    return EXIT_FAILED if left or rejected else EXIT_OK


class _Bar:
    """A progress bar on a terminal's stderr."""

    def __init__(self, stream: IO[str], total: int) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done < self._total:
            return
        self._last = now
        filled = min(30, 30 * done // self._total)
        self._stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self._total} records")
        self._stream.flush()

    def done(self) -> None:
        self._stream.write("\r\x1b[K")
        self._stream.flush()


def purge(args: argparse.Namespace) -> int:
    with _open_spool(args) as spool:
        records, nbytes = spool.pending()
        print(_spool_summary(spool))
        if not records:
            print("nothing to delete")
            return EXIT_OK
        if not args.yes:
            if not isatty(sys.stdin):
                raise UsageError(
                    "not deleting without confirmation: run it on a terminal or add --yes"
                )
            answer = input(f"delete {records} records ({_size(nbytes)}) for good? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return EXIT_FAILED
        deleted = 0
        while (entry := spool.peek()) is not None:
            spool.ack(entry)  # acknowledged without sending: deleted once its segment is done
            deleted += entry.records
        print(f"deleted {deleted} records")
    return EXIT_OK
