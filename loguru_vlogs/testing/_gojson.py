"""How VictoriaLogs v1.52.2 turns one JSON line into fields (valyala/fastjson + logstorage.JSONParser).

The real server does not use a strict JSON parser: fastjson accepts numbers such as ``01`` or
``1.2.3``, keeps unknown escapes (``\\x``) and lone surrogates (``\\ud800``) as literal text,
and re-prints arrays from their raw tokens (original escapes and number spelling, no spaces).
:func:`parse_line` reproduces that. It first tries the C-accelerated :mod:`json` module, which
gives the same fields for ordinary lines, and falls back to a port of fastjson for everything
it cannot prove identical (invalid JSON, odd escapes, arrays whose raw text matters).

Also here: Go's ``strconv.Quote`` (used in the server's error texts and in ``_stream``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import cast

#: Longest flattened field name (``maxFieldNameSize``); a longer key path is stored as JSON text.
MAX_FIELD_NAME_BYTES = 128
#: fastjson's ``MaxDepth``.
MAX_DEPTH = 300

Field = tuple[str, str]


class JSONLineError(ValueError):
    """The line is not a JSON object the server accepts; the text is the server's own."""


class _Num(str):
    """A JSON number, kept as its raw text (fastjson never re-formats numbers)."""

    __slots__ = ()


class _Str(str):
    """A decoded JSON string that remembers its raw (escaped) text, for re-printing."""

    raw: str


class _Obj(list[tuple[str, "_Value"]]):
    """A JSON object: every (key, value) pair in order, duplicates included."""

    raw_keys: list[str] | None = None


_Value = _Obj | list["_Value"] | _Num | _Str | str | bool | None


class _SlowPathNeededError(Exception):
    """The fast path cannot reproduce this line exactly."""


# ---------------------------------------------------------------------------------------------
# Go's strconv.Quote


_GO_CONTROL_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def go_quote(value: str | bytes) -> str:
    """``strconv.Quote``: printable runes as is, others escaped; invalid UTF-8 bytes as ``\\xNN``."""
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xDC80 <= code <= 0xDCFF and isinstance(value, bytes):
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code in _GO_CONTROL_ESCAPES:
            out.append(_GO_CONTROL_ESCAPES[code])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # Go cannot hold a lone surrogate in a string
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _escape_string(text: str) -> str:
    """fastjson's ``escapeString``: raw when nothing needs escaping, else ``strconv.Quote``."""
    if '"' in text or "\\" in text or any(ord(c) < 0x20 for c in text):
        return go_quote(text)
    return f'"{text}"'


# ---------------------------------------------------------------------------------------------
# Fast path: the stdlib C parser, with hooks that keep number spelling and object pairs.


def _keep_nan(name: str) -> _Num:
    if name == "NaN":
        return _Num(name)  # fastjson reads NaN as a number too
    raise _SlowPathNeededError  # fastjson rejects Infinity


_DECODER = json.JSONDecoder(
    object_pairs_hook=_Obj, parse_float=_Num, parse_int=_Num, parse_constant=_keep_nan, strict=False
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _fast_parse(text: str) -> _Value:
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        raise _SlowPathNeededError  # fastjson keeps lone surrogates as literal \\udXXX text
    if text.count("{") + text.count("[") > MAX_DEPTH - 10:
        raise _SlowPathNeededError  # depth limit and its error text
    try:
        value: _Value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise _SlowPathNeededError from None
    return value


# ---------------------------------------------------------------------------------------------
# Slow path: a port of valyala/fastjson's parser, on bytes, with its error texts.


class _ParseError(Exception):
    def __init__(self, message: str, tail: int) -> None:
        super().__init__(message)
        self.message = message
        self.tail = tail


_WS = frozenset(b" \t\n\r")
_NUMBER_CHARS = frozenset(b"0123456789.-eE+")
_SIMPLE_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}\Z")


def _start_end(tail: bytes) -> bytes:
    if len(tail) <= 40:
        return tail
    return tail[:20] + b"..." + tail[-20:]


