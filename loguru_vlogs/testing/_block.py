"""How VictoriaLogs v1.52.2 packs the rows of one stream into a block, and what comes back.

A block holds rows of one stream (and one tenant and day), sorted by time. Building it
(``block.mustInitFromRows``) can drop rows, and storing its columns (``valuesEncoder.encode``)
can change the text of values:

- **Column limit.** When the rows do not all have the same field names, the block counts
  field names row by row: a row whose field count, added to the distinct names seen so far,
  exceeds :data:`MAX_COLUMNS_PER_BLOCK` is dropped together with every row after it in the
  block. ``_msg`` (also the default one) and stream fields count; ``_time`` and ``_stream``
  are not fields of the block. In such a block a key repeated in one row keeps its last value.
- **Column encoding.** A column whose values are all equal (and at most 256 bytes) is stored
  as a constant, verbatim. Otherwise the first of these that accepts every value of the
  column wins: a dictionary (at most 8 distinct values of at most 256 bytes in all: verbatim),
  unsigned integers, signed integers, float64, IPv4 addresses, ISO8601 timestamps, and text
  (verbatim). The numeric, address and timestamp encodings print the parsed value back, so
  ``1_000`` reads back as ``1000``, ``-0`` as ``0``, ``0.3`` as ``0.30000000000000004``,
  ``010.001.002.003`` as ``10.1.2.3`` and ``2026-11-20 08:15:30.123Z`` with a ``T``.
- **Merges** (``block_stream_merger.go``). A merge reads the blocks of a stream from several
  parts by their first timestamp (:func:`heap_order`, Go's heap) and writes them again
  (:func:`merge_stream`): a block of 2 MiB or more (``uncompressedSizeBytes``, the estimated
  JSON size of the values it was built from) goes out as it is when nothing is pending; a
  smaller one waits, and is written as it is if the next block would bring what is pending to
  4 MiB or more. Otherwise both are unpacked (``block.appendRowsTo``: values as they read back,
  constant columns first) and their rows merged by timestamp (``rows.mergeRows``); merged rows
  become a block again (:func:`build_block`, the column limit and the encodings included) once
  their estimated size reaches 2 MiB, before a block that does not fit, and at the end. So a
  merge can drop rows of several requests and change values again: a lone ``0.3`` read back
  as sent becomes ``0.30000000000000004`` in a float64 column of the merged block, and
  ``0.47764000000000006`` (what a float64 column printed) becomes ``0.4776400000000001``.

Everything here is a re-implementation in Python of the server's arithmetic (its parse quirks
included), checked against the recordings in ``tests/data/conformance``.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from fractions import Fraction

from ._gotime import parse_date_uint, parse_timestamp_secs

#: ``maxColumnsPerBlock``.
MAX_COLUMNS_PER_BLOCK = 2000
#: ``maxUncompressedBlockSize``: a block is cut once its rows' estimated JSON size reaches it.
MAX_UNCOMPRESSED_BLOCK_SIZE = 2 * 1024 * 1024
#: ``maxConstColumnValueSize``.
MAX_CONST_COLUMN_VALUE_SIZE = 256
#: ``maxDictLen`` and ``maxDictSizeBytes``.
MAX_DICT_LEN = 8
MAX_DICT_SIZE_BYTES = 256

_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_NANOS = 1_000_000_000
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
#: len(`{}\n`) + len(`"_time":""`) + len(time.RFC3339Nano)
_ROW_OVERHEAD = 3 + 10 + 35
#: The doubles nearest to 10**0 ... 10**31 (Go's ``math.pow10tab``).
_POW10 = tuple(float(f"1e{i}") for i in range(32))

Field = tuple[str, str]


def estimated_json_row_len(fields: Sequence[Field]) -> int:
    """``EstimatedJSONRowLen``: the row's size as JSON, as the server estimates it."""
    size = _ROW_OVERHEAD
    for name, value in fields:
        if value:
            size += 6 + _byte_len(name) + _byte_len(value)
    return size


def _byte_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------------------------------------
# The parsers of values_encoder.go (they work on UTF-8 bytes)


def parse_uint64(text: bytes) -> int | None:
    """``tryParseUint64``: ASCII digits and ``_`` (skipped), no leading zero, uint64 range."""
    if not text or len(text) > 26 or (len(text) > 1 and text[0] == 0x30):
        return None
    number = 0
    for byte in text:
        if byte == 0x5F:
            continue
        if not 0x30 <= byte <= 0x39:
            return None
        number = number * 10 + byte - 0x30
        if number > _U64_MAX:
            return None
    return number


