"""Spool promises at sink level, each checked so that breaking it fails a test.

Only the public API: ``VLogsSink`` options, ``stats()``, loguru's ``add``/``remove``, stderr.
The server's outage is the fake's read-only mode (HTTP 429, retryable, no ``Retry-After``).
Expected numbers are literals or the README's, never values read back from the spool.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the spool is POSIX only")

#: Hang guard for every wait on an event (seconds); the events come within milliseconds.
GUARD = 10.0
#: The smallest spool_max_bytes the sink accepts (README: "At least 65536").
TINY_SPOOL = 65536


def outage_sink(url: str, spool_dir: Path, **options: Any) -> VLogsSink:
    """A spooling sink that sends only full batches and retries fast."""
    kwargs: dict[str, Any] = {
        "spool_dir": spool_dir,
        "flush_interval": 60.0,  # a batch leaves only when batch_size records wait
        "backoff_base": 0.02,
        "backoff_max": 0.2,
        "timeout": 2.0,
        "shutdown_timeout": 5.0,
    }
    kwargs.update(options)
    return VLogsSink(url, **kwargs)


def log_numbered(numbers: range, pad: str = "") -> None:
    for i in numbers:
        logger.bind(i=i).info("record {}{}", i, pad)


def delivered(server: FakeVictoriaLogs) -> Counter[int]:
    """How many times the server stored each record number."""
    return Counter(int(row["i"]) for row in server.rows(limit=10**6))


def unaccounted(stats: dict[str, Any]) -> int:
    """received - (sent + dropped_total + buffered + in_flight + spool_pending): 0 per README."""
    parts = ("sent", "dropped_total", "buffered", "in_flight", "spool_pending")
    return int(stats["received"]) - sum(int(stats[key]) for key in parts)


def reaches(sink: VLogsSink, key: str, value: int) -> Callable[[], bool]:
    """A wait_for predicate: ``sink.stats()[key] == value``."""
    return lambda: bool(sink.stats()[key] == value)


# -- spool_fsync ---------------------------------------------------------------------------------


class SyncCounter:
    """Wraps os.fsync/os.fdatasync: counts calls on the spool directory and on files in it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def counted(fd: int) -> None:
            kind = self._kind(fd)
            with self._lock:
                self.counts[kind] += 1
            real(fd)

        return counted

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def _kind(self, fd: int) -> str:
        try:
            info = os.fstat(fd)
            home = os.stat(self.directory)
            if stat.S_ISDIR(info.st_mode):
                same = (info.st_dev, info.st_ino) == (home.st_dev, home.st_ino)
                return "dir" if same else "other"
            with os.scandir(self.directory) as entries:
                if any(entry.inode() == info.st_ino for entry in entries):
                    return "file"
        except OSError:
            pass  # not a file of the spool directory; the real call reports its own error
        return "other"


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS syncs files with F_FULLFSYNC")
@pytest.mark.parametrize(
    ("policy", "appending", "delivering"),
    [
        # docs/spool.md, "Crash safety and the fsync policy":
        # "never": one writev per append, nothing synced, ever.
        ("never", {"file": 0, "dir": 0}, {"file": 0, "dir": 0}),
        # "batch": fdatasync before each append() returns; creating a segment fsyncs the
        # directory; acknowledgements and deletions are not synced.
        ("batch", {"file": 3, "dir": 1}, {"file": 0, "dir": 0}),
        # "always": as "batch" for appends, plus the .ack file and the directory on every
        # ack(); the last ack deletes the segment (and syncs the directory) instead of
        # writing an .ack.
        ("always", {"file": 3, "dir": 1}, {"file": 2, "dir": 3}),
    ],
)
def test_spool_fsync_policy_syncs_as_documented(
    fake_vlogs: FakeVictoriaLogs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    appending: dict[str, int],
    delivering: dict[str, int],
) -> None:
    """Three batches appended, then delivered: fsync calls per policy match docs/spool.md."""
    spool_dir = tmp_path / "spool"
    fake_vlogs.read_only = True
    sink = outage_sink(fake_vlogs.url, spool_dir, batch_size=10, spool_fsync=policy)
    counter = SyncCounter(spool_dir)
    monkeypatch.setattr(os, "fsync", counter.wrap(os.fsync))
    if hasattr(os, "fdatasync"):
        monkeypatch.setattr(os, "fdatasync", counter.wrap(os.fdatasync))
    logger.add(sink)
    for round_ in range(3):
        # spool_threshold defaults to batch_size: each round of 10 is one appended batch.
        log_numbered(range(round_ * 10, round_ * 10 + 10))
        assert wait_for(reaches(sink, "spooled", 10 * (round_ + 1)), timeout=GUARD)
    after_appends = counter.snapshot()
    fake_vlogs.read_only = False
    assert sink.drain(timeout=GUARD)
    after_delivery = counter.snapshot()
    assert 30 == sink.stats()["spool_sent"]
    assert appending == {k: after_appends[k] for k in ("file", "dir")}
    assert delivering == {k: after_delivery[k] - after_appends[k] for k in ("file", "dir")}


