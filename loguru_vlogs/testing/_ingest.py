"""``/insert/jsonline`` of VictoriaLogs v1.52.2: one HTTP request in, rows to store out.

Pure functions, no storage: :func:`read_request` applies ``insertutil.GetCommonParams``,
``protoparserutil.GetUncompressedReader``, ``insertutil.LineReader`` and
``jsonline.processStreamInternal``/``readLine``, then ``LogRows.MustAdd`` per row (stream
tags, the fields a row stores, and where the server's insert buffer is flushed in pieces). It
answers either with a final :class:`IngestResult` (errors and silent drops) or with a
:class:`Batch` of rows for the storage, which applies the retention window and builds blocks.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ._gojson import Field, JSONLineError, go_quote, parse_line
from ._gotime import TimestampError, parse_timestamp

#: The server's ``-defaultMsgValue``.
DEFAULT_MSG_VALUE = "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field"
#: ``-insert.maxLineSizeBytes``: a line this long or longer is skipped.
MAX_LINE_SIZE_BYTES = 256 * 1024
#: ``-insert.maxFieldsPerLine``: a row with more fields is dropped.
MAX_FIELDS_PER_LINE = 1000
#: ``LogRows.NeedFlush``: the insert buffer of a request is handed to the storage when its
#: copied text passes this many bytes or it holds more rows than :data:`FLUSH_ROWS`.
FLUSH_BYTES = (2 * 1024 * 1024 // 8) * 7
FLUSH_ROWS = 2 * 1024 * 1024 // 100
#: The 429 text, with the default ``-storageDataPath``.
READ_ONLY_MESSAGE = (
    "cannot add rows into storage in read-only mode; the storage can be in read-only mode "
    "because of lack of free disk space at -storageDataPath=victoria-logs-data"
)
_SUPPORTED_ENCODINGS = ("", "none", "identity", "gzip", "deflate", "zstd", "snappy")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
Pairs = list[tuple[str, str]]


class BadRequestError(Exception):
    """An HTTP 4xx answer with the server's text."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class IngestResult:
    """What ``/insert/jsonline`` answered and did."""

    status: int
    body: str
    content_type: str
    stored: int
    dropped: Mapping[str, int]
    decoded_body: bytes | None
    #: What the real server would log about this request (its warning texts).
    warnings: tuple[str, ...] = ()
    #: The real server's process exits on this request (the FATAL text): no answer at all.
    crash: str | None = None


def header_map(headers: Headers) -> dict[str, str]:
    """Lower-cased name → first value (``http.Header.Get``)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for name, value in items:
        result.setdefault(name.lower(), value)
    return result


def first_args(query: str) -> dict[str, str]:
    """Query string → first value of each key (``r.FormValue`` reads the first one)."""
    result: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        result.setdefault(key, value)
    return result


_UINT = re.compile(r"[0-9]+\Z")


def _parse_uint32(text: str) -> int:
    if not _UINT.match(text):
        reason = "invalid syntax"
    elif int(text) > 0xFFFFFFFF:
        reason = "value out of range"
    else:
        return int(text)
    quoted = go_quote(text)
    raise BadRequestError(
        f"cannot parse {quoted} as uint32: strconv.ParseUint: parsing {quoted}: {reason}"
    )


def parse_tenant(headers: Mapping[str, str]) -> tuple[int, int]:
    """``AccountID`` / ``ProjectID`` headers (lower-cased map), 0 when absent."""
    account = headers.get("accountid", "")
    project = headers.get("projectid", "")
    return (_parse_uint32(account) if account else 0, _parse_uint32(project) if project else 0)


class _NameFilter:
    """``prefixfilter.Filter``: exact names, or prefixes written as ``name*``."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.prefixes: list[str] = []
        for pattern in patterns:
            if pattern.endswith("*"):
                self.prefixes.append(pattern[:-1])
            else:
                self.exact.add(pattern)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def match(self, name: str) -> bool:
        return name in self.exact or any(name.startswith(p) for p in self.prefixes)


def _canonical(name: str) -> str:
    """``getCanonicalFieldName``: the server stores ``_msg`` under the empty name."""
    return "" if name == "_msg" else name


