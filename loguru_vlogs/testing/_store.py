"""The storage model of a VictoriaLogs v1.52.2 single node: ``/insert/jsonline`` in, rows out.

Pure (no sockets): :meth:`Store.ingest` takes what an HTTP request carries and answers what the
real server answers; :meth:`Store.select` runs the LogsQL subset of :mod:`._logsql`;
:meth:`Store.force_merge` brings the stored rows to the state the server's merges leave. Checked
against every recorded case of ``tests/data/conformance/victorialogs-v1.52.2.json`` (after a
forced merge too, where the case was recorded with one), and the v1.26.0 cases v1.52.2 still
answers the same way (``tests/test_conformance.py``, straight and over HTTP).

Where each behaviour of ``VICTORIALOGS.md`` lives:

- query args before ``VL-*`` headers, comma lists trimmed with empty items dropped,
  ``_msg_field`` fallback, ``extra_fields`` (override data, may be stream fields),
  ``ignore_fields``/``decolorize_fields`` with ``prefix*``, ``preserve_json_keys``, ``debug``,
  stream field names with ``=`` or ``}`` (400), the 400 texts: ``_ingest._common_params``;
- tenant headers (uint32, 400 ``cannot parse "abc" as uint32: ...``): ``_ingest.parse_tenant``;
- a form ``Content-Type`` eats the body (200, nothing stored): ``_ingest._open_request``;
- ``Content-Encoding`` gzip (multistream) / zstd (optional) / deflate / snappy / identity /
  none, any other value → 200 and nothing; a stream broken part way keeps the complete lines
  before the break: ``_ingest._decode_body``;
- the 256 KiB line limit and the valid lines lost with it in the final read:
  ``_ingest._read_lines`` (``insertutil.LineReader``, whose last read carries ``io.EOF``);
- JSON → fields (fastjson's leniency, flattening, arrays/numbers/bools as raw text, ``null``
  dropped, names over 128 bytes, duplicate keys, invalid UTF-8, lone surrogates):
  ``_gojson.parse_line``;
- ``_time`` (RFC3339 with T or space, 0-9 digits, ``Z``/``±hh:mm``/``±hhmm``, no zone = local;
  Unix numbers by size; ``0``/``""``/``-``/null → now; unparsable → line skipped):
  ``_gotime.parse_timestamp`` via ``_ingest._extract_time``;
- more than 1000 fields → dropped; stream tags (``_stream_fields``, ``extra_fields``, or a
  ``_stream`` key in the data when no stream field is configured), data keys ``_time`` (when
  another field holds the time), ``_stream`` and ``_stream_id`` not stored, ``""`` dropped,
  default ``_msg``; where the insert buffer is flushed in pieces: ``_ingest._LogRows``
  (``LogRows.MustAdd``);
- a stream with a repeated tag name (a stream field given twice in one line) makes the real
  server exit: ``IngestResult.crash`` (``_ingest.stream_crash``); over HTTP the fake closes the
  connection without an answer and keeps serving;
- 200 / 400 (``processStreamInternal``: errors == lines read) / 405 / 429 (read-only):
  ``_ingest.read_request``;
- retention: older than now - retention (exactly) or later than the day of now + 2d:
  :meth:`Store._within_retention`;
- blocks: each flush piece of a request is a part of its own (an in-memory part), with blocks
  per day and stream, time-sorted, cut at 2 MiB of estimated JSON; the per-block limit of 2000
  field names (rows dropped, warning) and the column encodings that change values' text
  (float64 ``0.3`` → ``0.30000000000000004``, integers, IPv4, ISO8601):
  :func:`._block.build_block`, applied in :meth:`Store._store_piece`, kept per part in
  ``Store._partitions`` (:meth:`Store._insert`);
- merges (``/internal/force_merge``; the real server also merges by itself, a few seconds after
  ingestion, so a test that wants the final state calls ``force_merge`` on either server):
  :meth:`Store.force_merge` per day partition, first the in-memory parts into one when there
  are several (``datadb.mustFlushInmemoryPartsToFiles``), then every part into one
  (``mustForceMergeAllParts``); per stream, blocks read in Go's heap order
  (:func:`._block.heap_order`) and packed like ``blockStreamMerger`` (:func:`._block.merge_stream`:
  a block of 2 MiB or more, or one that would make 4 MiB with what is pending, is written out
  as it is; otherwise blocks are unpacked and their rows merged by timestamp, ``rows.mergeRows``,
  and rebuilt by :func:`._block.build_block` once they reach 2 MiB, before a block that does not
  fit, and at the end). Rebuilt rows meet the column limit again (dropped for good, with the
  warning, :class:`MergeResult`) and are encoded again from the texts they read back as;
- the printed row (every field, ``_time``, ``_stream_id`` and ``_stream`` included, sorted by
  name, repeated names of a one-row block constants first; values as strings; ``_time``
  RFC3339Nano UTC): :meth:`_Row.pairs`, :func:`json_line`.

NOT_MODELLED (deliberate differences; none is exercised by the conformance files):

- ``_stream_id`` is a stable hash of tenant and stream, not the server's xxhash value.
- Blocks are built per request flush piece, and merged only by :meth:`Store.force_merge`. The
  real server buffers rows of several requests for up to a second before building blocks (so
  a block can mix requests from the start, and there can be fewer in-memory parts than
  pieces: a forced merge may then merge once where the fake merges twice), flushes in-memory parts to disk after about 5 s
  (a merge when there are several), and merges at once, in the background, some of the
  in-memory parts once there are 8 or more of similar size: rows can disappear and values
  change before any forced merge, and the forced merge then logs fewer drops. Its merges pick
  parts by their compressed sizes (at most 15 at a time, several groups when many parts are
  alike), so with many parts a forced merge can leave more than one part (whose blocks are not
  merged together); the fake merges every part of a partition into one.
- Blocks with equal first timestamps in several parts are read in Go's heap order over the
  parts of that stream (oldest part first); the server's heap holds the readers of every
  stream of the partition, ordered by its stream IDs, which the fake does not have, so with
  several streams in the parts the tie order (and which rows the column limit drops) can
  differ.
- Row order inside a block: equal timestamps keep the request's order (the server's sort is
  not stable past 12 rows); a key repeated in a row of a multi-row block keeps its last value
  in that order. Without ``limit`` rows come in ingestion order (the server's is unspecified),
  also after a merge; with ``limit`` the newest N by ``_time``, newest first.
- Invalid UTF-8 is stored as U+FFFD (the server keeps the bytes and prints them raw; a client
  decoding with replacement sees the same text); key lengths are counted after the replacement.
- The text of a 400 caused by a broken compressed stream names the Python codec error and not
  ``remoteAddr=...``; the status and the stored rows are the server's. Warning texts are the
  server's, shortened (no ``log entry: ...`` suffix, names of the column-limit warning sorted).
- A form body over 10 MB is eaten whole (Go reads 10 MB and parses the rest as JSON lines);
  multipart form fields are not read as parameters.
- The 2 MiB row-size limit and the per-row 2000-field and 128-byte name checks (unreachable
  from JSON lines under the 256 KiB line limit) are not checked, and the
  ``-insert.maxLineSizeBytes`` / ``-insert.maxFieldsPerLine`` flags keep their defaults.
- The "hot partition" shortcut (rows all in the day written last skip the retention check)
  and the one-second periodic flush of a slow request are not modelled; the crashed server
  keeps serving.
- Rows stay until :meth:`Store.clear` or a merge drops them (the server later drops whole
  days past the retention). ``data_file`` / ``on_rows`` get rows as stored at ingestion, not
  as a merge rewrites them.
"""

