"""The disk spool in one process: format, order, acknowledgements, damage, bounds, modes.

Multi-process behaviour (takeover, SIGKILL, concurrent writers) is in ``test_spool_processes``.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loguru_vlogs import _spool
from loguru_vlogs._spool import (
    ENTRY_HEADER_SIZE,
    FILE_MAGIC,
    FsyncPolicy,
    Spool,
    SpoolEntry,
    SpoolError,
    SpoolFullError,
)

MIN = _spool.MIN_MAX_BYTES


def batch(i: int, n: int = 2, pad: int = 0) -> list[bytes]:
    """Batch number ``i``: ``n`` JSON lines that name it."""
    return [json.dumps({"b": i, "j": j, "pad": "x" * pad}).encode() for j in range(n)]


def batch_id(entry: SpoolEntry) -> int:
    return int(json.loads(entry.lines[0])["b"])


def drain(spool: Spool) -> list[SpoolEntry]:
    """Peek and acknowledge until nothing is pending."""
    out: list[SpoolEntry] = []
    for _ in range(100_000):
        entry = spool.peek()
        if entry is None:
            return out
        out.append(entry)
        spool.ack(entry)
    raise AssertionError("the spool never ran dry")


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def spool(spool_dir: Path) -> Iterator[Spool]:
    with Spool(spool_dir) as s:
        yield s


def write_closed(
    directory: Path, batches: list[list[bytes]], segment_bytes: int = _spool.DEFAULT_SEGMENT_BYTES
) -> None:
    """Append ``batches`` with a spool that is closed again (its segments are up for takeover)."""
    with Spool(directory, fsync="never", segment_bytes=segment_bytes) as writer:
        for lines in batches:
            writer.append(lines)


# -- round trip and order ----------------------------------------------------------------------


def test_round_trip_returns_each_batch_once_in_order(spool: Spool) -> None:
    """Batches come back as appended, oldest first, each once; then peek() is None."""
    batches = [batch(i, n=i + 1) for i in range(5)]
    for lines in batches:
        spool.append(lines)
    entries = drain(spool)
    assert batches == [e.lines for e in entries]
    assert [len(b) for b in batches] == [e.records for e in entries]
    assert [b"\n".join(b) for b in batches] == [e.payload for e in entries]
    assert spool.peek() is None


def test_peek_returns_the_same_entry_until_acked(spool: Spool) -> None:
    """Without ack(), peek() keeps returning the same entry (a failed send just retries)."""
    spool.append(batch(0))
    spool.append(batch(1))
    first = spool.peek()
    assert first is spool.peek()
    assert first is not None
    spool.ack(first)
    second = spool.peek()
    assert second is not None
    assert 1 == batch_id(second)


def test_ack_takes_only_the_entry_peek_returned(spool: Spool) -> None:
    """Acknowledging an entry that is not the current head is refused and changes nothing."""
    spool.append(batch(0))
    entry = spool.peek()
    assert entry is not None
    spool.ack(entry)
    spool.append(batch(1))
    with pytest.raises(ValueError, match=r"^Invalid entry: ack\(\) takes the entry that the last"):
        spool.ack(entry)
    head = spool.peek()
    assert head is not None
    assert 1 == batch_id(head)


def test_pending_counts_records_and_bytes_on_disk(spool: Spool) -> None:
    """pending() is (records, bytes of entries on disk) and shrinks as entries are acked."""
    assert (0, 0) == spool.pending()
    spool.append(batch(0, n=3))
    spool.append(batch(1, n=2))
    size0 = ENTRY_HEADER_SIZE + len(b"\n".join(batch(0, n=3)))
    size1 = ENTRY_HEADER_SIZE + len(b"\n".join(batch(1, n=2)))
    assert (5, size0 + size1) == spool.pending()
    entry = spool.peek()
    assert entry is not None
    spool.ack(entry)
    assert (2, size1) == spool.pending()


def test_entries_span_segments_in_order_and_drained_segments_are_deleted(
    spool_dir: Path,
) -> None:
    """Small segments rotate; order holds across them; a drained spool leaves no files."""
    with Spool(spool_dir, segment_bytes=4096, fsync="never") as spool:
        for i in range(100):
            spool.append(batch(i, pad=60))
        assert len(segments(spool_dir)) >= 3
        assert list(range(100)) == [batch_id(e) for e in drain(spool)]
        assert [] == sorted(os.listdir(spool_dir))


def test_empty_batch_is_ignored(spool: Spool) -> None:
    """Appending no lines stores nothing."""
    spool.append([])
    assert (0, 0) == spool.pending()
    assert spool.peek() is None


def test_line_with_a_newline_is_refused(spool: Spool) -> None:
    """A line must be one JSON object without a newline, or the batch could not be split back."""
    with pytest.raises(ValueError, match=r"^Invalid lines: a line contains a newline character$"):
        spool.append([b'{"a":1}', b'{"b":\n2}'])
    assert (0, 0) == spool.pending()


def test_closed_spool_refuses_use(spool_dir: Path) -> None:
    """After close(), every operation raises SpoolError; close() may be repeated."""
    spool = Spool(spool_dir)
    spool.close()
    spool.close()
    with pytest.raises(SpoolError, match=r"^the spool is closed$"):
        spool.append(batch(0))
    with pytest.raises(SpoolError, match=r"^the spool is closed$"):
        spool.peek()


# -- persistence and sharing in one process -----------------------------------------------------


def test_acks_survive_a_new_spool_on_the_same_directory(spool_dir: Path) -> None:
    """A later Spool resumes after the last acknowledged entry: nothing acked is resent."""
    with Spool(spool_dir, segment_bytes=4096) as first:
        for i in range(30):
            first.append(batch(i, pad=60))
        for _ in range(12):
            entry = first.peek()
            assert entry is not None
            first.ack(entry)
    with Spool(spool_dir) as second:
        assert list(range(12, 30)) == [batch_id(e) for e in drain(second)]


def test_taken_over_segments_come_before_newer_own_ones(spool_dir: Path) -> None:
    """Segments left by an earlier spool are older, so they are sent first."""
    write_closed(spool_dir, [batch(0), batch(1)])
    with Spool(spool_dir) as spool:
        spool.append(batch(2))
        assert [0, 1, 2] == [batch_id(e) for e in drain(spool)]


def test_open_spools_segments_are_not_taken_by_another_spool(spool_dir: Path) -> None:
    """A second Spool on the same directory leaves a live owner's segments alone."""
    with Spool(spool_dir) as owner:
        owner.append(batch(0))
        with Spool(spool_dir) as other:
            other.rescan()
            assert other.peek() is None
            assert (0, 0) == other.pending()
            other.append(batch(1))
            assert [1] == [batch_id(e) for e in drain(other)]
        assert [0] == [batch_id(e) for e in drain(owner)]