@dataclass
class _Params:
    tenant: tuple[int, int]
    time_fields: list[str]
    msg_fields: list[str]
    stream_set: set[str]
    extra: list[Field]
    extra_stream_tags: list[Field]
    ignore: _NameFilter
    decolorize: _NameFilter
    debug: bool
    preserve_keys: tuple[str, ...] = ()


#: ``strconv.ParseBool``.
_GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


def _common_params(args: Mapping[str, str], headers: Mapping[str, str]) -> _Params:
    """``insertutil.GetCommonParams``: the query arg wins, an empty one falls back to the header."""

    def value(arg: str, header: str) -> str:
        return args.get(arg, "") or headers.get(header.lower(), "")

    def array(arg: str, header: str) -> list[str]:
        """Comma-separated; items trimmed (Go's ``strings.TrimSpace``), empty ones dropped."""
        text = value(arg, header)
        items = (_go_trim_space(item) for item in text.split(",")) if text else ()
        return [item for item in items if item]

    tenant = parse_tenant(headers)
    time_fields = array("_time_field", "VL-Time-Field") or ["_time"]
    msg_fields = array("_msg_field", "VL-Msg-Field")
    stream_fields = array("_stream_fields", "VL-Stream-Fields")
    ignore_fields = array("ignore_fields", "VL-Ignore-Fields")
    decolorize_fields = array("decolorize_fields", "VL-Decolorize-Fields")
    preserve_keys = array("preserve_json_keys", "VL-Preserve-JSON-Keys")
    for name in stream_fields:
        problem = stream_field_name_problem(name)
        if problem is not None:
            raise BadRequestError(
                "cannot parse stream field names from the _stream_fields query arg or from "
                f"VL-Stream-Fields header: {problem}"
            )
    extra: list[Field] = []
    for item in array("extra_fields", "VL-Extra-Fields"):
        eq = item.find("=")
        if eq <= 0 or eq == len(item) - 1:
            raise BadRequestError(
                f'invalid extra_field format: {go_quote(item)}; must be in the form "field=value"'
            )
        extra.append((item[:eq], item[eq + 1 :]))
    debug = False
    debug_text = value("debug", "VL-Debug")
    if debug_text:
        if debug_text not in _GO_BOOLS:
            quoted = go_quote(debug_text)
            raise BadRequestError(
                f"cannot parse debug={quoted}: strconv.ParseBool: parsing {quoted}: invalid syntax"
            )
        debug = _GO_BOOLS[debug_text]

    # logstorage.GetLogRows: extra fields override same-named data fields (they are ignored in
    # the data); an extra field named in _stream_fields is a stream tag.
    ignore = _NameFilter([_canonical(f) for f in ignore_fields] + [_canonical(n) for n, _ in extra])
    stream_set = {_canonical(f) for f in stream_fields if not ignore.match(_canonical(f))}
    extra_stream_tags: list[Field] = []
    for name, text in extra:
        canonical = _canonical(name)
        if canonical in stream_fields:
            extra_stream_tags.append((canonical or "_msg", text))
            stream_set.discard(canonical)
    return _Params(
        tenant=tenant,
        time_fields=time_fields,
        msg_fields=msg_fields,
        stream_set=stream_set,
        extra=extra,
        extra_stream_tags=extra_stream_tags,
        ignore=ignore,
        decolorize=_NameFilter(_canonical(f) for f in decolorize_fields),
        debug=debug,
        preserve_keys=tuple(preserve_keys),
    )


#: What Go's ``strings.TrimSpace`` removes (ASCII and Unicode white space).
_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _go_trim_space(text: str) -> str:
    return text.strip(_GO_SPACE)


def stream_field_name_problem(name: str) -> str | None:
    """``CheckStreamFieldName``: why ``name`` cannot be a stream tag, or None."""
    for char in "=}":
        if char in name:
            return f"the {go_quote(name)} cannot contain {chr(39)}{char}{chr(39)} char"
    return None


ZSTD_UNAVAILABLE_MESSAGE = (
    "the test receiver needs the optional 'zstandard' package to read a zstd body; "
    "install loguru-vlogs[zstd]"
)


class ZstdUnavailableError(Exception):
    """``zstandard`` is not installed, so a zstd body cannot be read."""