def parse_int64(text: bytes) -> int | None:
    """``tryParseInt64``: an optional ``-`` before :func:`parse_uint64`, int64 range."""
    if not text:
        return None
    minus = text[0] == 0x2D
    number = parse_uint64(text[1:] if minus else text)
    if number is None:
        return None
    if number > _I64_MAX:
        return _I64_MIN if minus and number == 1 << 63 else None
    return -number if minus else number


def _pow10(exponent: int) -> float:
    """Go's ``math.Pow10`` for the exponents a value can have here (-26 ... 0)."""
    if exponent >= 0:
        return _POW10[exponent] if exponent < 32 else float("inf")
    return 1.0 / _POW10[-exponent] if exponent > -32 else 0.0


def _fused_multiply_add(x: float, y: float, z: float) -> float:
    """``math.FMA``: ``x * y + z`` rounded once (exact rational arithmetic, then rounding)."""
    return float(Fraction(x) * Fraction(y) + Fraction(z))


def parse_float64_exact(text: bytes) -> float | None:  # noqa: PLR0911 - Go's early exits
    """``tryParseFloat64Exact``: ``[-]digits`` below 2**53 or ``[-]digits.digits``.

    No sign but ``-``, no exponent, no leading or trailing dot; ``_`` allowed like
    :func:`parse_uint64`; at most 27 bytes. The decimal ``I.F`` becomes
    ``FMA(float(F), Pow10(-digits of F), float(I))``, negated for ``-``: one rounding of a
    product that was already rounded, which is why ``0.3`` comes back as ``0.30000000000000004``.
    """
    if not text or len(text) > 27:
        return None
    minus = text[0] == 0x2D
    if minus:
        text = text[1:]
    dot = text.find(b".")
    if dot < 0:
        number = parse_uint64(text)
        if number is None or number >= 1 << 53:
            return None
        value = float(number)
        return -value if minus else value
    if dot == 0 or dot == len(text) - 1:
        return None
    int_part = parse_uint64(text[:dot])
    if int_part is None:
        return None
    frac = text[dot + 1 :]
    skip = 0
    while skip < len(frac) - 1 and frac[skip] == 0x30:
        skip += 1
    frac_part = parse_uint64(frac[skip:])
    if frac_part is None:
        return None
    scale = _pow10(frac.count(b"_") - len(frac))
    value = _fused_multiply_add(float(frac_part), scale, float(int_part))
    return -value if minus else value


def format_float64(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'f', -1, 64)``: the shortest digits that read back as
    the same float64, written without an exponent."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    return format(Decimal(repr(value)).normalize(), "f")


def parse_ipv4(text: bytes) -> int | None:
    """``tryParseIPv4``: 7-15 bytes, three dots, each octet :func:`_parse_date_uint` <= 255."""
    if not 7 <= len(text) <= 15 or text.count(b".") != 3:
        return None
    result = 0
    for index in range(4):
        if index < 3:
            end = text.find(b".")
            if end <= 0 or end > 3:
                return None
            part, text = text[:end], text[end + 1 :]
        else:
            part = text
        octet = parse_date_uint(part)
        if octet is None or octet > 255:
            return None
        result = result << 8 | octet
    return result


def format_ipv4(number: int) -> str:
    return ".".join(str(number >> shift & 0xFF) for shift in (24, 16, 8, 0))


def parse_iso8601(text: bytes) -> int | None:
    """``tryParseTimestampISO8601``: exactly ``YYYY-MM-DDThh:mm:ss.mmmZ`` (24 bytes) → ns."""
    if len(text) != 24:
        return None
    parsed = parse_timestamp_secs(text)
    if parsed is None:
        return None
    secs, tail = parsed
    if tail[0] != 0x2E or tail[4] != 0x5A:
        return None
    millis = parse_date_uint(tail[1:4])
    if millis is None:
        return None
    return secs * _NANOS + millis * 1_000_000


def format_iso8601(nanos: int) -> str:
    seconds, fraction = divmod(nanos, _NANOS)
    days, rest = divmod(seconds, 86_400)
    day = datetime.date.fromordinal(days + _EPOCH_ORDINAL)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{day.year:04d}-{day.month:02d}-{day.day:02d}T{hours:02d}:{minutes:02d}:{secs:02d}"
        f".{fraction // 1_000_000:03d}Z"
    )


# ---------------------------------------------------------------------------------------------
# Column encoding


def _is_dictionary(values: Sequence[str]) -> bool:
    """``tryDictEncoding``: at most 8 distinct values, 256 bytes in all."""
    distinct: set[str] = set()
    size = 0
    for value in values:
        if value in distinct:
            continue
        length = _byte_len(value)
        if length > MAX_DICT_SIZE_BYTES or len(distinct) >= MAX_DICT_LEN:
            return False
        size += length
        if size > MAX_DICT_SIZE_BYTES:
            return False
        distinct.add(value)
    return True