def test_unreadable_ack_sidecar_resends_rather_than_loses(spool_dir: Path) -> None:
    """A damaged .ack file means 'nothing acked': duplicates, never loss."""
    with Spool(spool_dir) as first:
        for i in range(3):
            first.append(batch(i))
        entry = first.peek()
        assert entry is not None
        first.ack(entry)
    (ack,) = spool_dir.glob("*.seg.ack")
    ack.write_bytes(b"garbage")
    with Spool(spool_dir) as second:
        assert [0, 1, 2] == [batch_id(e) for e in drain(second)]


def test_leftovers_of_dead_writers_are_cleaned_up(spool_dir: Path) -> None:
    """Orphan sidecars and stale .new files go; a young .new file (being created) stays."""
    name = "00000000000000000001-1-1-0000abcd.seg"
    with Spool(spool_dir) as spool:
        (spool_dir / f"{name}.ack").write_bytes(b"x")
        (spool_dir / f"{name}.ack.tmp").write_bytes(b"x")
        stale = spool_dir / "00000000000000000002-1-1-0000abcd.seg.new"
        young = spool_dir / "00000000000000000003-1-1-0000abcd.seg.new"
        stale.write_bytes(b"")
        young.write_bytes(b"")
        old = time.time() - 3600
        os.utime(stale, (old, old))
        (spool_dir / "README").write_bytes(b"not ours")
        spool.rescan()
        assert ["00000000000000000003-1-1-0000abcd.seg.new", "README"] == sorted(
            os.listdir(spool_dir)
        )