def _snappy_decode(data: bytes) -> bytes:
    """Snappy block format (what ``Content-Encoding: snappy`` carries)."""
    length = shift = pos = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise ValueError("corrupt snappy length")
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                size = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > len(data):
                raise ValueError("corrupt snappy literal")
            out += data[pos : pos + size]
            pos += size
            continue
        if kind == 1:
            size = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | (data[pos] if pos < len(data) else 0)
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            size = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        if pos > len(data) or offset == 0 or offset > len(out):
            raise ValueError("corrupt snappy copy")
        start = len(out) - offset
        for i in range(size):
            out.append(out[start + i])
    if len(out) != length:
        raise ValueError("corrupt snappy length")
    return bytes(out)


def _inflate(decoder: Any, data: bytes) -> tuple[bytes, str | None]:
    """Feed a zlib decoder in pieces, keeping what came out before an error (as Go's reader)."""
    out = bytearray()
    try:
        for start in range(0, len(data), 65536):
            out += decoder.decompress(data[start : start + 65536])
    except zlib.error as err:
        return bytes(out), f"corrupt input: {err}"
    return bytes(out), None if decoder.eof else "unexpected EOF"


def _gunzip(data: bytes) -> tuple[bytes, str | None]:
    out = bytearray()
    while data:
        decoder = zlib.decompressobj(31)
        chunk, error = _inflate(decoder, data)
        out += chunk
        if error is not None:
            return bytes(out), error
        data = decoder.unused_data  # Go's gzip reader is multistream
    return bytes(out), None


def _zstd(data: bytes) -> tuple[bytes, str | None]:
    try:
        import zstandard  # optional: loguru-vlogs[zstd]
    except ImportError:
        raise ZstdUnavailableError from None
    reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
    out = bytearray()
    try:
        while True:
            chunk = reader.read(1 << 20)
            if not chunk:
                return bytes(out), None
            out += chunk
    except zstandard.ZstdError as err:
        return bytes(out), str(err)


def _decode_body(encoding: str, body: bytes) -> tuple[bytes | None, str | None]:  # noqa: PLR0911 - per encoding
    """(data, read error); data is None when the reader cannot even start (200, nothing stored).

    A read error part way keeps what was decoded before it, like Go's streaming readers.
    """
    if encoding in ("", "none", "identity"):
        return body, None
    if encoding == "gzip":
        if body[:3] != b"\x1f\x8b\x08":
            return None, None
        return _gunzip(body)
    if encoding == "deflate":
        if len(body) < 2 or body[0] & 0x0F != 8 or (body[0] << 8 | body[1]) % 31:
            return None, None
        return _inflate(zlib.decompressobj(), body)
    if encoding == "zstd":
        return _zstd(body)
    if encoding == "snappy":
        try:
            return _snappy_decode(body), None
        except (ValueError, IndexError):
            return None, None
    return None, None


def _read_lines(data: bytes, max_line: int) -> tuple[list[bytes], int]:
    """The non-empty lines ``insertutil.LineReader`` yields, and how many were too long.

    A line of ``max_line`` bytes or more is skipped by reading on to the next newline. The
    request body reader hands over its last bytes together with ``io.EOF``, and the skip then
    discards that whole final read: valid lines in the same final read are lost (the recorded
    ``too_long_line`` case). Reads are modelled as filling the 256 KiB buffer.
    """
    pieces = data.split(b"\n")
    if max(map(len, pieces)) < max_line:
        return [piece for piece in pieces if piece], 0
    lines: list[bytes] = []
    skipped = 0
    pos = 0
    buf = b""
    eof = False
    while True:
        if not buf:
            if eof:
                break
            chunk = data[pos : pos + max_line]
            pos += len(chunk)
            buf = chunk
            eof = pos >= len(data)
            continue
        newline = buf.find(b"\n")
        if newline >= 0:
            if newline:
                lines.append(buf[:newline])
            buf = buf[newline + 1 :]
            continue
        if eof:
            lines.append(buf)
            buf = b""
            continue
        if len(buf) < max_line:
            chunk = data[pos : pos + max_line - len(buf)]
            pos += len(chunk)
            buf += chunk
            eof = pos >= len(data)
            continue
        skipped += 1
        buf = b""
        while True:
            chunk = data[pos : pos + max_line]
            pos += len(chunk)
            if pos >= len(data):
                eof = True  # the final read: everything in it is dropped with the long line
                break
            newline = chunk.find(b"\n")
            if newline >= 0:
                buf = chunk[newline:]
                break
    return lines, skipped


