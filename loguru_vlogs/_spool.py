"""A durable on-disk queue of batches: append-only segment files, checksummed entries, file locks.

Pure storage: no HTTP and no thread of its own. The worker appends the batches the server
cannot take now and later sends them oldest first with ``peek()`` / ``ack()``.

Layout of a spool directory (docs/spool.md states the guarantees)::

    <time_ns:020d>-<pid>-<n>-<token>.seg      a segment: file header, then entries
    <segment>.ack                             the acknowledged offset of that segment
    <segment>.ack.tmp                         the next .ack, renamed over it atomically
    <segment>.new                             a segment being created (renamed once locked)

A segment belongs to whoever holds an exclusive ``flock`` on it: its writer while it lives,
then at most one process that took it over. ``flock`` (not ``fcntl``/``lockf`` record locks)
because its lock belongs to the open file description: opening and closing a live owner's
file to probe it does not release the owner's lock, and the kernel drops the lock when the
owner dies, however it dies.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import os
import re
import stat
import struct
import sys
import threading
import time
import weakref
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, NamedTuple, get_args

from . import _lifecycle

if sys.platform != "win32":
    import fcntl

FsyncPolicy = Literal["never", "batch", "always"]
FSYNC_POLICIES: tuple[str, ...] = get_args(FsyncPolicy)

#: Default bound on the bytes of all segment files in the directory.
DEFAULT_MAX_BYTES = 1 << 30
#: Default size at which the writer starts a new segment file.
DEFAULT_SEGMENT_BYTES = 16 << 20
#: Smallest accepted ``max_bytes``: smaller values are almost surely a unit mistake (MiB vs bytes).
MIN_MAX_BYTES = 64 << 10
#: Smallest accepted ``segment_bytes``.
MIN_SEGMENT_BYTES = 4 << 10
#: Seconds between two looks at the directory for segments of dead processes (``peek()`` looks
#: at most this often; ``rescan()`` looks at once).
RESCAN_INTERVAL = 5.0
#: At most this many taken-over segments are held (one open file each); the rest wait for the
#: next rescan, so thousands of small dead segments cannot exhaust the file descriptors.
MAX_TAKEN = 64
#: A ``.new`` file older than this (and unlocked) is the leftover of a writer that died while
#: creating a segment; younger ones may be in the middle of being created.
_STALE_NEW = 60.0
#: When ``append()`` is about to refuse a batch for lack of room, look at the directory again
#: if the last look is older than this (other processes may have died or drained meanwhile).
_FULL_RESCAN = 1.0

# 0xFF never occurs in UTF-8, so these markers cannot appear inside a batch of JSON lines:
# a resynchronising scan after damage finds entry starts, not look-alikes in the data.
FILE_MAGIC = b"\xffLVSPL1\n"
ENTRY_MAGIC = b"\xffLVE"
_ACK_MAGIC = b"\xffLVACK1"
#: Entry header: magic, payload length, record count, crc32(payload), crc32(first 16 bytes).
_ENTRY = struct.Struct("<4sIIII")
ENTRY_HEADER_SIZE = _ENTRY.size
#: Sidecar: magic, acknowledged offset, crc32(first 15 bytes).
_ACK = struct.Struct("<7sQI")
_MAX_PAYLOAD = (1 << 32) - 1
_RESYNC_CHUNK = 1 << 20
_SEGMENT_NAME = re.compile(r"\A[0-9]{20}-[0-9]+-[0-9]+-[0-9a-f]{8}\.seg\Z")

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class SpoolError(Exception):
    """The spool could not do what was asked (I/O error, closed spool, unsupported platform)."""


class SpoolFullError(SpoolError):
    """``append()`` refused a batch: it does not fit in ``max_bytes`` or the disk is full.

    Nothing of the batch was stored; the caller counts its records as dropped.
    """


@dataclass(frozen=True, eq=False)
class SpoolEntry:
    """One stored batch, as ``peek()`` returns it."""

    #: The batch's lines joined by ``b"\\n"``: a ready request body (no trailing newline).
    payload: bytes
    #: Number of lines (records) in the batch.
    records: int
    #: File name of the segment that holds it (for diagnostics).
    segment: str
    #: Byte offset of the entry in that segment (for diagnostics).
    offset: int

    @property
    def lines(self) -> list[bytes]:
        """The batch as it was appended."""
        return self.payload.split(b"\n")


class _Item(NamedTuple):
    """One entry (``ok``) or one damaged region (not ``ok``) of a segment."""

    offset: int
    end: int
    #: record count; -1 for a damaged region whose header could not be read
    records: int
    crc: int
    ok: bool


class _Segment:
    """A segment this process holds the lock on: its own, or one taken over."""

    __slots__ = ("fd", "items", "name", "own", "pending_bytes", "pending_records", "size")

    def __init__(self, name: str, fd: int, size: int, *, own: bool) -> None:
        self.name = name
        self.fd = fd
        self.size = size
        self.own = own
        #: what is not acknowledged yet, oldest first
        self.items: deque[_Item] = deque()
        self.pending_records = 0
        self.pending_bytes = 0

    def push(self, item: _Item) -> None:
        self.items.append(item)
        if item.ok:
            self.pending_records += item.records
            self.pending_bytes += item.end - item.offset

    def pop(self) -> _Item:
        item = self.items.popleft()
        if item.ok:
            self.pending_records -= item.records
            self.pending_bytes -= item.end - item.offset
        return item


class _Handles:
    """The open file descriptors, kept apart from ``Spool`` so a finalizer can close them."""

    def __init__(self, dir_fd: int) -> None:
        self.dir_fd = dir_fd
        self.segments: list[_Segment] = []

    def close(self) -> None:
        # Closing the last descriptor of a segment releases its flock: after this, another
        # process may take the segments over.
        for segment in self.segments:
            _close_quietly(segment.fd)
        self.segments.clear()
        if self.dir_fd >= 0:
            _close_quietly(self.dir_fd)
            self.dir_fd = -1


class Spool:
    """A durable FIFO of batches in ``directory``, shareable by several processes (POSIX).

    Thread-safe; one consumer (``peek``/``ack``) at a time is expected.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: FsyncPolicy = "batch",
    ) -> None:
        self.max_bytes = _integer("max_bytes", max_bytes, MIN_MAX_BYTES)
        self.segment_bytes = _integer("segment_bytes", segment_bytes, MIN_SEGMENT_BYTES)
        if fsync not in FSYNC_POLICIES:
            raise ValueError(
                f"Invalid fsync: it should be one of {', '.join(map(repr, FSYNC_POLICIES))}, "
                f"not: {fsync!r}"
            )
        self.fsync: FsyncPolicy = fsync
        if sys.platform == "win32":
            raise SpoolError(
                "The disk spool needs POSIX file locks (fcntl.flock), which Windows lacks"
            )
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(
                f"Invalid spool directory: it should be a path, not {type(directory).__name__}: "
                f"{directory!r}"
            )
        self.directory = os.path.abspath(os.fspath(directory))
        # A quarter of the bound at most, so dropping the oldest segment frees a useful part
        # of the room without throwing away most of what is stored.
        self._segment_limit = max(MIN_SEGMENT_BYTES, min(self.segment_bytes, self.max_bytes // 4))
        self._handles = _Handles(_open_directory(self.directory))
        self._finalizer = weakref.finalize(self, self._handles.close)
        # Not at interpreter exit: the sink's exit handler may still spool what it could not
        # send, and the kernel releases descriptors and locks when the process ends anyway.
        self._finalizer.atexit = False
        self._segments = self._handles.segments  # held segments, sorted by name = oldest first
        self._lock = threading.Lock()
        self._active: _Segment | None = None
        self._held_bytes = 0
        self._foreign_bytes = 0
        self._backlog = False  # the last rescan left dead segments for lack of MAX_TAKEN room
        self._ignored: set[str] = set()
        self._head: SpoolEntry | None = None
        self._head_segment: _Segment | None = None
        self._detached: tuple[int, int] = (0, 0)
        self._next_rescan = 0.0
        self._last_rescan = 0.0
        self._last_ns = 0
        self._counter = 0
        self._token = os.urandom(4).hex()
        self._closed = False
        #: Records lost after the spool accepted them, by reason: "spool_full" (the oldest
        #: segments were deleted to stay within max_bytes), "spool_corrupt" (damaged entries).
        self.dropped: dict[str, int] = {}
        #: Damaged regions whose record count could not be read (each held >= 1 entry).
        self.corrupt_unknown = 0
        _lifecycle.on_fork_in_child(self._after_fork_in_child)
        try:
            with self._lock:
                self._rescan()
        except BaseException:
            self._finalizer()
            raise

    # -- public ------------------------------------------------------------------------------

    def append(self, lines: Sequence[bytes]) -> None:
        """Store one batch as one entry; durable per the ``fsync`` policy when this returns.

        An empty batch is ignored. Raises ``SpoolFullError`` when the batch does not fit in
        ``max_bytes`` (after dropping the oldest segments) or the disk is full, ``SpoolError``
        on other I/O errors; in both cases nothing of the batch is stored.
        """
        count = len(lines)
        if not count:
            return
        payload = b"\n".join(lines)
        if payload.count(b"\n") != count - 1:
            raise ValueError("Invalid lines: a line contains a newline character")
        size = ENTRY_HEADER_SIZE + len(payload)
        if len(payload) > _MAX_PAYLOAD or size + len(FILE_MAGIC) > self.max_bytes:
            raise SpoolFullError(
                f"a batch of {size} bytes does not fit in the spool (max_bytes={self.max_bytes})"
            )
        crc = zlib.crc32(payload)
        head = _ENTRY.pack(ENTRY_MAGIC, len(payload), count, crc, 0)[:16]
        header = head + struct.pack("<I", zlib.crc32(head))
        with self._lock:
            self._check_open()
            self._make_room(size + len(FILE_MAGIC))
            active = self._active
            if (
                active is not None
                and active.size > len(FILE_MAGIC)
                and active.size + size > self._segment_limit
            ):
                self._active = None  # sealed: it stays held until its entries are acked
            if self._active is None:
                self._active = self._create_segment()
            segment = self._active
            offset = segment.size
            try:
                _write_all(segment.fd, header, payload)
                if self.fsync != "never":
                    _sync(segment.fd)
            except OSError as exc:
                self._undo_append(segment, offset)
                if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                    raise SpoolFullError(f"the disk is full: {exc}") from exc
                raise SpoolError(f"cannot write to the spool: {exc}") from exc
            segment.size = offset + size
            self._held_bytes += size
            segment.push(_Item(offset, offset + size, count, crc, ok=True))

    def peek(self) -> SpoolEntry | None:
        """The oldest pending entry, without removing it; None when nothing is pending.

        Returns the same entry again until it is acknowledged. Damaged entries met on the
        way are skipped and counted as dropped ("spool_corrupt").
        """
        with self._lock:
            self._check_open()
            if self._head is not None:
                return self._head
            if time.monotonic() >= self._next_rescan:
                self._rescan()
            while True:
                while self._segments:
                    segment = self._segments[0]
                    entry = self._first_entry(segment)
                    if entry is not None:
                        self._head = entry
                        self._head_segment = segment
                        return entry
                    self._retire(segment)
                if not self._backlog:
                    return None
                # Dead segments left behind by the MAX_TAKEN cap: no need to wait for the
                # next periodic rescan now that everything held is sent.
                self._rescan()

    def ack(self, entry: SpoolEntry) -> None:
        """The entry ``peek()`` returned is resolved (sent, or counted as dropped by the caller).

        It is never returned again, by this or any later process; a segment whose entries
        are all acknowledged is deleted. Raises ``SpoolError`` when the acknowledgement
        could not be written to disk: the entry is acknowledged in this process all the same,
        but a later process may send it again.
        """
        with self._lock:
            self._check_open()
            if entry is not self._head:
                raise ValueError(
                    "Invalid entry: ack() takes the entry that the last peek() returned, once"
                )
            segment = self._head_segment
            self._head = None
            self._head_segment = None
            if segment is None:
                # Its segment was dropped for room while it was out; its records were left
                # out of the "spool_full" count for this moment.
                self._detached = (0, 0)
                return
            item = segment.pop()
            if not segment.items:
                self._retire(segment)
                return
            try:
                self._write_ack(segment, item.end)
            except OSError as exc:
                raise SpoolError(f"cannot record the acknowledgement: {exc}") from exc

    def pending(self) -> tuple[int, int]:
        """``(records, bytes)`` of the entries this process will deliver (bytes on disk)."""
        with self._lock:
            records, nbytes = self._detached
            for segment in self._segments:
                records += segment.pending_records
                nbytes += segment.pending_bytes
            return records, nbytes

    def rescan(self) -> None:
        """Look at the directory now: take over segments of dead processes, clean up."""
        with self._lock:
            self._check_open()
            self._rescan()

    def stats(self) -> dict[str, Any]:
        """Counters for the sink's ``stats()``."""
        records, nbytes = self.pending()
        with self._lock:
            return {
                "pending_records": records,
                "pending_bytes": nbytes,
                "disk_bytes": self._held_bytes,
                "foreign_bytes": self._foreign_bytes,
                "segments": len(self._segments),
                "taken_over": sum(not s.own for s in self._segments),
                "dropped": dict(self.dropped),
                "corrupt_unknown": self.corrupt_unknown,
            }

    def close(self) -> None:
        """Release the files and their locks; the segments stay for a later process."""
        with self._lock:
            self._closed = True
            self._active = None
            self._head = None
            self._head_segment = None
            self._finalizer()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"segments={len(self._segments)}"
        return f"Spool({self.directory!r}, fsync={self.fsync!r}, {state})"

    # -- writing -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError("the spool is closed")

    def _make_room(self, need: int) -> None:
        """Delete the oldest held segments until ``need`` more bytes fit in ``max_bytes``."""
        if need + self._foreign_bytes > self.max_bytes:
            if time.monotonic() - self._last_rescan >= _FULL_RESCAN:
                self._rescan()
            if need + self._foreign_bytes > self.max_bytes:
                raise SpoolFullError(
                    f"a batch of {need} bytes does not fit in the spool: max_bytes="
                    f"{self.max_bytes}, {self._foreign_bytes} bytes are held by other processes"
                )
        while self._segments and self._held_bytes + self._foreign_bytes + need > self.max_bytes:
            self._drop(self._segments[0])

    def _drop(self, segment: _Segment) -> None:
        """Delete a segment for room, counting what it still held."""
        head = self._head
        for item in segment.items:
            if head is not None and self._head_segment is segment and item.offset == head.offset:
                # The consumer is sending this one: count it when it comes back (ack), not now.
                self._detached = (item.records, item.end - item.offset)
                self._head_segment = None
            elif item.ok:
                self._count("spool_full", item.records)
            else:
                self._count_damage(item)
        self._retire(segment)

    def _create_segment(self) -> _Segment:
        now = max(
            time.time_ns(), self._last_ns + 1
        )  # strictly increasing, even if the clock steps back
        self._last_ns = now
        self._counter += 1
        name = f"{now:020d}-{os.getpid()}-{self._counter}-{self._token}.seg"
        dir_fd = self._handles.dir_fd
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | _O_NOFOLLOW | _O_CLOEXEC
        try:
            # Created under a name rescans do not take over, locked, then renamed: a segment
            # is never visible unlocked while its writer lives.
            fd = os.open(name + ".new", flags, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                raise SpoolFullError(f"the disk is full: {exc}") from exc
            raise SpoolError(f"cannot create a spool segment: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_all(fd, FILE_MAGIC, b"")
            os.rename(name + ".new", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            if self.fsync != "never":
                # The name must be durable too, or a power loss could lose the whole file.
                os.fsync(dir_fd)
        except OSError as exc:
            _close_quietly(fd)
            for leftover in (name + ".new", name):
                _unlink_quietly(leftover, dir_fd)
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                raise SpoolFullError(f"the disk is full: {exc}") from exc
            raise SpoolError(f"cannot create a spool segment: {exc}") from exc
        segment = _Segment(name, fd, len(FILE_MAGIC), own=True)
        bisect.insort(self._segments, segment, key=_by_name)
        self._held_bytes += segment.size
        return segment

    def _undo_append(self, segment: _Segment, offset: int) -> None:
        """After a failed write, cut the partial entry off so the next one follows a good one."""
        try:
            os.ftruncate(segment.fd, offset)
        except OSError:
            # Cannot cut: write no more here. Our own index ends before the damage; a process
            # taking this file over later sees the tail as a damaged region.
            if self._active is segment:
                self._active = None

    # -- reading ---------------------------------------------------------------------------------

    def _first_entry(self, segment: _Segment) -> SpoolEntry | None:
        """The first readable entry of ``segment``, skipping (and counting) damaged ones."""
        skipped = False
        while segment.items:
            item = segment.items[0]
            if item.ok:
                length = item.end - item.offset - ENTRY_HEADER_SIZE
                try:
                    payload = os.pread(segment.fd, length, item.offset + ENTRY_HEADER_SIZE)
                except OSError as exc:
                    raise SpoolError(f"cannot read spool segment {segment.name}: {exc}") from exc
                if len(payload) == length and zlib.crc32(payload) == item.crc:
                    if skipped:
                        self._persist_skip(segment, item.offset)
                    return SpoolEntry(payload, item.records, segment.name, item.offset)
            segment.pop()
            self._count_damage(item)
            skipped = True
        return None

    def _persist_skip(self, segment: _Segment, offset: int) -> None:
        # A failure only costs a second count of the same damage by a later process: not
        # worth failing peek() for.
        with contextlib.suppress(OSError):
            self._write_ack(segment, offset)

    def _count(self, reason: str, records: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + records

    def _count_damage(self, item: _Item) -> None:
        if item.records >= 0:
            self._count("spool_corrupt", item.records)
        else:
            self.corrupt_unknown += 1

    # -- acknowledgements and deletion ------------------------------------------------------------

    def _write_ack(self, segment: _Segment, offset: int) -> None:
        dir_fd = self._handles.dir_fd
        name = segment.name + ".ack"
        head = _ACK.pack(_ACK_MAGIC, offset, 0)[:15]
        data = head + struct.pack("<I", zlib.crc32(head))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_NOFOLLOW | _O_CLOEXEC
        # Only the lock holder writes the .tmp, so one fixed name cannot collide.
        fd = os.open(name + ".tmp", flags, 0o600, dir_fd=dir_fd)
        try:
            _write_all(fd, data, b"")
            if self.fsync == "always":
                _sync(fd)
        finally:
            os.close(fd)
        os.replace(name + ".tmp", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        if self.fsync == "always":
            os.fsync(dir_fd)

    def _read_ack(self, name: str) -> int:
        """The acknowledged offset of segment ``name`` (0 when none or unreadable)."""
        try:
            fd = os.open(
                name + ".ack", os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=self._handles.dir_fd
            )
        except OSError:
            return 0
        try:
            data = os.pread(fd, _ACK.size, 0)
        except OSError:
            return 0
        finally:
            os.close(fd)
        if len(data) != _ACK.size:
            return 0
        magic, offset, crc = _ACK.unpack(data)
        if magic != _ACK_MAGIC or crc != zlib.crc32(data[:15]):
            # Unreadable: start from the beginning; that resends (duplicates), never loses.
            return 0
        return int(offset)

    def _retire(self, segment: _Segment) -> None:
        """Forget a segment that holds nothing more: delete its files, then release its lock."""
        self._segments.remove(segment)
        self._held_bytes -= segment.size
        if self._active is segment:
            self._active = None
        dir_fd = self._handles.dir_fd
        try:
            os.unlink(segment.name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError:
            # It stays on disk: mark it fully acknowledged so nobody resends it.
            with contextlib.suppress(OSError):
                self._write_ack(segment, segment.size)
        # Segment first, sidecar second: a crash in between leaves an orphan .ack (cleaned
        # up by rescans), never a segment without its acknowledged offset.
        _unlink_quietly(segment.name + ".ack", dir_fd)
        _unlink_quietly(segment.name + ".ack.tmp", dir_fd)
        if self.fsync == "always":
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)
        # Unlocking last: a process probing the file now finds its name gone.
        _close_quietly(segment.fd)

    # -- sharing the directory ------------------------------------------------------------------

    def _rescan(self) -> None:
        now = time.monotonic()
        self._last_rescan = now
        self._next_rescan = now + RESCAN_INTERVAL
        dir_fd = self._handles.dir_fd
        try:
            names = sorted(os.listdir(dir_fd))
        except OSError as exc:
            raise SpoolError(f"cannot list the spool directory {self.directory!r}: {exc}") from exc
        held = {segment.name for segment in self._segments}
        taken = sum(not segment.own for segment in self._segments)
        present = set()
        foreign = 0
        backlog = False
        for name in names:
            if not _SEGMENT_NAME.match(name):
                continue
            present.add(name)
            if name in held or name in self._ignored:
                continue
            if taken >= MAX_TAKEN:
                backlog = True
                foreign += _size_of(name, dir_fd)
                continue
            result = self._take_over(name)
            if isinstance(result, _Segment):
                taken += 1
            else:
                foreign += result
        self._foreign_bytes = foreign
        self._backlog = backlog
        self._ignored &= present
        for name in names:
            self._clean_leftover(name, present)

    def _take_over(self, name: str) -> _Segment | int:
        """Lock and adopt segment ``name`` if its owner is gone; else its size (0 if gone)."""
        locked = self._lock_orphan(name)
        if isinstance(locked, int):
            return locked
        fd, size = locked
        segment = _Segment(name, fd, size, own=False)
        start = max(self._read_ack(name), len(FILE_MAGIC))
        try:
            for item in _scan(fd, start, size):
                segment.push(item)
        except OSError:
            _close_quietly(fd)  # unreadable now (EIO...): try again at the next rescan
            return size
        bisect.insort(self._segments, segment, key=_by_name)
        self._held_bytes += size
        if not segment.items:
            self._retire(segment)  # fully acknowledged: its holder died before deleting it
        return segment

    def _lock_orphan(self, name: str) -> tuple[int, int] | int:
        """``(fd, size)`` with the lock held if nobody holds segment ``name``; else its size."""
        dir_fd = self._handles.dir_fd
        try:
            fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EACCES, errno.EPERM):
                self._ignored.add(name)  # not ours to read (a symlink, another user's file)
            # Otherwise (out of descriptors...): try again at the next rescan.
            return _size_of(name, dir_fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            # A live owner (or another taker) holds it.
            size = _fstat_size(fd)
            _close_quietly(fd)
            return size
        try:
            info = os.fstat(fd)
            now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            now = None
        if now is None or (info.st_dev, info.st_ino) != (now.st_dev, now.st_ino):
            # Deleted (by its last holder) between our open and our lock: names are never
            # reused, so there is nothing to take.
            _close_quietly(fd)
            return 0
        if not stat.S_ISREG(info.st_mode):
            _close_quietly(fd)
            self._ignored.add(name)
            return 0
        return fd, info.st_size

    def _clean_leftover(self, name: str, present: set[str]) -> None:
        """Remove sidecars of deleted segments and ``.new`` files of writers that died."""
        dir_fd = self._handles.dir_fd
        for suffix in (".ack", ".ack.tmp"):
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                if _SEGMENT_NAME.match(base) and base not in present and not _exists(base, dir_fd):
                    _unlink_quietly(name, dir_fd)
                return
        if not name.endswith(".new") or not _SEGMENT_NAME.match(name[:-4]):
            return
        try:
            fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            return
        try:
            # Young ones may be between os.open() and flock() in their writer.
            if time.time() - os.fstat(fd).st_mtime < _STALE_NEW:
                return
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _unlink_quietly(name, dir_fd)
        except OSError:
            return
        finally:
            _close_quietly(fd)

    def _after_fork_in_child(self) -> None:
        """The child shares the parent's open files: let go of them, start empty.

        Only close, never ``LOCK_UN``: the lock belongs to the open file description the
        parent still uses, and unlocking here would unlock the parent's segments.
        """
        self._lock = threading.Lock()
        for segment in self._segments:
            _close_quietly(segment.fd)
        self._segments.clear()
        self._active = None
        self._head = None
        self._head_segment = None
        self._detached = (0, 0)
        self._held_bytes = 0
        self._foreign_bytes = 0
        self._next_rescan = 0.0
        self.dropped = {}
        self.corrupt_unknown = 0


# -- helpers -------------------------------------------------------------------------------------


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"Invalid {name}: it should be an integer, not {type(value).__name__}: {value!r}"
        )
    if value < minimum:
        raise ValueError(f"Invalid {name}: it should be >= {minimum} (bytes), not: {value!r}")
    return value


def _open_directory(path: str) -> int:
    """Create ``path`` with mode 0700 (or check it), return an open descriptor on it.

    Every later operation is relative to this descriptor, so a ``chdir`` or a renamed parent
    does not send segments elsewhere.
    """
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # the umask may have taken bits away; 0700 exactly
    except FileExistsError:
        pass
    except FileNotFoundError:
        try:
            os.makedirs(path, 0o700, exist_ok=True)
            os.chmod(path, 0o700)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool directory {path!r}: {exc}") from exc
    except OSError as exc:
        raise SpoolError(f"cannot create the spool directory {path!r}: {exc}") from exc
    try:
        fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError as exc:
        raise SpoolError(f"cannot open the spool directory {path!r}: {exc}") from exc
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISDIR(info.st_mode):
        problem = "it is not a directory"
    elif info.st_uid != os.geteuid():
        problem = f"it is owned by uid {info.st_uid}, not by this process (uid {os.geteuid()})"
    elif info.st_mode & 0o022:
        # Whoever can write here can plant segments that get shipped as our logs.
        problem = f"it is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem is not None:
        os.close(fd)
        raise SpoolError(f"unsafe spool directory {path!r}: {problem}; expected mode 0700")
    return fd


def _parse_header(raw: bytes) -> tuple[int, int, int] | None:
    """``(payload length, records, payload crc)`` of a valid entry header, else None."""
    if len(raw) != ENTRY_HEADER_SIZE or raw[:4] != ENTRY_MAGIC:
        return None
    _, length, records, crc, header_crc = _ENTRY.unpack(raw)
    if header_crc != zlib.crc32(raw[:16]) or records == 0:
        return None
    return length, records, crc


def _scan(fd: int, start: int, end: int) -> list[_Item]:
    """Index a segment from ``start`` to ``end``: entries, and the damaged regions between."""
    items = []
    pos = start
    while pos < end:
        if end - pos < ENTRY_HEADER_SIZE:
            items.append(_Item(pos, end, -1, 0, ok=False))  # a torn header at the tail
            break
        parsed = _parse_header(os.pread(fd, ENTRY_HEADER_SIZE, pos))
        if parsed is None:
            found = _resync(fd, pos + 1, end)
            items.append(_Item(pos, found, -1, 0, ok=False))
            pos = found
            continue
        length, records, crc = parsed
        stop = pos + ENTRY_HEADER_SIZE + length
        if stop > end:
            items.append(_Item(pos, end, records, 0, ok=False))  # a torn payload at the tail
            break
        items.append(_Item(pos, stop, records, crc, ok=True))
        pos = stop
    return items


def _resync(fd: int, start: int, end: int) -> int:
    """Offset of the next valid entry header at or after ``start``, else ``end``."""
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(_RESYNC_CHUNK, end - pos), pos)
        if not chunk:
            break
        index = chunk.find(ENTRY_MAGIC)
        while index >= 0:
            candidate = pos + index
            if _parse_header(os.pread(fd, ENTRY_HEADER_SIZE, candidate)) is not None:
                return candidate
            index = chunk.find(ENTRY_MAGIC, index + 1)
        # Overlap so a marker cut by the chunk boundary is still found.
        pos += max(1, len(chunk) - (len(ENTRY_MAGIC) - 1))
    return end


def _write_all(fd: int, first: bytes, second: bytes) -> None:
    """Write both buffers in full (one system call in the common case, without a copy)."""
    buffers = [memoryview(b) for b in (first, second) if b]
    while buffers:
        written = os.writev(fd, buffers)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no progress writing to the spool")
        while buffers and written >= len(buffers[0]):
            written -= len(buffers[0])
            buffers.pop(0)
        if written:
            buffers[0] = buffers[0][written:]


def _sync(fd: int) -> None:
    """Make the file's data durable."""
    if sys.platform == "darwin":
        # macOS fsync() does not flush the drive's cache; F_FULLFSYNC does.
        try:
            fcntl.fcntl(fd, getattr(fcntl, "F_FULLFSYNC", 51))
            return
        except OSError:
            pass
        os.fsync(fd)
    else:
        # fdatasync: the data and the size, not the timestamps; some BSDs lack it.
        getattr(os, "fdatasync", os.fsync)(fd)


def _by_name(segment: _Segment) -> str:
    return segment.name


def _size_of(name: str, dir_fd: int) -> int:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_size
    except OSError:
        return 0


def _fstat_size(fd: int) -> int:
    try:
        return os.fstat(fd).st_size
    except OSError:
        return 0


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def _unlink_quietly(name: str, dir_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