def test_takeover_cap_holds_few_files_yet_delivers_every_dead_segment(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most MAX_TAKEN dead segments are held at once; the rest follow as those drain."""
    write_closed(spool_dir, [batch(i, pad=1500) for i in range(10)], segment_bytes=4096)
    assert len(segments(spool_dir)) >= 5
    monkeypatch.setattr(_spool, "MAX_TAKEN", 2)
    with Spool(spool_dir) as spool:
        assert 2 == spool.stats()["taken_over"]
        assert spool.stats()["foreign_bytes"] > 0
        assert list(range(10)) == [batch_id(e) for e in drain(spool)]
        assert [] == segments(spool_dir)


def test_symlink_under_a_segment_name_is_never_read(spool_dir: Path, tmp_path: Path) -> None:
    """A link planted under a segment name is left alone: its target is not shipped."""
    target = tmp_path / "secret"
    write_closed(tmp_path / "elsewhere", [batch(7)])
    (real,) = segments(tmp_path / "elsewhere")
    target.write_bytes(real.read_bytes())
    with Spool(spool_dir) as spool:
        link = spool_dir / "00000000000000000001-1-1-0000abcd.seg"
        link.symlink_to(target)
        spool.rescan()
        assert spool.peek() is None
        assert link.is_symlink()
        assert target.exists()


# -- damage ----------------------------------------------------------------------------------------


def entry_offsets(batches: list[list[bytes]]) -> list[int]:
    """File offsets of the entries of one segment holding ``batches``."""
    offsets = []
    pos = len(FILE_MAGIC)
    for lines in batches:
        offsets.append(pos)
        pos += ENTRY_HEADER_SIZE + len(b"\n".join(lines))
    return offsets


def test_torn_payload_at_the_tail_keeps_the_entries_before_it(spool_dir: Path) -> None:
    """A file cut inside the last payload: earlier entries delivered, its records counted."""
    batches = [batch(i, n=3) for i in range(4)]
    write_closed(spool_dir, batches)
    (path,) = segments(spool_dir)
    cut = entry_offsets(batches)[3] + ENTRY_HEADER_SIZE + 5
    os.truncate(path, cut)
    with Spool(spool_dir) as spool:
        assert [0, 1, 2] == [batch_id(e) for e in drain(spool)]
        assert {"spool_corrupt": 3} == spool.dropped
        assert 0 == spool.corrupt_unknown
        assert [] == segments(spool_dir)


def test_torn_header_at_the_tail_is_counted_as_an_unknown_loss(spool_dir: Path) -> None:
    """A file cut inside the last header: its record count is unknown and said so."""
    batches = [batch(i) for i in range(3)]
    write_closed(spool_dir, batches)
    (path,) = segments(spool_dir)
    os.truncate(path, entry_offsets(batches)[2] + 7)
    with Spool(spool_dir) as spool:
        assert [0, 1] == [batch_id(e) for e in drain(spool)]
        assert {} == spool.dropped
        assert 1 == spool.corrupt_unknown


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_payload_byte_skips_only_that_entry(spool_dir: Path) -> None:
    """A damaged payload in the middle: that entry is skipped, its records counted, the rest sent."""
    batches = [batch(i, n=4) for i in range(5)]
    write_closed(spool_dir, batches)
    (path,) = segments(spool_dir)
    flip(path, entry_offsets(batches)[2] + ENTRY_HEADER_SIZE + 10)
    with Spool(spool_dir) as spool:
        assert [0, 1, 3, 4] == [batch_id(e) for e in drain(spool)]
        assert {"spool_corrupt": 4} == spool.dropped


def test_damage_in_the_writers_own_segment_is_caught_at_read(spool: Spool, spool_dir: Path) -> None:
    """The checksum is verified on every read, also for entries this process wrote."""
    batches = [batch(i) for i in range(3)]
    for lines in batches:
        spool.append(lines)
    (path,) = segments(spool_dir)
    with path.open("r+b") as f:
        f.seek(entry_offsets(batches)[0] + ENTRY_HEADER_SIZE + 3)
        f.write(b"#")
    assert [1, 2] == [batch_id(e) for e in drain(spool)]
    assert {"spool_corrupt": 2} == spool.dropped


def test_flipped_header_byte_resynchronises_at_the_next_entry(spool_dir: Path) -> None:
    """A damaged header: the scan finds the next entry marker; the lost count is unknown."""
    batches = [batch(i) for i in range(5)]
    write_closed(spool_dir, batches)
    (path,) = segments(spool_dir)
    flip(path, entry_offsets(batches)[1] + 5)  # inside the length field
    with Spool(spool_dir) as spool:
        assert [0, 2, 3, 4] == [batch_id(e) for e in drain(spool)]
        assert {} == spool.dropped
        assert 1 == spool.corrupt_unknown


def test_skipped_damage_is_not_counted_again_by_a_later_spool(spool_dir: Path) -> None:
    """Skipping a damaged entry is recorded like an ack, so the next process starts after it."""
    batches = [batch(i) for i in range(4)]
    write_closed(spool_dir, batches)
    (path,) = segments(spool_dir)
    flip(path, entry_offsets(batches)[0] + ENTRY_HEADER_SIZE + 2)
    with Spool(spool_dir) as first:
        entry = first.peek()  # skips entry 0, stops at 1 without acking it
        assert entry is not None
        assert 1 == batch_id(entry)
        assert {"spool_corrupt": 2} == first.dropped
    with Spool(spool_dir) as second:
        assert [1, 2, 3] == [batch_id(e) for e in drain(second)]
        assert {} == second.dropped


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=6),
    cut_fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_truncation_delivers_exactly_the_complete_entries(
    sizes: list[int], cut_fraction: float
) -> None:
    """Wherever the file is cut, the complete entries come back and the torn one is accounted."""
    batches = [batch(i, n=n) for i, n in enumerate(sizes)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "spool"
        write_closed(directory, batches)
        (path,) = segments(directory)
        total = path.stat().st_size
        cut = len(FILE_MAGIC) + round((total - len(FILE_MAGIC)) * cut_fraction)
        os.truncate(path, cut)
        offsets = [*entry_offsets(batches), total]
        complete = sum(1 for end in offsets[1:] if end <= cut)
        with Spool(directory) as spool:
            assert batches[:complete] == [e.lines for e in drain(spool)]
            torn = complete < len(batches) and cut > offsets[complete]
            header_whole = torn and cut - offsets[complete] >= ENTRY_HEADER_SIZE
            expected_dropped = {"spool_corrupt": sizes[complete]} if header_whole else {}
            assert expected_dropped == spool.dropped
            assert int(torn and not header_whole) == spool.corrupt_unknown


# -- bounds ----------------------------------------------------------------------------------------


def test_max_bytes_drops_the_oldest_segments_and_counts_their_records(spool_dir: Path) -> None:
    """Past max_bytes the oldest segments go: delivered + dropped == appended, newest kept."""
    with Spool(spool_dir, max_bytes=MIN, segment_bytes=8192, fsync="never") as spool:
        for i in range(300):
            spool.append(batch(i, n=2, pad=200))
            on_disk = sum(p.stat().st_size for p in segments(spool_dir))
            assert on_disk <= MIN
        delivered = [batch_id(e) for e in drain(spool)]
        assert 600 == 2 * len(delivered) + spool.dropped["spool_full"]
        assert list(range(300 - len(delivered), 300)) == delivered
        assert spool.dropped["spool_full"] > 0


def test_batch_larger_than_max_bytes_is_refused_and_nothing_is_lost(spool_dir: Path) -> None:
    """A batch that can never fit raises SpoolFullError without dropping what is stored."""
    with Spool(spool_dir, max_bytes=MIN) as tiny:
        tiny.append(batch(0))
        with pytest.raises(SpoolFullError, match=r"^a batch of \d+ bytes does not fit"):
            tiny.append(batch(1, pad=MIN))
        assert {} == tiny.dropped
        assert [0] == [batch_id(e) for e in drain(tiny)]


def test_entry_out_for_sending_is_counted_once_when_its_segment_is_dropped(
    spool_dir: Path,
) -> None:
    """The entry peek() handed out is not counted as dropped: its ack() resolves it."""
    with Spool(spool_dir, max_bytes=MIN, segment_bytes=8192, fsync="never") as spool:
        spool.append(batch(0, pad=200))
        head = spool.peek()
        assert head is not None
        for i in range(1, 300):
            spool.append(batch(i, pad=200))
        assert not any(p.name.startswith(head.segment) for p in spool_dir.iterdir())
        assert head is spool.peek()
        records, _ = spool.pending()
        spool.ack(head)
        assert records - 2 == spool.pending()[0]
        rest = drain(spool)
        assert 600 == 2 + 2 * len(rest) + spool.dropped["spool_full"]


# -- write failures ----------------------------------------------------------------------------


def test_disk_full_refuses_the_batch_and_keeps_the_segment_clean(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC mid-write: SpoolFullError, the partial entry is cut off, later appends are fine."""
    spool.append(batch(0))
    real_writev = os.writev

    def half_then_full(fd: int, buffers: list[memoryview]) -> int:
        monkeypatch.setattr(os, "writev", real_writev)
        real_writev(fd, [buffers[0][:7]])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", half_then_full)
    with pytest.raises(SpoolFullError, match=r"^the disk is full: "):
        spool.append(batch(1))
    spool.append(batch(2))
    assert [0, 2] == [batch_id(e) for e in drain(spool)]
    assert {} == spool.dropped


def test_failed_ack_write_raises_but_acks_in_memory(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the .ack file cannot be replaced, ack() says so; this process does not resend."""
    for i in range(3):
        spool.append(batch(i))
    entry = spool.peek()
    assert entry is not None

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(SpoolError, match=r"^cannot record the acknowledgement: "):
        spool.ack(entry)
    monkeypatch.undo()
    assert [1, 2] == [batch_id(e) for e in drain(spool)]


# -- modes and arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_files_and_directory_are_private(spool_dir: Path, umask: int) -> None:
    """The directory is created 0700 exactly and files 0600 (or stricter), whatever the umask."""
    old = os.umask(umask)
    try:
        with Spool(spool_dir) as spool:
            spool.append(batch(0))
            spool.append(batch(1))
            entry = spool.peek()
            assert entry is not None
            spool.ack(entry)
            modes = {
                p.name.split(".", 1)[1]: stat.S_IMODE(p.stat().st_mode) for p in spool_dir.iterdir()
            }
    finally:
        os.umask(old)
    assert 0o700 == stat.S_IMODE(spool_dir.stat().st_mode)
    expected = 0o600 & ~umask
    assert {"seg": expected, "seg.ack": expected} == modes


def test_existing_private_directory_is_used_as_it_is(tmp_path: Path) -> None:
    """An existing directory only readable by others is accepted and not changed."""
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o750)
    directory.chmod(0o750)
    with Spool(directory) as spool:
        spool.append(batch(0))
    assert 0o750 == stat.S_IMODE(directory.stat().st_mode)


def test_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    """Whoever can write to the directory could plant records: refuse it."""
    directory = tmp_path / "spool"
    directory.mkdir()
    directory.chmod(0o777)
    with pytest.raises(
        SpoolError,
        match=r"^unsafe spool directory '.*': it is writable by group or others \(mode 0777\); expected mode 0700$",
    ):
        Spool(directory)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    """A directory of another user is refused."""
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    with pytest.raises(SpoolError, match=r"^unsafe spool directory '.*': it is owned by uid 65534"):
        Spool(directory)


def test_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """A spool directory that is a regular file fails at construction with a clear error."""
    path = tmp_path / "file"
    path.write_bytes(b"")
    with pytest.raises(SpoolError, match=r"^cannot open the spool directory '.*': "):
        Spool(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"max_bytes": 1024},
            ValueError,
            r"^Invalid max_bytes: it should be >= 65536 \(bytes\), not: 1024$",
        ),
        (
            {"max_bytes": "1"},
            TypeError,
            r"^Invalid max_bytes: it should be an integer, not str: '1'$",
        ),
        (
            {"max_bytes": True},
            TypeError,
            r"^Invalid max_bytes: it should be an integer, not bool: True$",
        ),
        (
            {"segment_bytes": 0},
            ValueError,
            r"^Invalid segment_bytes: it should be >= 4096 \(bytes\), not: 0$",
        ),
        (
            {"fsync": "sometimes"},
            ValueError,
            r"^Invalid fsync: it should be one of 'never', 'batch', 'always', not: 'sometimes'$",
        ),
    ],
)
def test_invalid_arguments_are_refused(
    spool_dir: Path, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    """Each argument is validated with a message naming it, the expectation and the value."""
    with pytest.raises(error, match=match):
        Spool(spool_dir, **kwargs)  # type: ignore[arg-type]
    assert not spool_dir.exists()


def test_directory_of_the_wrong_type_is_refused() -> None:
    """The directory must be a path."""
    with pytest.raises(
        TypeError, match=r"^Invalid spool directory: it should be a path, not int: 3$"
    ):
        Spool(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("fsync", ["never", "batch", "always"])
def test_every_fsync_policy_round_trips_and_persists_acks(
    spool_dir: Path, fsync: FsyncPolicy
) -> None:
    """The fsync policies change durability, not behaviour."""
    with Spool(spool_dir, fsync=fsync) as first:
        for i in range(3):
            first.append(batch(i))
        entry = first.peek()
        assert entry is not None
        first.ack(entry)
    with Spool(spool_dir, fsync=fsync) as second:
        assert [1, 2] == [batch_id(e) for e in drain(second)]


def test_stats_report_the_spool_state(spool: Spool) -> None:
    """stats() gathers pending, disk usage, segments and losses."""
    spool.append(batch(0))
    stats = spool.stats()
    # One entry on disk: a 20-byte header, then the two lines joined by a newline.
    entry = 20 + len(b"\n".join(batch(0)))
    assert {
        "pending_records": 2,
        "pending_bytes": entry,
        "disk_bytes": len(b"\xffLVSPL1\n") + entry,
        "foreign_bytes": 0,
        "segments": 1,
        "taken_over": 0,
        "dropped": {},
        "corrupt_unknown": 0,
    } == stats