def _extract_time(
    fields: list[Field], time_fields: Sequence[str], now: int, local_offset: int
) -> int:
    """``ExtractTimestampFromFields``: the first field named in ``time_fields``, then emptied."""
    for time_field in time_fields:
        for index, (name, text) in enumerate(fields):
            if name == time_field:
                try:
                    nanos = parse_timestamp(text, now, local_offset)
                except TimestampError as err:
                    raise TimestampError(
                        f"cannot parse timestamp from field {go_quote(name)}: {err}"
                    ) from None
                fields[index] = (name, "")
                return nanos
    return now


def _rename_msg(fields: list[Field], msg_fields: Sequence[str]) -> None:
    """``RenameField``: the first non-empty field of the fallback list becomes ``_msg``."""
    for wanted in msg_fields:
        for index, (name, text) in enumerate(fields):
            if name == wanted and text:
                fields[index] = ("_msg", text)
                return


def _drop_color_sequences(text: str) -> str:
    """``dropColorSequences``: remove ANSI ``ESC [ ...`` sequences."""
    out = []
    while True:
        start = text.find("\x1b[")
        if start < 0:
            out.append(text)
            return "".join(out)
        out.append(text[:start])
        rest = text[start + 2 :]
        n = 0
        while n < len(rest) and 0x30 <= ord(rest[n]) <= 0x3F:
            n += 1
        while n < len(rest) and 0x20 <= ord(rest[n]) <= 0x2F:
            n += 1
        if n < len(rest) and 0x30 <= ord(rest[n]) <= 0x7E:
            n += 1
        text = rest[n:]


# ---------------------------------------------------------------------------------------------
# Stream tags


class StreamTextError(ValueError):
    """A ``_stream`` value that ``parseStreamFields`` rejects."""


_GO_SIMPLE_ESCAPES = {
    "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34,
}  # fmt: skip


def _go_unquote_prefix(text: str) -> tuple[str, int]:
    """``strconv.QuotedPrefix`` + ``strconv.Unquote`` of a ``"..."`` string at the start of
    ``text``: the value and the length of the quoted text."""
    if not text.startswith('"'):
        raise StreamTextError("missing quote")
    out = bytearray()
    i = 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return out.decode("utf-8", "replace"), i + 1
        if char == "\n":
            break
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            i += 1
            continue
        kind = text[i + 1 : i + 2]
        if kind in _GO_SIMPLE_ESCAPES:
            out.append(_GO_SIMPLE_ESCAPES[kind])
            i += 2
        elif kind in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[kind]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
                break
            number = int(digits, 16)
            if kind == "x":
                out.append(number)
            elif number > 0x10FFFF or 0xD800 <= number < 0xE000:
                break
            else:
                out += chr(number).encode("utf-8")
            i += 2 + width
        elif kind in "01234567" and kind:
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or any(c not in "01234567" for c in digits):
                break
            number = int(digits, 8)
            if number > 255:
                break
            out.append(number)
            i += 4
        else:
            break
    raise StreamTextError("invalid quoted value")


def parse_stream_text(text: str) -> list[Field]:
    """``parseStreamFields``: ``{name="value",...}`` (Go-quoted values) → tags, sorted."""
    if not text.startswith("{"):
        raise StreamTextError("missing '{' at the beginning of stream name")
    text = text[1:]
    if not text.endswith("}"):
        raise StreamTextError("missing '}' at the end of stream name")
    text = text[:-1]
    tags: list[Field] = []
    if not text:
        return tags
    while True:
        eq = text.find('="')
        if eq < 0:
            raise StreamTextError(f"cannot find field value in double quotes at [{text}]")
        name = text[:eq]
        value, length = _go_unquote_prefix(text[eq + 1 :])
        text = text[eq + 1 + length :]
        tags.append((name, value))
        if not text:
            tags.sort()
            return tags
        if text[0] != ",":
            raise StreamTextError(f"missing ',' after {name}={go_quote(value)}")
        text = text[1:]


def stream_text(tags: Sequence[Field]) -> str:
    """``StreamTags.String``: ``{name="value",...}`` with Go-quoted values."""
    return "{" + ",".join(f"{name}={go_quote(value)}" for name, value in tags) + "}"