def _all_or_none(
    values: Sequence[str], parse: Callable[[bytes], int | None], text: Callable[[int], str]
) -> list[str] | None:
    """Every value parsed and printed back, or None as soon as one does not parse."""
    out: list[str] = []
    cache: dict[str, str] = {}
    for value in values:
        printed = cache.get(value)
        if printed is None:
            parsed = parse(value.encode("utf-8", "surrogatepass"))
            if parsed is None:
                return None
            printed = cache[value] = text(parsed)
        out.append(printed)
    return out


@functools.lru_cache(maxsize=8192)
def _float_text(value: str) -> str | None:
    parsed = parse_float64_exact(value.encode("utf-8", "surrogatepass"))
    return None if parsed is None else format_float64(parsed)


def _float_column(values: Sequence[str]) -> list[str] | None:
    out: list[str] = []
    for value in values:
        text = _float_text(value)
        if text is None:
            return None
        out.append(text)
    return out


def _plain_integer(value: str, max_digits: int) -> bool:
    """Digits without a leading zero, at most ``max_digits`` of them: numbers that parse and
    print back unchanged."""
    return (
        0 < len(value) <= max_digits
        and value.isdigit()
        and value.isascii()
        and (value[0] != "0" or len(value) == 1)
    )


def _integer_column(values: Sequence[str], signed: bool) -> list[str] | None:
    """uint64 (``signed=False``) or int64 encoding of a column, or None."""
    out: list[str] = []
    parse = parse_int64 if signed else parse_uint64
    max_digits = 18 if signed else 19  # surely inside the type's range
    for value in values:
        digits = value[1:] if signed and value.startswith("-") and value != "-0" else value
        if _plain_integer(digits, max_digits):
            out.append(value)  # parsed and printed back: the same text
            continue
        number = parse(value.encode("utf-8", "surrogatepass"))
        if number is None:
            return None
        out.append(str(number))
    return out


def read_back(values: Sequence[str]) -> list[str]:
    """The values of one non-constant column of a block, as queries return them."""
    if _is_dictionary(values):
        return list(values)
    for encoded in (
        _integer_column(values, signed=False),
        _integer_column(values, signed=True),
        _float_column(values),
        _all_or_none(values, parse_ipv4, format_ipv4),
        _all_or_none(values, parse_iso8601, format_iso8601),
    ):
        if encoded is not None:
            return encoded
    return list(values)


# ---------------------------------------------------------------------------------------------
# Blocks


def column_limit_message(dropped: int, names: Sequence[str]) -> str:
    """The server's warning for rows dropped by the column limit (names sorted here; the
    server lists them in Go map order)."""
    return (
        f"ignoring {dropped} rows in the block, because they contain more than "
        f"{MAX_COLUMNS_PER_BLOCK} unique field names: [{' '.join(sorted(names))}]"
    )


def _same_fields(rows: Sequence[Sequence[Field]]) -> bool:
    """``areSameFieldsInRows``: one row, or unique names that every row repeats in order."""
    if len(rows) < 2:
        return True
    names = [name for name, _ in rows[0]]
    if len(set(names)) != len(names):
        return False
    return all(len(row) == len(names) and [n for n, _ in row] == names for row in rows[1:])


def _canonical(name: str) -> str:
    """The name a block sorts columns by (``_msg`` is the empty name inside the server)."""
    return "" if name == "_msg" else name


def _field_name(pair: Field) -> str:
    return pair[0]


@dataclass
class Block:
    """One stored block of one stream (and tenant and day): what a merge reads back from it.

    ``fields`` are the rows' values as queries return them, each row in the order a merge
    unpacks it (``block.appendRowsTo``: the constant columns, then the others, each group
    sorted by name with ``_msg`` first; empty values left out); ``printed`` are the same
    fields sorted by name, as queries print them. ``size`` is ``uncompressedSizeBytes``,
    computed from the values the block was built from (before their encoding). ``ids`` are
    the caller's names for the rows, carried through merges.
    """

    timestamps: list[int]
    fields: list[list[Field]]
    printed: list[list[Field]]
    size: int
    ids: list[int]

    @property
    def min_timestamp(self) -> int:
        return self.timestamps[0]


@dataclass
class BuiltBlock:
    """What ``block.MustInitFromRows`` made of some rows: the block (None when no row was
    kept), how many rows it dropped and the column-limit warning."""

    block: Block | None
    dropped: int = 0
    warning: str | None = None