# -- spool_full -----------------------------------------------------------------------------------


def test_a_batch_the_spool_cannot_take_stays_in_memory_and_is_delivered(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A batch larger than spool_max_bytes: the spool refuses it, it stays in memory (said on
    stderr), and so do the next records while the spool rests; nothing is dropped, and
    everything arrives when the server is back."""
    fake_vlogs.read_only = True
    sink = outage_sink(fake_vlogs.url, tmp_path / "spool", spool_max_bytes=TINY_SPOOL, batch_size=1)
    logger.add(sink)
    log_numbered(range(3))
    assert wait_for(lambda: sink.stats()["spooled"] == 3, timeout=GUARD)
    # One record, one batch (batch_size=1), bigger than the whole spool.
    logger.bind(i=3).info("huge {}", "y" * (TINY_SPOOL + 4096))
    err = ""

    def refused() -> bool:
        nonlocal err
        err += capfd.readouterr().err
        return "the spool refused 1 records (spool_full)" in err

    assert wait_for(refused, timeout=GUARD)
    assert "they stay in memory" in err
    log_numbered(range(4, 6))
    # The huge record stays in memory; 4 and 5 wait there too, or are spooled once the
    # spool's 5 s rest is over: either way nothing is dropped.
    during = sink.stats()
    assert memory(during) >= 1
    assert ({}, 6) == (during["dropped"], during["received"])
    assert 0 == unaccounted(during), during
    fake_vlogs.read_only = False
    assert sink.drain(timeout=GUARD)
    stats = sink.stats()
    assert {} == stats["dropped"]
    assert (6, 6, 3, 0) == (
        stats["received"],
        stats["sent"],
        stats["spool_sent"],
        stats["spool_pending"],
    )
    assert Counter(dict.fromkeys(range(6), 1)) == delivered(fake_vlogs)


def memory(stats: Mapping[str, Any]) -> int:
    """Records held in memory: buffered or in flight."""
    return int(stats["buffered"]) + int(stats["in_flight"])


def fill_a_tiny_spool(server: FakeVictoriaLogs, spool_dir: Path) -> VLogsSink:
    """Server down; 100 records of > 2000 bytes, one batch each, through a 64 KiB spool."""
    server.read_only = True
    sink = outage_sink(server.url, spool_dir, spool_max_bytes=TINY_SPOOL, batch_size=1)
    logger.add(sink)
    log_numbered(range(100), pad=" " + "x" * 2000)
    assert wait_for(lambda: sink.stats()["spooled"] == 100, timeout=GUARD)
    return sink


def test_a_full_spool_drops_its_oldest_records_as_spool_full_and_delivers_the_rest(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """At spool_max_bytes the oldest records go (counted spool_full); the newest arrive."""
    sink = fill_a_tiny_spool(fake_vlogs, tmp_path / "spool")
    fake_vlogs.read_only = False
    assert sink.drain(timeout=GUARD)
    stats = sink.stats()
    stored = delivered(fake_vlogs)
    assert all(1 == n for n in stored.values()), stored
    # 64 KiB holds at most 32 records of 2000+ bytes, plus the batch out for sending when
    # its segment was deleted (docs/spool.md: it stays in memory and is still delivered).
    assert 2 <= len(stored) <= 33, sorted(stored)
    assert {"spool_full": 100 - len(stored)} == stats["dropped"]
    assert (100, len(stored), len(stored), 0) == (
        stats["received"],
        stats["sent"],
        stats["spool_sent"],
        stats["spool_pending"],
    )
    assert 0 == unaccounted(stats), stats
    # The oldest are dropped: every delivered record but that one is newer than every lost one.
    newest_lost = max(set(range(100)) - set(stored))
    assert len([i for i in stored if i < newest_lost]) <= 1, sorted(stored)


def test_records_deleted_from_a_full_spool_are_reported_on_stderr(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """README: nothing is lost silently; spool_full drops from deleted segments reach stderr."""
    sink = fill_a_tiny_spool(fake_vlogs, tmp_path / "spool")
    assert sink.stats()["dropped"].get("spool_full", 0) > 0
    err = capfd.readouterr().err
    assert "spooled records were deleted to make room and dropped (spool_full; " in err
    assert "spool_max_bytes=65536)" in err


def test_spool_drops_stay_counted_after_close(fake_vlogs: FakeVictoriaLogs, tmp_path: Path) -> None:
    """Records deleted from a full spool are the sink's drops: close() (which closes the spool)
    does not make them vanish, and the identity holds afterwards."""
    sink = fill_a_tiny_spool(fake_vlogs, tmp_path / "spool")
    before = sink.stats()["dropped"].get("spool_full", 0)
    assert before > 0
    logger.remove()
    sink.close(timeout=0.2)
    stats = sink.stats()
    assert stats["dropped"].get("spool_full", 0) >= before
    assert 0 == unaccounted(stats), stats


# -- spool_error ----------------------------------------------------------------------------------


def test_a_spool_directory_gone_keeps_records_in_memory_and_says_so(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The spool directory replaced by a file: the spool refuses (spool_error), the records
    stay in memory as without a spool, stderr says so; all arrive when the server is back."""
    spool_dir = tmp_path / "spool"
    fake_vlogs.read_only = True
    sink = outage_sink(fake_vlogs.url, spool_dir, batch_size=1)
    logger.add(sink)
    # Root ignores chmod; a deleted directory refuses new files to everyone (ENOENT).
    shutil.rmtree(spool_dir)
    spool_dir.write_text("not a directory any more")
    log_numbered(range(5))
    assert wait_for(lambda: "spool_error" in capfd.readouterr().err, timeout=GUARD)
    stats = sink.stats()
    assert ({}, 0, 0) == (stats["dropped"], stats["spooled"], stats["spool_pending"])
    assert 5 == memory(stats)
    assert 0 == unaccounted(stats), stats
    fake_vlogs.read_only = False
    assert sink.drain(timeout=GUARD)
    assert Counter(dict.fromkeys(range(5), 1)) == delivered(fake_vlogs)


def test_what_neither_the_spool_nor_memory_can_hold_is_dropped_with_a_reason(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """Spool gone and a 3-record buffer: what does not fit in memory is counted (buffer_full
    or spool_error), never lost silently; the identity holds."""
    spool_dir = tmp_path / "spool"
    fake_vlogs.read_only = True
    sink = outage_sink(fake_vlogs.url, spool_dir, batch_size=1, buffer_size=3, shutdown_timeout=0.2)
    logger.add(sink)
    shutil.rmtree(spool_dir)
    spool_dir.write_text("not a directory any more")
    log_numbered(range(10))
    assert wait_for(lambda: sink.stats()["dropped_total"] >= 6, timeout=GUARD)
    stats = sink.stats()
    assert set(stats["dropped"]) <= {"buffer_full", "spool_error"}, stats["dropped"]
    assert 0 == unaccounted(stats), stats
    assert 10 == stats["dropped_total"] + memory(stats)


# -- spool_threshold ------------------------------------------------------------------------------


def test_below_spool_threshold_records_stay_in_memory_and_are_sent_from_there(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """24 records, threshold 25: several failed retries later nothing is spooled; all arrive."""
    fake_vlogs.read_only = True
    sink = outage_sink(fake_vlogs.url, tmp_path / "spool", batch_size=10, spool_threshold=25)
    logger.add(sink)
    log_numbered(range(24))
    failed = sink.stats()["failed_requests"]
    # Each failed try is followed by the threshold check: two of them after the last record.
    assert wait_for(lambda: sink.stats()["failed_requests"] >= failed + 2, timeout=GUARD)
    stats = sink.stats()
    assert (0, 0, 24) == (
        stats["spooled"],
        stats["spool_pending"],
        stats["buffered"] + stats["in_flight"],
    )
    fake_vlogs.read_only = False
    assert sink.drain(timeout=GUARD)
    stats = sink.stats()
    assert (24, 0, 0, 0) == (
        stats["sent"],
        stats["spooled"],
        stats["spool_sent"],
        stats["dropped_total"],
    )
    assert Counter(dict.fromkeys(range(24), 1)) == delivered(fake_vlogs)


def test_at_spool_threshold_records_in_memory_move_to_the_spool(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """25 records (in flight included), threshold 25: a batch moves to disk, then arrives."""
    fake_vlogs.read_only = True
    sink = outage_sink(fake_vlogs.url, tmp_path / "spool", batch_size=10, spool_threshold=25)
    logger.add(sink)
    log_numbered(range(25))
    assert wait_for(lambda: sink.stats()["spooled"] > 0, timeout=GUARD)
    stats = sink.stats()
    assert 0 == stats["sent"]
    assert stats["spool_pending"] == stats["spooled"]
    assert 25 == stats["buffered"] + stats["in_flight"] + stats["spool_pending"]
    fake_vlogs.read_only = False
    assert sink.drain(timeout=GUARD)
    stats = sink.stats()
    assert (25, 0, 0) == (stats["sent"], stats["spool_pending"], stats["dropped_total"])
    assert stats["spool_sent"] == stats["spooled"] > 0
    assert Counter(dict.fromkeys(range(25), 1)) == delivered(fake_vlogs)


# -- the accounting identity ----------------------------------------------------------------------


def test_accounting_identity_holds_throughout_an_outage_and_after_delivery(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """received == sent + dropped_total + buffered + in_flight + spool_pending, at every look."""
    fake_vlogs.read_only = True
    sink = outage_sink(
        fake_vlogs.url, tmp_path / "spool", batch_size=10, spool_threshold=1, flush_interval=0.01
    )
    logger.add(sink)
    broken: list[dict[str, Any]] = []

    def look() -> dict[str, Any]:
        stats = sink.stats()
        if unaccounted(stats):
            broken.append(stats)
        return stats

    for i in range(400):
        logger.bind(i=i).info("record {}", i)
        look()
    # spool_pending counts a batch from the moment it leaves memory, spooled once it is written.
    assert wait_for(lambda: look()["spool_pending"] == look()["spooled"] == 400, timeout=GUARD)
    assert [] == broken
    stats = sink.stats()
    assert (400, 0, 0, 0, 0, 400) == (
        stats["received"],
        stats["sent"],
        stats["dropped_total"],
        stats["buffered"],
        stats["in_flight"],
        stats["spooled"],
    )
    fake_vlogs.read_only = False
    assert sink.drain(timeout=GUARD)
    stats = sink.stats()
    assert 0 == unaccounted(stats), stats
    assert (400, 400, 0, 0, 0, 0, 400, 400) == (
        stats["received"],
        stats["sent"],
        stats["dropped_total"],
        stats["buffered"],
        stats["in_flight"],
        stats["spool_pending"],
        stats["spooled"],
        stats["spool_sent"],
    )
    assert Counter(dict.fromkeys(range(400), 1)) == delivered(fake_vlogs)


def test_records_adopted_from_an_earlier_sinks_spool_count_as_sent_not_received(
    fake_vlogs: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """40 left in the spool by a stopped sink: the next one sends them, received stays its own."""
    spool_dir = tmp_path / "spool"
    fake_vlogs.read_only = True
    first = outage_sink(fake_vlogs.url, spool_dir, batch_size=10)
    handler = logger.add(first)
    log_numbered(range(40))
    logger.remove(handler)  # server failing: everything left goes to the spool at once
    stats = first.stats()
    assert (40, 40, 40, 0, 0) == (
        stats["received"],
        stats["spooled"],
        stats["spool_pending"],
        stats["sent"],
        stats["dropped_total"],
    )
    assert 0 == unaccounted(stats), stats
    fake_vlogs.read_only = False
    later = outage_sink(fake_vlogs.url, spool_dir, batch_size=10, flush_interval=0.05)
    logger.add(later)
    log_numbered(range(100, 115))
    assert later.drain(timeout=GUARD)
    stats = later.stats()
    assert (15, 55, 40, 0, 0, 0) == (
        stats["received"],
        stats["sent"],
        stats["spool_sent"],
        stats["spooled"],
        stats["spool_pending"],
        stats["dropped_total"],
    )
    # README: adopted records add to sent and spool_sent, not to received.
    assert 40 == -unaccounted(stats), stats
    expected = Counter(dict.fromkeys([*range(40), *range(100, 115)], 1))
    assert expected == delivered(fake_vlogs)