def _unescape(raw: bytes) -> bytes:
    """fastjson's ``unescapeStringBestEffort``: unknown or broken escapes stay as written."""
    pos = raw.find(b"\\")
    if pos < 0:
        return raw
    out = bytearray(raw[:pos])
    i = pos + 1
    end = len(raw)
    while i < end:
        ch = raw[i]
        i += 1
        simple = _SIMPLE_ESCAPES.get(ch)
        if simple is not None:
            out += simple
        elif ch == ord("u"):
            xs = raw[i : i + 4]
            if len(xs) < 4 or not _HEX4.match(xs):
                out += b"\\u"
            else:
                x = int(xs, 16)
                i += 4
                if not 0xD800 <= x < 0xE000:
                    out += chr(x).encode("utf-8")
                elif end - i < 6 or raw[i : i + 2] != b"\\u" or not _HEX4.match(raw[i + 2 : i + 6]):
                    out += b"\\u" + xs
                else:
                    x1 = int(raw[i + 2 : i + 6], 16)
                    if 0xD800 <= x < 0xDC00 and 0xDC00 <= x1 < 0xE000:
                        out += chr(0x10000 + ((x - 0xD800) << 10) + (x1 - 0xDC00)).encode("utf-8")
                    else:
                        out += "\ufffd".encode()  # utf16.DecodeRune of a bad pair
                    i += 6
        else:
            out += b"\\" + bytes((ch,))
        pos = raw.find(b"\\", i)
        if pos < 0:
            out += raw[i:]
            break
        out += raw[i:pos]
        i = pos + 1
    return bytes(out)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class _FastJSON:
    """fastjson's recursive descent parser over the raw bytes of one line."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.end = len(data)

    def skip_ws(self, i: int) -> int:
        data, end = self.data, self.end
        while i < end and data[i] in _WS:
            i += 1
        return i

    def parse(self) -> _Value:
        i = self.skip_ws(0)
        try:
            value, i = self.value(i, 0)
        except _ParseError as err:
            tail = go_quote(_start_end(self.data[err.tail :]))
            raise JSONLineError(
                f"cannot parse JSON: {err.message}; unparsed tail: {tail}"
            ) from None
        i = self.skip_ws(i)
        if i < self.end:
            raise JSONLineError(f"unexpected tail: {go_quote(_start_end(self.data[i:]))}")
        return value

    def value(self, i: int, depth: int) -> tuple[_Value, int]:  # noqa: PLR0911 - one per JSON type
        data = self.data
        if i >= self.end:
            raise _ParseError("cannot parse empty string", i)
        depth += 1
        if depth > MAX_DEPTH:
            raise _ParseError(f"too big depth for the nested JSON; it exceeds {MAX_DEPTH}", i)
        first = data[i]
        if first == ord("{"):
            try:
                return self.object(i + 1, depth)
            except _ParseError as err:
                raise _ParseError(f"cannot parse object: {err.message}", err.tail) from None
        if first == ord("["):
            try:
                return self.array(i + 1, depth)
            except _ParseError as err:
                raise _ParseError(f"cannot parse array: {err.message}", err.tail) from None
        if first == ord('"'):
            try:
                raw, j = self.raw_string(i + 1)
            except _ParseError as err:
                raise _ParseError(f"cannot parse string: {err.message}", err.tail) from None
            string = _Str(_text(_unescape(raw)))
            string.raw = _text(raw)
            return string, j
        for word, literal in ((b"true", True), (b"false", False)):
            if first == word[0]:
                if not data.startswith(word, i):
                    raise _ParseError(f"unexpected value found: {go_quote(data[i:])}", i)
                return literal, i + len(word)
        if first == ord("n"):
            if data.startswith(b"null", i):
                return None, i + 4
            if data[i : i + 3].lower() == b"nan":
                return _Num(_text(data[i : i + 3])), i + 3
            raise _ParseError(f"unexpected value found: {go_quote(data[i:])}", i)
        return self.number(i)

    def number(self, i: int) -> tuple[_Value, int]:
        data, end = self.data, self.end
        j = i
        while j < end and data[j] in _NUMBER_CHARS:
            j += 1
        if j == end:
            return _Num(_text(data[i:])), end
        if j == i or (j == i + 1 and data[i] in b"+-"):
            word = data[j : j + 3].lower()
            if word in (b"inf", b"nan"):
                return _Num(_text(data[i : j + 3])), j + 3
            raise _ParseError(
                f"cannot parse number: unexpected char: {go_quote(data[i : i + 1])}", i
            )
        return _Num(_text(data[i:j])), j

    def raw_string(self, i: int) -> tuple[bytes, int]:
        """The raw text up to the closing quote (one preceded by an even run of backslashes)."""
        data = self.data
        segment = i
        quote = data.find(b'"', segment)
        while True:
            if quote < 0:
                raise _ParseError("missing closing '\"'", self.end)
            if quote == segment or data[quote - 1] != ord("\\"):
                return data[i:quote], quote + 1
            k = quote - 1
            while k > segment and data[k - 1] == ord("\\"):
                k -= 1
            if (quote - k) % 2 == 0:
                return data[i:quote], quote + 1
            segment = quote + 1
            quote = data.find(b'"', segment)

    def raw_key(self, i: int) -> tuple[bytes, int]:
        quote = self.data.find(b'"', i)
        backslash = self.data.find(b"\\", i, quote if quote >= 0 else self.end)
        if backslash >= 0:
            return self.raw_string(i)
        if quote < 0:
            raise _ParseError("missing closing '\"'", self.end)
        return self.data[i:quote], quote + 1

    def object(self, i: int, depth: int) -> tuple[_Value, int]:
        data = self.data
        i = self.skip_ws(i)
        if i >= self.end:
            raise _ParseError("missing '}'", i)
        obj = _Obj()
        obj.raw_keys = []
        if data[i] == ord("}"):
            return obj, i + 1
        while True:
            i = self.skip_ws(i)
            if i >= self.end or data[i] != ord('"'):
                raise _ParseError('cannot find opening \'"" for object key', i)
            try:
                raw_key, i = self.raw_key(i + 1)
            except _ParseError as err:
                raise _ParseError(f"cannot parse object key: {err.message}", err.tail) from None
            i = self.skip_ws(i)
            if i >= self.end or data[i] != ord(":"):
                raise _ParseError("missing ':' after object key", i)
            i = self.skip_ws(i + 1)
            try:
                value, i = self.value(i, depth)
            except _ParseError as err:
                raise _ParseError(f"cannot parse object value: {err.message}", err.tail) from None
            obj.append((_text(_unescape(raw_key)), value))
            obj.raw_keys.append(_text(raw_key))
            i = self.skip_ws(i)
            if i >= self.end:
                raise _ParseError("unexpected end of object", i)
            if data[i] == ord(","):
                i += 1
                continue
            if data[i] == ord("}"):
                return obj, i + 1
            raise _ParseError("missing ',' after object value", i)

    def array(self, i: int, depth: int) -> tuple[_Value, int]:
        data = self.data
        i = self.skip_ws(i)
        if i >= self.end:
            raise _ParseError("missing ']'", i)
        items: list[_Value] = []
        if data[i] == ord("]"):
            return items, i + 1
        while True:
            i = self.skip_ws(i)
            try:
                value, i = self.value(i, depth)
            except _ParseError as err:
                raise _ParseError(f"cannot parse array value: {err.message}", err.tail) from None
            items.append(value)
            i = self.skip_ws(i)
            if i >= self.end:
                raise _ParseError("unexpected end of array", i)
            if data[i] == ord(","):
                i += 1
                continue
            if data[i] == ord("]"):
                return items, i + 1
            raise _ParseError("missing ',' after array value", i)


# ---------------------------------------------------------------------------------------------
# logstorage.JSONParser.appendLogFields: flatten to dotted names, re-print arrays.


def _type_name(value: _Value) -> str:
    if isinstance(value, _Obj):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, _Num):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "true" if value else "false"


class _Flattener:
    def __init__(self, raw_is_decoded: bool, preserve_keys: Sequence[str] = ()) -> None:
        # On the fast path a string's raw text equals its decoded text only when the line has
        # no backslash; re-printing anything else needs the slow path's raw tokens.
        self.raw_is_decoded = raw_is_decoded
        self.preserve_keys = frozenset(preserve_keys)
        self.fields: list[Field] = []

    def walk(self, obj: _Obj, prefix: str, prefix_bytes: int) -> None:
        longest = max([len(key) for key, _ in obj], default=0)
        if prefix_bytes + 4 * longest > MAX_FIELD_NAME_BYTES:
            # Characters are 1-4 bytes in UTF-8: only long names need an exact byte count.
            longest = max((len(key.encode("utf-8")) for key, _ in obj), default=0)
        if prefix_bytes + longest > MAX_FIELD_NAME_BYTES or (
            prefix and prefix[:-1] in self.preserve_keys
        ):
            # Too long a name, or a key named in preserve_json_keys: the whole object becomes
            # one field holding its JSON text.
            name = prefix[:-1] if prefix.endswith(".") else prefix
            self.fields.append((name or "_msg", self.marshal(obj, keys_unescaped=True)))
            return
        append = self.fields.append
        for key, value in obj:
            kind = type(value)
            if kind is str:
                append((prefix + key if prefix else key or "_msg", value))  # type: ignore[arg-type]
            elif kind is _Num or kind is _Str:
                append((prefix + key if prefix else key or "_msg", str(value)))
            elif value is None:
                continue
            elif kind is _Obj:
                size = len(key) if key.isascii() else len(key.encode("utf-8"))
                self.walk(value, prefix + key + ".", prefix_bytes + size + 1)  # type: ignore[arg-type]
            elif value is True:
                append((prefix + key or "_msg", "true"))
            elif value is False:
                append((prefix + key or "_msg", "false"))
            else:
                append((prefix + key or "_msg", self.marshal(value, keys_unescaped=False)))

    def raw(self, text: str) -> str:
        if isinstance(text, _Str):
            return text.raw
        if not self.raw_is_decoded:
            raise _SlowPathNeededError
        return text

    def marshal(self, value: _Value, *, keys_unescaped: bool) -> str:
        """fastjson ``Value.MarshalTo``: raw tokens, no whitespace."""
        if isinstance(value, _Obj):
            raw_keys = value.raw_keys
            parts = []
            for index, (key, item) in enumerate(value):
                if keys_unescaped:
                    quoted = _escape_string(key)
                else:
                    quoted = (
                        '"' + (raw_keys[index] if raw_keys is not None else self.raw(key)) + '"'
                    )
                parts.append(quoted + ":" + self.marshal(item, keys_unescaped=False))
            return "{" + ",".join(parts) + "}"
        if isinstance(value, list):
            items = cast("list[_Value]", value)
            return "[" + ",".join(self.marshal(item, keys_unescaped=False) for item in items) + "]"
        if isinstance(value, _Num):
            return str(value)
        if isinstance(value, str):
            return '"' + self.raw(value) + '"'
        if value is None:
            return "null"
        return "true" if value else "false"


def parse_line_with_fastjson_port(line: bytes, preserve_keys: Sequence[str] = ()) -> list[Field]:
    """:func:`parse_line` without the stdlib fast path (the reference the fast path must match)."""
    value = _FastJSON(line).parse()
    if isinstance(value, _Obj):
        flattener = _Flattener(raw_is_decoded=False, preserve_keys=preserve_keys)
        flattener.walk(value, "", 0)
        return flattener.fields
    raise JSONLineError(f"value doesn't contain object; it contains {_type_name(value)}")


def parse_line(line: bytes, preserve_keys: Sequence[str] = ()) -> list[Field]:
    """The fields VictoriaLogs v1.52.2 extracts from one JSON line, in order, duplicates kept.

    Values are strings; ``null`` fields are left out, ``""`` values are kept (the storage layer
    drops them). A key path longer than 128 bytes turns its object into one JSON-text field (the
    whole line into ``_msg`` at the top level); so does a nested object whose dotted path is
    named in ``preserve_keys`` (``preserve_json_keys``). Raises :class:`JSONLineError` with the
    server's message for a line that is not a JSON object.
    """
    text = line.decode("utf-8", "replace")
    try:
        value = _fast_parse(text)
        if isinstance(value, _Obj):
            flattener = _Flattener(raw_is_decoded="\\" not in text, preserve_keys=preserve_keys)
            flattener.walk(value, "", 0)
            return flattener.fields
    except _SlowPathNeededError:
        return parse_line_with_fastjson_port(line, preserve_keys)
    raise JSONLineError(f"value doesn't contain object; it contains {_type_name(value)}")