def build_block(
    timestamps: Sequence[int], rows: Sequence[Sequence[Field]], ids: Sequence[int]
) -> BuiltBlock:
    """The block the server builds from rows of one stream, day and tenant in time order.

    ``rows`` are the fields of each row (``_msg`` named as such, empty values left out): at
    ingestion each row sorted by name, in a merge as :attr:`Block.fields` unpacked them. Rows
    past the column limit are dropped (with the warning); every column is stored as a
    constant or through :func:`read_back`. In a one-row block repeated names are all kept
    (constants first, then in their order); in a bigger block that does not have the same
    names in every row, the last value of a repeated name wins.
    """
    if _same_fields(rows):
        columns: list[tuple[str, list[str]]] = (
            [(name, [row[index][1] for row in rows]) for index, (name, _) in enumerate(rows[0])]
            if rows
            else []
        )
        kept = len(rows)
        warning = None
    else:
        order: dict[str, int] = {}
        kept = 0
        warning = None
        for row in rows:
            if len(order) + len(row) > MAX_COLUMNS_PER_BLOCK:
                warning = column_limit_message(len(rows) - kept, list(order))
                break
            for name, _ in row:
                order.setdefault(name, len(order))
            kept += 1
        columns = [(name, [""] * kept) for name in order]
        for position, row in enumerate(rows[:kept]):
            for name, value in row:
                columns[order[name]][1][position] = value  # a repeated name: the last wins
    dropped = len(rows) - kept
    if not kept:
        return BuiltBlock(None, dropped, warning)
    size = _ROW_OVERHEAD * kept
    # Per column: its name, its pairs by row (None where the row has no value), constant?
    stored: list[tuple[str, list[Field | None], bool]] = []
    for name, values in columns:
        name_len = 6 + _byte_len(name)
        size += sum(name_len + _byte_len(value) for value in values if value)
        first = values[0]
        constant = _byte_len(first) <= MAX_CONST_COLUMN_VALUE_SIZE and all(
            v == first for v in values
        )
        texts = values if constant else read_back(values)
        stored.append((name, [(name, text) if text else None for text in texts], constant))
    fields: list[list[Field]] = [[] for _ in range(kept)]
    for _, pairs, _ in sorted(stored, key=_unpack_order):
        for position, pair in enumerate(pairs):
            if pair is not None:
                fields[position].append(pair)
    printed = [sorted(row, key=_field_name) for row in fields]
    block = Block(list(timestamps[:kept]), fields, printed, size, list(ids[:kept]))
    return BuiltBlock(block, dropped, warning)


def _unpack_order(column: tuple[str, list[Field | None], bool]) -> tuple[bool, str]:
    """Constant columns first, then the others, each sorted by name (``sortColumnsByName``)."""
    return (not column[2], _canonical(column[0]))


# ---------------------------------------------------------------------------------------------
# Merges (block_stream_merger.go)


@dataclass
class MergedStream:
    """The blocks a merge wrote for one stream (blocks it did not unpack are the same objects),
    how many rows the column limit dropped and the warnings."""

    blocks: list[Block]
    dropped: int = 0
    warnings: list[str] = dataclass_field(default_factory=list)