from __future__ import annotations

import datetime
import hashlib
import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring

from ._block import (
    MAX_UNCOMPRESSED_BLOCK_SIZE,
    Block,
    build_block,
    heap_order,
    merge_stream,
)
from ._gojson import Field, go_quote
from ._gotime import (
    NANOS_PER_DAY,
    format_rfc3339_nano,
    go_day,
    parse_duration,
    parse_rfc3339,
    parse_unix_timestamp,
)
from ._ingest import (
    DEFAULT_MSG_VALUE,
    BadRequestError,
    Batch,
    Headers,
    IngestResult,
    Pairs,
    PreparedRow,
    read_request,
    stream_crash,
    stream_text,
)
from ._logsql import (
    AndFilter,
    AnyFilter,
    CountPipe,
    ExactFilter,
    FieldsPipe,
    Filter,
    InFilter,
    LimitPipe,
    Query,
    StreamFilter,
    parse_query,
)


class _Stream:
    """One log stream of one tenant."""

    __slots__ = ("stream_id", "tags", "text")

    def __init__(self, tenant: tuple[int, int], tags: tuple[Field, ...]) -> None:
        self.tags = tags
        self.text = stream_text(tags)
        digest = hashlib.blake2b(self.text.encode("utf-8", "replace"), digest_size=16).hexdigest()
        self.stream_id = f"{tenant[0]:08x}{tenant[1]:08x}{digest}"

    def get(self, name: str) -> str:
        return ""

    def stream_tags(self) -> Sequence[Field]:
        return self.tags