def stream_crash(tags: Sequence[Field]) -> str | None:
    """The FATAL text when registering this stream crashes the real server, else None.

    ``StreamTags.checkCorrectness`` wants names strictly increasing (no repeated name, e.g. a
    stream field given twice in one JSON line) and free of ``=`` and ``}``.
    """
    previous = ""
    for name, _ in tags:
        problem = stream_field_name_problem(name)
        if problem is None and name <= previous:
            problem = (
                "stream tags must be sorted in alphabetical order; got "
                f"{go_quote(name)} which is less or equal than {go_quote(previous)}; "
                f"streamTags={stream_text(tags)}"
            )
        elif problem is not None:
            problem = f"invalid stream tag name: {problem}"
        if problem is not None:
            return f"FATAL: cannot unmarshal StreamTags: {problem}"
        previous = name
    return None


def _canonical_size(tags: Sequence[Field]) -> int:
    """Bytes of ``StreamTags.MarshalCanonical`` (varint lengths and the texts)."""

    def varint(number: int) -> int:
        return max(1, (number.bit_length() + 6) // 7)

    size = varint(len(tags))
    for name, value in tags:
        for text in (name, value):
            length = len(text.encode("utf-8", "surrogatepass"))
            size += varint(length) + length
    return size


# ---------------------------------------------------------------------------------------------
# LogRows: one request's rows, as the insert buffer adds them


@dataclass
class PreparedRow:
    """A row as the insert buffer holds it."""

    ts: int
    #: Stream tags, sorted by (name, value).
    tags: tuple[Field, ...]
    #: The stored fields in the row's order (``_msg`` named ``_msg``), empty values left out.
    fields: Pairs
    #: Which flush of the request's insert buffer carried the row (0, 1, ...).
    piece: int = 0
    #: ``EstimatedJSONRowLen`` of the stored fields (what cuts blocks at 2 MiB).
    size: int = 0


#: ``EstimatedJSONRowLen`` of a row without fields: ``{}\n``, ``"_time":""``, RFC3339Nano.
ROW_OVERHEAD = 3 + 10 + 35


def _byte_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class _LogRows:
    """``LogRows.MustAdd`` for one request, with the buffer's flush points
    (``LogRows.NeedFlush``: more than :data:`FLUSH_ROWS` rows or :data:`FLUSH_BYTES` of copied
    text, the server's arena, where a value equal to the previous row's at the same position is
    not copied again)."""

    def __init__(self, params: _Params, default_msg: str) -> None:
        self.params = params
        self.default_msg = default_msg
        self.rows: list[PreparedRow] = []
        self.warnings: list[str] = []
        self.piece = 0
        self._arena = 0
        self._count = 0
        self._previous: Pairs | None = None
        self._previous_tags: tuple[Field, ...] | None = None
        self._ignore = params.ignore if params.ignore else None
        self._decolorize = params.decolorize if params.decolorize else None
        extra_size = 0
        self._extra: Pairs = []
        self._extra_has_msg = False
        for name, value in params.extra:  # neither ignored nor decolorized, not copied
            canonical = _canonical(name)
            if canonical in ("_time", "_stream", "_stream_id"):
                continue
            self._extra_has_msg = self._extra_has_msg or not canonical
            self._extra.append((canonical or "_msg", value))
            extra_size += 6 + _byte_len(canonical or "_msg") + _byte_len(value)
        self._extra_size = extra_size
        self._default_size = 6 + 4 + _byte_len(default_msg)

    def add(self, ts: int, fields: list[Field], ascii_only: bool = False) -> None:
        """One parsed row; ``ascii_only`` promises every name and value is ASCII."""
        tags = self._stream_tags(fields)
        if tags is not None:
            self._add(ts, tags, fields, len if ascii_only else _byte_len)
        if self._arena > FLUSH_BYTES or self._count > FLUSH_ROWS:
            self.piece += 1
            self._arena = self._count = 0
            self._previous = self._previous_tags = None

    def _stream_tags(self, fields: list[Field]) -> tuple[Field, ...] | None:
        params = self.params
        tags: list[Field] = []
        if params.stream_set or params.extra_stream_tags:
            stream_set = params.stream_set
            for name, text in fields:
                if text and (name if name != "_msg" else "") in stream_set:
                    tags.append((name, text))
            tags.extend(params.extra_stream_tags)
            tags.sort()
            return tuple(tags)
        for index, (name, text) in enumerate(fields):
            if name == "_stream":
                try:
                    parsed = parse_stream_text(text)
                except StreamTextError as err:
                    self.warnings.append(
                        f"cannot parse _stream={text}: {err}; skipping the log entry"
                    )
                    return None
                tags = self._normalize(parsed, fields)
                fields[index] = (name, "")
            elif name == "_stream_id":
                fields[index] = (name, "")
        tags.sort()
        return tuple(tags)

    @staticmethod
    def _normalize(tags: list[Field], fields: Sequence[Field]) -> list[Field]:
        """``StreamTags.normalize``: tags without a field of their name are dropped, the
        value of the last field of that name wins."""
        last = dict(fields)
        return [(name, last[name]) for name, _ in tags if name in last]

    def _add(
        self,
        ts: int,
        tags: tuple[Field, ...],
        fields: list[Field],
        byte_len: Callable[[str], int],
    ) -> None:
        """``mustAddInternal`` + ``addFieldsInternal``, counting the arena and the estimate."""
        if tags != self._previous_tags:
            self._arena += _canonical_size(tags)
            self._previous_tags = tags
        ignore, decolorize = self._ignore, self._decolorize
        previous = self._previous
        stored: Pairs = []
        has_msg = False
        arena = 0
        size = ROW_OVERHEAD
        for index, (name, value) in enumerate(fields):
            if not value:
                continue
            canonical = name if name != "_msg" else ""
            if ignore is not None and ignore.match(canonical):
                continue
            if canonical in ("_time", "_stream", "_stream_id"):
                self.warnings.append(self._skip_message(canonical, value))
                continue
            before = previous[index] if previous is not None and index < len(previous) else None
            value_bytes = byte_len(value)
            name_bytes = byte_len(name)
            if before is None or before[0] != name:
                arena += name_bytes if canonical else 0
                previous = None
            text = value
            if before is None or before[1] != value:
                arena += value_bytes
                if decolorize is not None and "\x1b[" in value and decolorize.match(canonical):
                    text = _drop_color_sequences(value)
                    value_bytes = _byte_len(text)
                    arena += value_bytes
            if not canonical:
                has_msg = True
            stored.append((name, text))
            size += 6 + name_bytes + value_bytes
        if self._extra:
            for name, value in self._extra:
                stored.append((name, value))
            has_msg = has_msg or self._extra_has_msg
            size += self._extra_size
        for name, value in self.params.extra:
            if _canonical(name) in ("_time", "_stream", "_stream_id"):
                self.warnings.append(self._skip_message(_canonical(name), value))
        if not has_msg and self.default_msg:
            stored.append(("_msg", self.default_msg))
            size += self._default_size
        self._arena += arena
        self._previous = stored
        self._count += 1
        self.rows.append(PreparedRow(ts, tags, stored, self.piece, size))

    @staticmethod
    def _skip_message(name: str, value: str) -> str:
        if name == "_time":
            return (
                f"skipping _time field with the value {go_quote(value)} because the timestamp "
                "is parsed from another field"
            )
        return (
            f"skipping {go_quote(name)} field with the value {go_quote(value)} since it "
            "clashes with the automatically generated field by VictoriaLogs"
        )


def _error(
    status: int, message: str, dropped: dict[str, int], body: bytes | None = None
) -> IngestResult:
    """``httpserver.Errorf`` → ``http.Error``: the text and a newline, as text/plain."""
    return IngestResult(status, message + "\n", "text/plain; charset=utf-8", 0, dropped, body)


def _ok(dropped: dict[str, int], warnings: Sequence[str] = ()) -> IngestResult:
    """200 with an empty body (the handler only set ``Content-Type: application/json``)."""
    return IngestResult(200, "", "application/json", 0, dropped, None, tuple(warnings))


@dataclass
class Batch:
    """Rows a request produced, before the storage's retention check and blocks."""

    tenant: tuple[int, int]
    rows: list[PreparedRow]
    dropped: dict[str, int] = field(default_factory=dict)
    decoded_body: bytes | None = None
    #: A 400 text; the rows are stored all the same (the server flushes before answering).
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def _open_request(  # noqa: PLR0911 - one early answer per check, in the server's order
    method: str,
    query: str,
    headers: Headers,
    body: bytes,
    *,
    read_only: bool,
    dropped: dict[str, int],
) -> IngestResult | tuple[_Params, bytes, str | None]:
    """Method, parameters, tenant and body decoding: an early answer, or what to read."""
    if method != "POST":
        return IngestResult(405, "", "application/json", 0, dropped, None)
    hdrs = header_map(headers)
    args = first_args(query)
    media_type = hdrs.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == _FORM_TYPES[0]:
        # r.FormValue parses the body as a form: its values win over the URL's.
        form = first_args(body.decode("utf-8", "replace"))
        args = {**args, **{k: v for k, v in form.items() if v}}
    try:
        params = _common_params(args, hdrs)
    except BadRequestError as err:
        return _error(err.status, err.message, dropped)
    if read_only:
        return _error(429, READ_ONLY_MESSAGE, dropped)
    if media_type in _FORM_TYPES:
        dropped["form_body"] = 1
        return _ok(dropped)
    encoding = hdrs.get("content-encoding", "")
    try:
        data, read_error = _decode_body(encoding, body)
    except ZstdUnavailableError:
        return _error(400, ZSTD_UNAVAILABLE_MESSAGE, dropped)
    if data is None:
        unknown = encoding not in _SUPPORTED_ENCODINGS
        dropped["unsupported_encoding" if unknown else "undecodable_body"] = 1
        reason = f"unsupported contentType: {encoding}" if unknown else "invalid header"
        return _ok(dropped, [f"cannot decode jsonline request: {reason}"])
    if read_error is not None:
        # The line reader stops at the error: only lines ended by a newline before it count.
        data = data[: data.rfind(b"\n") + 1]
    return params, data, read_error


def read_request(
    *,
    method: str,
    query: str,
    headers: Headers,
    body: bytes,
    now: int,
    local_offset: int,
    default_msg: str = DEFAULT_MSG_VALUE,
    read_only: bool = False,
) -> IngestResult | Batch:
    """One ``/insert/jsonline`` request: a final answer, or the rows to store (then 200)."""
    dropped: dict[str, int] = {}
    opened = _open_request(method, query, headers, body, read_only=read_only, dropped=dropped)
    if isinstance(opened, IngestResult):
        return opened
    params, data, read_error = opened
    lines, too_long = _read_lines(data, MAX_LINE_SIZE_BYTES)
    log_rows = _LogRows(params, default_msg)
    warnings = log_rows.warnings
    if too_long:
        dropped["too_long_line"] = too_long
        warnings.append(
            f"the line length exceeds -insert.maxLineSizeBytes={MAX_LINE_SIZE_BYTES}; skipping it"
        )
    invalid = 0
    last_error = ""
    for number, line in enumerate(lines):
        try:
            fields = parse_line(line, params.preserve_keys)
            ts = _extract_time(fields, params.time_fields, now, local_offset)
        except (JSONLineError, TimestampError) as err:
            invalid += 1
            last_error = f"{err}; line contents: {go_quote(line)}"
            warnings.append(
                f"jsonline: cannot read line #{number} in /jsonline request: {last_error}"
            )
            continue
        _rename_msg(fields, params.msg_fields)
        if len(fields) > MAX_FIELDS_PER_LINE:
            dropped["too_many_fields"] = dropped.get("too_many_fields", 0) + 1
            warnings.append(
                f"dropping log line with {len(fields)} fields; it exceeds "
                f"-insert.maxFieldsPerLine={MAX_FIELDS_PER_LINE}"
            )
        elif params.debug:
            dropped["debug"] = dropped.get("debug", 0) + 1
        else:
            before = len(log_rows.rows)
            log_rows.add(ts, fields, line.isascii() and b"\\u" not in line)
            if len(log_rows.rows) == before:
                dropped["bad_stream"] = dropped.get("bad_stream", 0) + 1
    if invalid:
        dropped["invalid_line"] = invalid
    if read_error is not None:
        dropped["read_error"] = 1
        last_error = f"jsonline request: cannot read the next line: {read_error}"
    # processStreamInternal answers 400 when the count of errors equals the count of lines read.
    # A read error is an error without a line: after one valid line that is 400 (the row is
    # stored anyway), after one invalid line 200.
    errors = invalid + (read_error is not None)
    error = None
    if errors and len(lines) == errors:
        error = f"cannot process jsonline request; error: {last_error}"
    return Batch(params.tenant, log_rows.rows, dropped, data, error, warnings)