class _Merger:
    """``blockStreamMerger`` for the blocks of one stream: a block of 2 MiB or more goes out
    as it is when nothing is pending; blocks are unpacked and their rows merged while the
    pending rows, the pending block and the next block stay under 4 MiB; merged rows become
    a block (``MustInitFromRows`` again) once they reach 2 MiB, before a block that would not
    fit, and at the end."""

    def __init__(self) -> None:
        self.out = MergedStream([])
        self.pending: Block | None = None
        self.timestamps: list[int] = []
        self.rows: list[list[Field]] = []
        self.ids: list[int] = []
        self.rows_size = 0

    def write(self, block: Block) -> None:
        """``mustWriteBlock``."""
        if not self.rows and self.pending is None and block.size >= MAX_UNCOMPRESSED_BLOCK_SIZE:
            self.out.blocks.append(block)
        elif (
            self.rows_size + (self.pending.size if self.pending else 0) + block.size
            >= 2 * MAX_UNCOMPRESSED_BLOCK_SIZE
        ):
            self.flush()
            self.write_block_data(block)
        else:
            self.merge_rows(block)

    def write_block_data(self, block: Block) -> None:
        """``mustWriteBlockData``: a full block goes out, a smaller one waits."""
        if block.size >= MAX_UNCOMPRESSED_BLOCK_SIZE:
            self.out.blocks.append(block)
        else:
            self.pending = block

    def merge_rows(self, block: Block) -> None:
        """``mustMergeRows``: unpack the pending block and this one, merge by timestamp."""
        if self.pending is not None:
            self._unpack(self.pending)
            self.pending = None
        offset = len(self.timestamps)
        self._unpack(block)
        self.timestamps, self.rows, self.ids = _merge_rows(
            (self.timestamps[:offset], self.rows[:offset], self.ids[:offset]),
            (self.timestamps[offset:], self.rows[offset:], self.ids[offset:]),
        )
        if self.rows_size >= MAX_UNCOMPRESSED_BLOCK_SIZE:
            self.flush()

    def _unpack(self, block: Block) -> None:
        self.timestamps.extend(block.timestamps)
        self.rows.extend(block.fields)
        self.ids.extend(block.ids)
        self.rows_size += sum(estimated_json_row_len(row) for row in block.fields)

    def flush(self) -> None:
        """``mustFlushRows``: the pending block as it is, or the merged rows as a new block."""
        if not self.rows:
            if self.pending is not None:
                self.out.blocks.append(self.pending)
        elif any(self.rows):
            built = build_block(self.timestamps, self.rows, self.ids)
            if built.block is not None:
                self.out.blocks.append(built.block)
            self.out.dropped += built.dropped
            if built.warning is not None:
                self.out.warnings.append(built.warning)
        self.pending = None
        self.timestamps, self.rows, self.ids = [], [], []
        self.rows_size = 0


_Rows = tuple[list[int], list[list[Field]], list[int]]


def _merge_rows(a: _Rows, b: _Rows) -> _Rows:
    """``rows.mergeRows``: A's rows up to B's first timestamp (equal ones included), then
    the roles swap; so rows with equal timestamps do not always keep A before B."""
    picks: list[tuple[_Rows, int, int]] = []  # (source, start, end)
    a_at = b_at = 0
    while a_at < len(a[0]) and b_at < len(b[0]):
        first = b[0][b_at]
        end = a_at
        while end < len(a[0]) and a[0][end] <= first:
            end += 1
        picks.append((a, a_at, end))
        a, b, a_at, b_at = b, a, b_at, end
    picks.append((a, a_at, len(a[0])))
    picks.append((b, b_at, len(b[0])))
    timestamps: list[int] = []
    rows: list[list[Field]] = []
    ids: list[int] = []
    for source, start, end in picks:
        timestamps.extend(source[0][start:end])
        rows.extend(source[1][start:end])
        ids.extend(source[2][start:end])
    return timestamps, rows, ids


def heap_order(parts: Sequence[Sequence[Block]]) -> list[Block]:
    """The order in which a merge reads the blocks of one stream from several parts: Go's
    ``container/heap`` over the parts' readers (in the given order), each at its next block,
    the smallest first timestamp on top (``blockStreamReadersHeap``); so blocks with equal
    first timestamps come in the order Go's heap happens to leave them, not part order."""
    heap = [(list(blocks), 0) for blocks in parts if blocks]

    def less(i: int, j: int) -> bool:
        return heap[i][0][heap[i][1]].min_timestamp < heap[j][0][heap[j][1]].min_timestamp

    def down(i0: int, n: int) -> bool:
        i = i0
        while True:
            j = 2 * i + 1
            if j >= n:
                break
            if j + 1 < n and less(j + 1, j):
                j += 1
            if not less(j, i):
                break
            heap[i], heap[j] = heap[j], heap[i]
            i = j
        return i > i0

    def up(j: int) -> None:
        while j > 0:
            i = (j - 1) // 2
            if not less(j, i):
                break
            heap[i], heap[j] = heap[j], heap[i]
            j = i

    for i in range(len(heap) // 2 - 1, -1, -1):  # heap.Init
        down(i, len(heap))
    order: list[Block] = []
    while heap:
        blocks, at = heap[0]
        order.append(blocks[at])
        if at + 1 < len(blocks):  # NextBlock, then heap.Fix(h, 0)
            heap[0] = (blocks, at + 1)
            if not down(0, len(heap)):
                up(0)
        else:  # heap.Pop
            heap[0], heap[-1] = heap[-1], heap[0]
            down(0, len(heap) - 1)
            heap.pop()
    return order


def merge_stream(blocks: Sequence[Block]) -> MergedStream:
    """Merge the blocks of one stream (of one tenant and day), given in the order the
    merge reads them (by their first timestamp), into the blocks the server writes."""
    merger = _Merger()
    for number, block in enumerate(blocks):
        if number == 0:
            merger.write_block_data(block)  # a new stream for the merger
        else:
            merger.write(block)
    merger.flush()
    return merger.out