class _Row:
    """A stored row: its fields (values as the block returns them), sorted by name; ``seq``
    says when it was ingested (it keeps that place in query results after merges)."""

    __slots__ = ("fields", "first", "seq", "stream", "time", "ts")

    def __init__(self, ts: int, stream: _Stream, fields: Pairs, seq: int) -> None:
        self.ts = ts
        self.seq = seq
        self.time = format_rfc3339_nano(ts)
        self.stream = stream
        first = dict(fields)
        if len(first) != len(fields):
            first = {}
            for name, value in fields:
                first.setdefault(name, value)
            if sum(name == "_msg" for name, _ in fields) > 1:
                # Several _msg columns (a one-row block): the query prints the first.
                msg_at = next(i for i, (name, _) in enumerate(fields) if name == "_msg")
                fields = [f for i, f in enumerate(fields) if f[0] != "_msg" or i == msg_at]
        self.fields = fields
        self.first = first

    def get(self, name: str) -> str:
        if name == "_time":
            return self.time
        if name == "_stream":
            return self.stream.text
        if name == "_stream_id":
            return self.stream.stream_id
        return self.first.get(name, "")

    def stream_tags(self) -> Sequence[Field]:
        return self.stream.tags

    def pairs(self) -> Pairs:
        """Every column sorted by name (``DataBlock.GetColumns``), repeated names in order."""
        return sorted(
            [
                ("_time", self.time),
                ("_stream_id", self.stream.stream_id),
                ("_stream", self.stream.text),
                *self.fields,
            ],
            key=_by_name,
        )


def _by_name(pair: tuple[str, str]) -> str:
    return pair[0]


def _by_seq(row: _Row) -> int:
    return row.seq


class _StoredBlock:
    """A block of one stream in a part of a day partition, and the rows queries see of it."""

    __slots__ = ("block", "in_memory", "part", "rows")

    def __init__(self, block: Block, rows: list[_Row], part: int, in_memory: bool) -> None:
        self.block = block
        self.rows = rows
        self.part = part
        self.in_memory = in_memory


#: Blocks of one day partition by (tenant, stream), each list in part order.
_Partition = dict[tuple[tuple[int, int], _Stream], list[_StoredBlock]]
#: A block built from one flush piece of a request: its day and stream tags, and the block
#: (whose ``ids`` are the rows' positions in the piece until they are stored).
_PieceBlock = tuple[int, tuple[Field, ...], Block]


@dataclass(frozen=True)
class MergeResult:
    """What :meth:`Store.force_merge` did: rows the column limit dropped, and the warnings the
    server would have logged for them."""

    dropped: int = 0
    warnings: tuple[str, ...] = ()


def partition_name(day: int) -> str:
    """The name of a day partition (``YYYYMMDD``), which ``partition_prefix`` matches."""
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).strftime("%Y%m%d")


@dataclass
class _Tenant:
    rows: list[_Row] = field(default_factory=list)
    pending: deque[tuple[float, _Row]] = field(default_factory=deque)
    indexes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    streams: dict[_Stream, list[int]] = field(default_factory=dict)


def _canonical_name(pair: tuple[str, str]) -> str:
    """The name a block sorts a row's fields by (``_msg`` is the empty name)."""
    return "" if pair[0] == "_msg" else pair[0]


def json_line(pairs: Pairs) -> str:
    """One JSON object per row, duplicate keys kept, as the server prints them."""
    return "{" + ",".join(f"{encode_basestring(k)}:{encode_basestring(v)}" for k, v in pairs) + "}"


def pairs_to_dict(pairs: Pairs) -> dict[str, str]:
    """A row as a dict; with duplicate keys the first one wins (as in the conformance file)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        result = {}
        for name, value in pairs:
            result.setdefault(name, value)
    return result


def local_offset_nanos() -> int:
    """This machine's current UTC offset (the real server's ``time.Local``)."""
    return int(time.localtime().tm_gmtoff) * 1_000_000_000


class Store:
    """Thread-safe storage with VictoriaLogs v1.52.2 ingestion rules and a LogsQL subset."""

    def __init__(
        self,
        *,
        retention: float | str | datetime.timedelta | None = "7d",
        future_retention: float | str | datetime.timedelta | None = "2d",
        timezone_offset: float | None = None,
        visibility_delay: float = 0.0,
        default_msg_value: str = DEFAULT_MSG_VALUE,
        on_rows: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.retention = parse_duration(retention, "retention")
        self.future_retention = parse_duration(future_retention, "future_retention")
        if timezone_offset is not None and not isinstance(timezone_offset, (int, float)):
            raise TypeError(
                f"Invalid timezone_offset, it should be seconds, not: {timezone_offset!r}"
            )
        self.timezone_offset = timezone_offset
        if isinstance(visibility_delay, bool) or not isinstance(visibility_delay, (int, float)):
            raise TypeError(
                f"Invalid visibility_delay, it should be seconds, not: {visibility_delay!r}"
            )
        if visibility_delay < 0:
            raise ValueError(
                f"Invalid visibility_delay, it should not be negative, not: {visibility_delay!r}"
            )
        self.visibility_delay = float(visibility_delay)
        self.default_msg_value = default_msg_value
        #: Answer inserts with 429 like a server whose disk is nearly full.
        self.read_only = False
        self._on_rows = on_rows
        self._lock = threading.RLock()
        self._tenants: dict[tuple[int, int], _Tenant] = {}
        self._streams: dict[tuple[tuple[int, int], tuple[Field, ...]], _Stream] = {}
        self._partitions: dict[int, _Partition] = {}
        self._next_part = 0
        self._next_seq = 0

    # -- ingestion ------------------------------------------------------------------------

    def ingest(
        self,
        *,
        method: str = "POST",
        query: str = "",
        headers: Headers = (),
        body: bytes = b"",
        now_ns: int | None = None,
    ) -> IngestResult:
        """Handle one ``/insert/jsonline`` request like the real server.

        ``status`` is 0 and ``crash`` set when the real server would exit instead of answering.
        """
        now = time.time_ns() if now_ns is None else now_ns
        offset = self.timezone_offset
        outcome = read_request(
            method=method,
            query=query,
            headers=headers,
            body=body,
            now=now,
            local_offset=local_offset_nanos() if offset is None else int(offset * 1_000_000_000),
            default_msg=self.default_msg_value,
            read_only=self.read_only,
        )
        if isinstance(outcome, IngestResult):
            return outcome
        stored, crash = self._store_batch(outcome, now)
        warnings = tuple(outcome.warnings)
        decoded = outcome.decoded_body
        if crash is not None:
            return IngestResult(0, "", "", stored, outcome.dropped, decoded, warnings, crash)
        if outcome.error is not None:
            text, content_type = outcome.error + "\n", "text/plain; charset=utf-8"
            return IngestResult(400, text, content_type, stored, outcome.dropped, decoded, warnings)
        return IngestResult(200, "", "application/json", stored, outcome.dropped, decoded, warnings)

    def _store_batch(self, batch: Batch, now: int) -> tuple[int, str | None]:
        """Each flush piece of the request in turn: retention, then blocks. A piece with a
        stream the server cannot register stops there (the server exits)."""
        stored = 0
        pieces: dict[int, list[PreparedRow]] = {}
        for row in batch.rows:
            pieces.setdefault(row.piece, []).append(row)
        for piece in pieces.values():
            rows = self._within_retention(piece, now, batch.dropped, batch.warnings)
            for tags in dict.fromkeys(row.tags for row in rows):
                crash = stream_crash(tags)
                if crash is not None:
                    return stored, crash
            blocks = self._store_piece(rows, batch)
            stored += self._insert(batch.tenant, blocks)
        return stored, None

    @staticmethod
    def _store_piece(rows: list[PreparedRow], batch: Batch) -> list[_PieceBlock]:
        """Blocks per day and stream (time-sorted, cut at 2 MiB of estimated JSON), as the
        server builds them from one flush (``inmemoryPart.mustInitFromRows``); each block's
        ``ids`` are the positions of its rows in ``rows``."""
        groups: dict[tuple[int, tuple[Field, ...]], list[tuple[int, PreparedRow]]] = {}
        for position, row in enumerate(rows):
            groups.setdefault((go_day(row.ts), row.tags), []).append((position, row))
        built: list[_PieceBlock] = []
        for (day, tags), members in groups.items():
            members.sort(key=lambda item: item[1].ts)
            cuts: list[list[tuple[int, PreparedRow]]] = [[]]
            size = 0
            for item in members:
                if size >= MAX_UNCOMPRESSED_BLOCK_SIZE:
                    cuts.append([])
                    size = 0
                cuts[-1].append(item)
                size += item[1].size
            for cut in cuts:
                result = build_block(
                    [row.ts for _, row in cut],
                    [sorted(row.fields, key=_canonical_name) for _, row in cut],
                    [position for position, _ in cut],
                )
                if result.warning is not None:
                    dropped = batch.dropped.get("column_limit", 0) + result.dropped
                    batch.dropped["column_limit"] = dropped
                    batch.warnings.append(result.warning)
                if result.block is not None:
                    built.append((day, tags, result.block))
        return built

    def _within_retention(
        self, rows: list[PreparedRow], now: int, dropped: dict[str, int], warnings: list[str]
    ) -> list[PreparedRow]:
        """``Storage.MustAddRows``: from now - retention (exactly) to the end of the day of
        now + futureRetention."""
        low = None if self.retention is None else now - self.retention
        max_day = None if self.future_retention is None else go_day(now + self.future_retention)
        kept = []
        for row in rows:
            if low is not None and row.ts < low:
                dropped["too_old"] = dropped.get("too_old", 0) + 1
                warnings.append(
                    f"skipping log entry with too small timestamp={format_rfc3339_nano(row.ts)}; "
                    f"it must be bigger than {format_rfc3339_nano(low)}"
                )
            elif max_day is not None and go_day(row.ts) > max_day:
                dropped["too_new"] = dropped.get("too_new", 0) + 1
                limit = format_rfc3339_nano(max_day * NANOS_PER_DAY)
                warnings.append(
                    f"skipping log entry with too big timestamp={format_rfc3339_nano(row.ts)}; "
                    f"it must be smaller than {limit}"
                )
            else:
                kept.append(row)
        return kept

    def _insert(self, tenant_id: tuple[int, int], blocks: list[_PieceBlock]) -> int:
        """Store the blocks of one flush piece as one new (in-memory) part; the rows become
        queryable in the request's order. How many rows were stored."""
        if not blocks:
            return 0
        rank = {p: n for n, p in enumerate(sorted(p for _, _, block in blocks for p in block.ids))}
        with self._lock:
            tenant = self._tenants.setdefault(tenant_id, _Tenant())
            part = self._new_part()
            first_seq = self._next_seq
            self._next_seq += len(rank)
            new_rows: list[_Row] = []
            for day, tags, block in blocks:
                key = (tenant_id, tags)
                stream = self._streams.get(key)
                if stream is None:
                    stream = self._streams[key] = _Stream(tenant_id, tags)
                block.ids = [first_seq + rank[position] for position in block.ids]
                rows = [
                    _Row(ts, stream, printed, seq)
                    for ts, printed, seq in zip(
                        block.timestamps, block.printed, block.ids, strict=True
                    )
                ]
                partition = self._partitions.setdefault(day, {})
                partition.setdefault((tenant_id, stream), []).append(
                    _StoredBlock(block, rows, part, in_memory=True)
                )
                new_rows.extend(rows)
            new_rows.sort(key=_by_seq)
            if self.visibility_delay:
                visible_at = time.monotonic() + self.visibility_delay
                tenant.pending.extend((visible_at, row) for row in new_rows)
            else:
                self._add(tenant, new_rows)
            if self._on_rows is not None:
                self._on_rows([json_line(row.pairs()) for row in new_rows])
            return len(new_rows)

    def _new_part(self) -> int:
        self._next_part += 1
        return self._next_part

    def _add(self, tenant: _Tenant, rows: Iterable[_Row]) -> None:
        for row in rows:
            position = len(tenant.rows)
            tenant.rows.append(row)
            tenant.streams.setdefault(row.stream, []).append(position)
            for name, index in tenant.indexes.items():
                value = row.get(name)
                if value:
                    index.setdefault(value, []).append(position)

    def _promote(self, tenant: _Tenant, everything: bool = False) -> None:
        pending = tenant.pending
        if not pending:
            return
        now = time.monotonic()
        ready = []
        while pending and (everything or pending[0][0] <= now):
            ready.append(pending.popleft()[1])
        self._add(tenant, ready)

    def force_flush(self) -> None:
        """``/internal/force_flush``: everything ingested becomes visible now."""
        with self._lock:
            for tenant in self._tenants.values():
                self._promote(tenant, everything=True)

    def force_merge(self, partition_prefix: str = "") -> MergeResult:
        """``/internal/force_merge``: flush, then merge the parts of every day partition whose
        name (``YYYYMMDD``) starts with ``partition_prefix``, as the server's forced merge does.

        First the in-memory parts (one per flush piece of a request since the last merge, of
        every tenant) are merged into one part when there are several of them, then every part
        of the partition is merged into one. Each merge reads the blocks of a stream by their
        first timestamp (:func:`._block.heap_order`) and packs them like
        :func:`._block.merge_stream`: rows it unpacks can be dropped by the column limit (for
        good, with the server's warning) and are stored again through the column encodings,
        so values read back can change; a block it writes out as it is keeps its values. Rows
        keep their place in query results (ingestion order). The fake never merges by itself.
        """
        with self._lock:
            self.force_flush()
            dropped = 0
            warnings: list[str] = []
            touched: set[tuple[int, int]] = set()
            for day in sorted(self._partitions):
                if not partition_name(day).startswith(partition_prefix):
                    continue
                partition = self._partitions[day]
                in_memory = {b.part for bs in partition.values() for b in bs if b.in_memory}
                steps = [True, False] if len(in_memory) > 1 else [False]
                for only_in_memory in steps:
                    part = self._new_part()
                    for key, blocks in partition.items():
                        chosen = [b for b in blocks if b.in_memory or not only_in_memory]
                        if not chosen:
                            continue
                        merged, gone, said = self._merge_blocks(key[1], chosen, part)
                        partition[key] = [b for b in blocks if b not in chosen] + merged
                        dropped += gone
                        warnings.extend(said)
                        touched.add(key[0])
            for tenant_id in touched:
                self._reindex(tenant_id)
            return MergeResult(dropped, tuple(warnings))

    @staticmethod
    def _merge_blocks(
        stream: _Stream, blocks: list[_StoredBlock], part: int
    ) -> tuple[list[_StoredBlock], int, list[str]]:
        """Merge the blocks of one stream into one new part: its blocks, the rows dropped and
        the warnings. A block the merge did not unpack keeps its rows."""
        parts: dict[int, list[Block]] = {}
        for stored in blocks:  # in part order, each part's blocks in its order
            parts.setdefault(stored.part, []).append(stored.block)
        rows_of = {id(b.block): b.rows for b in blocks}
        merged = merge_stream(heap_order(list(parts.values())))
        result = []
        for block in merged.blocks:
            rows = rows_of.get(id(block))
            if rows is None:
                rows = [
                    _Row(ts, stream, printed, seq)
                    for ts, printed, seq in zip(
                        block.timestamps, block.printed, block.ids, strict=True
                    )
                ]
            result.append(_StoredBlock(block, rows, part, in_memory=False))
        return result, merged.dropped, merged.warnings

    def _reindex(self, tenant_id: tuple[int, int]) -> None:
        """The tenant's rows again from its blocks, in ingestion order; indexes rebuilt later."""
        tenant = self._tenants[tenant_id]
        rows = [
            row
            for partition in self._partitions.values()
            for (owner, _), blocks in partition.items()
            if owner == tenant_id
            for block in blocks
            for row in block.rows
        ]
        rows.sort(key=_by_seq)
        tenant.rows = []
        tenant.indexes.clear()
        tenant.streams.clear()
        self._add(tenant, rows)

    def clear(self) -> None:
        """Forget every row of every tenant."""
        with self._lock:
            self._tenants.clear()
            self._streams.clear()
            self._partitions.clear()

    # -- queries --------------------------------------------------------------------------

    def _index(self, tenant: _Tenant, name: str) -> dict[str, list[int]]:
        index = tenant.indexes.get(name)
        if index is None:
            index = {}
            for position, row in enumerate(tenant.rows):
                value = row.get(name)
                if value:
                    index.setdefault(value, []).append(position)
            tenant.indexes[name] = index
        return index

    def _indexed(self, tenant: _Tenant, flt: Filter) -> list[int] | None:
        if isinstance(flt, AnyFilter):
            return list(range(len(tenant.rows)))
        if isinstance(flt, ExactFilter) and flt.value:
            return list(self._index(tenant, flt.field).get(flt.value, ()))
        if isinstance(flt, InFilter) and "" not in flt.values:
            index = self._index(tenant, flt.field)
            return sorted(p for value in flt.values for p in index.get(value, ()))
        if isinstance(flt, StreamFilter):
            return sorted(p for s, ps in tenant.streams.items() if flt.matches(s) for p in ps)
        return None

    def _evaluate(self, tenant: _Tenant, flt: Filter) -> list[int]:
        found = self._indexed(tenant, flt)
        if found is not None:
            return found
        rows = tenant.rows
        if isinstance(flt, AndFilter):
            sets: list[list[int]] = []
            rest: list[Filter] = []
            for item in flt.items:
                got = self._indexed(tenant, item)
                if got is None:
                    rest.append(item)
                else:
                    sets.append(got)
            base: Iterable[int] = range(len(rows))
            if sets:
                sets.sort(key=len)
                narrowed = sets[0]
                for other in sets[1:]:
                    members = set(other)
                    narrowed = [p for p in narrowed if p in members]
                base = narrowed
            return [p for p in base if all(item.matches(rows[p]) for item in rest)]
        return [p for p, row in enumerate(rows) if flt.matches(row)]

    def _matching_rows(
        self,
        query: Query,
        tenant_id: tuple[int, int],
        limit: int | None,
        start: int | None,
        end: int | None,
    ) -> list[_Row]:
        with self._lock:
            tenant = self._tenants.get(tenant_id)
            if tenant is None:
                return []
            self._promote(tenant)
            rows = tenant.rows
            positions = self._evaluate(tenant, query.filter)
            if start is not None or end is not None:
                low = -(1 << 63) if start is None else start
                # The server's HTTP ``end`` is exclusive: [start, end).
                high = (1 << 63) if end is None else end
                positions = [p for p in positions if low <= rows[p].ts < high]
            if limit:
                positions = heapq.nlargest(limit, positions, key=lambda p: (rows[p].ts, p))
            return [rows[p] for p in positions]

    def select(
        self,
        query: str = "*",
        *,
        account_id: int = 0,
        project_id: int = 0,
        limit: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Pairs]:
        """Rows matching ``query`` as (name, value) lists in print order; raises ``LogsQLError``."""
        parsed = parse_query(query)
        rows = self._matching_rows(parsed, (account_id, project_id), limit, start, end)
        result = [row.pairs() for row in rows]
        for pipe in parsed.pipes:
            if isinstance(pipe, LimitPipe):
                result = result[: pipe.limit]
            elif isinstance(pipe, FieldsPipe):
                result = [
                    [(name, pairs_to_dict(pairs).get(name, "")) for name in pipe.names]
                    for pairs in result
                ]
            elif isinstance(pipe, CountPipe):
                dicts = (
                    [pairs_to_dict(pairs) for pairs in result]
                    if any(f for _, f in pipe.counts)
                    else []
                )
                counts = []
                for name, names in pipe.counts:
                    if names:
                        total = sum(1 for d in dicts if any(d.get(n) for n in names))
                    else:
                        total = len(result)
                    counts.append((name, str(total)))
                result = [counts]
        return result

    def rows(
        self,
        query: str = "*",
        *,
        account_id: int = 0,
        project_id: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, str]]:
        """Rows matching ``query`` as dicts (the first of duplicate keys wins)."""
        return [
            pairs_to_dict(p)
            for p in self.select(query, account_id=account_id, project_id=project_id, limit=limit)
        ]

    def count(self, query: str = "*", *, account_id: int = 0, project_id: int = 0) -> int:
        """How many rows match ``query``."""
        parsed = parse_query(query)
        if parsed.pipes:
            return len(self.select(query, account_id=account_id, project_id=project_id))
        return len(self._matching_rows(parsed, (account_id, project_id), None, None, None))


def parse_time_arg(text: str, name: str) -> int:
    """``start``/``end`` of a query: RFC3339 or a Unix number; raises ``BadRequestError``."""
    raw = text.encode("utf-8")
    nanos = parse_unix_timestamp(raw) if len(raw) <= 4 or raw[4] != ord("-") else None
    if nanos is None:
        nanos = parse_rfc3339(raw, local_offset_nanos())
    if nanos is None:
        raise BadRequestError(
            f"cannot parse {name}={go_quote(text)}: the test receiver accepts RFC3339 or Unix time"
        )
    return nanos
