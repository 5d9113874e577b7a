"""The subset of LogsQL the test receiver answers, parsed into filters and pipes.

Supported: ``*``; words and ``"phrases"`` in ``_msg``; ``field:word``, ``field:"phrase"``,
``field:prefix*``, ``field:*`` (non-empty), ``field:=value``, ``field:=prefix*``,
``field:in(a, "b")``; stream filters ``{k="v", k2!="w"}`` and ``_stream:{...}``; ``AND``
(or just a space), ``OR``, ``NOT``/``!`` and parentheses. Pipes: ``stats count() [as] name``
(also ``count(field)``, several separated by commas, ``stats`` may be omitted), ``limit N`` /
``head N`` and ``fields a, b``. Matching follows VictoriaLogs: exact values are compared as
strings, a word or phrase must sit on token boundaries (tokens are letters, digits and ``_``),
comparisons are case-sensitive, and a missing field has the value ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SUPPORTED = (
    'the test receiver (FakeVictoriaLogs) understands only *, words and "phrases", '
    'field:word, field:"phrase", field:prefix*, field:*, field:=value, field:in(...), '
    '{k="v"} stream filters, AND/OR/NOT/() and the pipes stats count(), limit, head, fields'
)


class LogsQLError(ValueError):
    """A query the receiver cannot answer; the message is the HTTP 400 text."""


class RowView(Protocol):
    """What a filter needs from a stored row."""

    def get(self, name: str) -> str:
        """The value of ``name``, ``""`` when absent."""

    def stream_tags(self) -> Sequence[tuple[str, str]]:
        """The (name, value) pairs of the row's ``_stream``."""


def is_token_char(ch: str) -> bool:
    """``unicode.IsLetter || unicode.IsDigit || '_'``."""
    return ch.isalpha() or ch.isdecimal() or ch == "_"


def match_phrase(value: str, phrase: str) -> bool:
    """VictoriaLogs ``matchPhrase``: ``phrase`` found with token boundaries on both ends."""
    if not phrase:
        return not value
    starts = is_token_char(phrase[0])
    ends = is_token_char(phrase[-1])
    pos = value.find(phrase)
    while pos >= 0:
        after = pos + len(phrase)
        if (starts and pos > 0 and is_token_char(value[pos - 1])) or (
            ends and after < len(value) and is_token_char(value[after])
        ):
            pos = value.find(phrase, pos + 1)
            continue
        return True
    return False


def match_prefix(value: str, prefix: str) -> bool:
    """VictoriaLogs ``matchPrefix``: a token (or text) starting with ``prefix``."""
    if not prefix:
        return bool(value)
    starts = is_token_char(prefix[0])
    pos = value.find(prefix)
    while pos >= 0:
        if starts and pos > 0 and is_token_char(value[pos - 1]):
            pos = value.find(prefix, pos + 1)
            continue
        return True
    return False


class Filter:
    """A row predicate."""

    def matches(self, row: RowView) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class AnyFilter(Filter):
    """``*``."""

    def matches(self, row: RowView) -> bool:
        return True


@dataclass(frozen=True)
class ExactFilter(Filter):
    """``field:=value`` (``field:=""`` matches a missing field)."""

    field: str
    value: str

    def matches(self, row: RowView) -> bool:
        return row.get(self.field) == self.value


@dataclass(frozen=True)
class ExactPrefixFilter(Filter):
    """``field:=prefix*``."""

    field: str
    prefix: str

    def matches(self, row: RowView) -> bool:
        value = row.get(self.field)
        return value.startswith(self.prefix) and (bool(value) or not self.prefix)


@dataclass(frozen=True)
class InFilter(Filter):
    """``field:in(a, b)``: an exact match with any of the values."""

    field: str
    values: frozenset[str]

    def matches(self, row: RowView) -> bool:
        return row.get(self.field) in self.values


@dataclass(frozen=True)
class PhraseFilter(Filter):
    """``field:word`` and ``field:"a phrase"``."""

    field: str
    phrase: str

    def matches(self, row: RowView) -> bool:
        return match_phrase(row.get(self.field), self.phrase)


@dataclass(frozen=True)
class PrefixFilter(Filter):
    """``field:prefix*``; ``field:*`` is any non-empty value."""

    field: str
    prefix: str

    def matches(self, row: RowView) -> bool:
        return match_prefix(row.get(self.field), self.prefix)


@dataclass(frozen=True)
class StreamFilter(Filter):
    """``{name="value", other!="x"}``."""

    conditions: tuple[tuple[str, bool, str], ...]  # (name, equal?, value)

    def matches(self, row: RowView) -> bool:
        tags = row.stream_tags()
        for name, equal, value in self.conditions:
            found = any(tag == name and tag_value == value for tag, tag_value in tags)
            if not found and value == "" and not any(tag == name for tag, _ in tags):
                found = True  # a missing tag has the empty value
            if found != equal:
                return False
        return True


@dataclass(frozen=True)
class AndFilter(Filter):
    items: tuple[Filter, ...]

    def matches(self, row: RowView) -> bool:
        return all(item.matches(row) for item in self.items)


@dataclass(frozen=True)
class OrFilter(Filter):
    items: tuple[Filter, ...]

    def matches(self, row: RowView) -> bool:
        return any(item.matches(row) for item in self.items)


@dataclass(frozen=True)
class NotFilter(Filter):
    item: Filter

    def matches(self, row: RowView) -> bool:
        return not self.item.matches(row)


@dataclass(frozen=True)
class LimitPipe:
    """``| limit N`` / ``| head N``."""

    limit: int


@dataclass(frozen=True)
class FieldsPipe:
    """``| fields a, b``."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class CountPipe:
    """``| stats count() as n, count(f) as m``: one row of counts (as strings)."""

    counts: tuple[tuple[str, tuple[str, ...]], ...]  # (result name, fields; empty = all rows)


@dataclass(frozen=True)
class Query:
    filter: Filter
    pipes: tuple[LimitPipe | FieldsPipe | CountPipe, ...]


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      | (?P<punct>[(){}\[\]|,:=!~])
      | (?P<word>[^\s(){}\[\]|,:=!~"'`]+)
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_KEYWORDS = {"and", "or", "not"}


def _unquote(token: str) -> str:
    body = token[1:-1]
    if token[0] == "`" or "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(nxt)
        if width is not None and re.fullmatch(r"[0-9a-fA-F]+", body[i + 2 : i + 2 + width] or "-"):
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "string", "punct", "word", "eof"
    text: str

    @property
    def value(self) -> str:
        return _unquote(self.text) if self.kind == "string" else self.text

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def _tokenize(query: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while True:
        match = _TOKEN.match(query, pos)
        if match is None or match.end() == pos:
            if query[pos:].strip():
                raise LogsQLError(f"unexpected text at {query[pos:]!r}")
            break
        kind = match.lastgroup or "eof"
        tokens.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    tokens.append(_Tok("eof", ""))
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokenize(query)
        self.pos = 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.pos]

    def next(self) -> _Tok:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.kind != "punct" or tok.text != text:
            raise LogsQLError(f"missing {text!r} before {tok.text or 'the end'!r}")

    def query(self) -> Query:
        if self.tok.kind == "eof" or (self.tok.kind == "punct" and self.tok.text == "|"):
            raise LogsQLError("missing filter (use * for all logs)")
        flt = self.or_expr()
        pipes: list[LimitPipe | FieldsPipe | CountPipe] = []
        while self.tok.kind == "punct" and self.tok.text == "|":
            self.next()
            pipes.append(self.pipe())
        if self.tok.kind != "eof":
            raise LogsQLError(f"unexpected {self.tok.text!r}")
        return Query(flt, tuple(pipes))

    def at_end_of_filter(self) -> bool:
        tok = self.tok
        return tok.kind == "eof" or (tok.kind == "punct" and tok.text in "|)")

    def or_expr(self) -> Filter:
        items = [self.and_expr()]
        while self.tok.is_word("or"):
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else OrFilter(tuple(items))

    def and_expr(self) -> Filter:
        items = [self.unary()]
        while not self.at_end_of_filter() and not self.tok.is_word("or"):
            if self.tok.is_word("and"):
                self.next()
            items.append(self.unary())
        return items[0] if len(items) == 1 else AndFilter(tuple(items))

    def unary(self) -> Filter:
        tok = self.tok
        if tok.is_word("not") or (tok.kind == "punct" and tok.text == "!"):
            self.next()
            return NotFilter(self.unary())
        if tok.kind == "punct" and tok.text == "(":
            self.next()
            inner = self.or_expr()
            self.expect(")")
            return inner
        if tok.kind == "punct" and tok.text == "{":
            return self.stream_selector()
        return self.primary()

    def primary(self) -> Filter:
        tok = self.next()
        if tok.kind not in ("word", "string"):
            raise LogsQLError(f"unexpected {tok.text or 'end of query'!r}")
        if tok.kind == "word" and tok.text.lower() in _KEYWORDS:
            raise LogsQLError(f"missing filter around {tok.text!r}")
        if self.tok.kind == "punct" and self.tok.text == ":":
            self.next()
            return self.field_filter(tok.value)
        return self.value_filter("_msg", tok)

    def value_filter(self, field: str, tok: _Tok) -> Filter:
        if tok.kind == "word":
            if tok.text == "*":
                return AnyFilter() if field == "_msg" else PrefixFilter(field, "")
            if tok.text.endswith("*"):
                return PrefixFilter(field, tok.text[:-1])
            if "*" in tok.text:
                raise LogsQLError(f"a '*' may only end a word: {tok.text!r}")
        return PhraseFilter(field, tok.value)

    def field_filter(self, field: str) -> Filter:
        tok = self.tok
        if tok.kind == "punct" and tok.text == "=":
            self.next()
            value = self.next()
            if value.kind == "word" and value.text.endswith("*"):
                return ExactPrefixFilter(field, value.text[:-1])
            if value.kind not in ("word", "string"):
                raise LogsQLError(f"missing value after {field}:=")
            return ExactFilter(field, value.value)
        if tok.kind == "punct" and tok.text == "{" and field == "_stream":
            return self.stream_selector()
        if tok.is_word("in") and self.tokens[self.pos + 1].text == "(":
            self.next()
            self.next()
            values = []
            while True:
                value = self.next()
                if value.kind not in ("word", "string"):
                    raise LogsQLError(f"unexpected {value.text!r} in in(...)")
                values.append(value.value)
                sep = self.next()
                if sep.text == ")":
                    return InFilter(field, frozenset(values))
                if sep.text != ",":
                    raise LogsQLError(f"missing ',' or ')' in in(...) before {sep.text!r}")
        if tok.kind == "word" and tok.text[:1] in ("<", ">"):
            raise LogsQLError(f"range filters are not supported: {field}:{tok.text}")
        if tok.kind in ("word", "string") and not (
            tok.kind == "word"
            and tok.text.lower() in ("i", "range", "len", "seq", "re")
            and self.tokens[self.pos + 1].text == "("
        ):
            self.next()
            return self.value_filter(field, tok)
        raise LogsQLError(f"unsupported filter after {field}: at {tok.text or 'the end'!r}")

    def stream_selector(self) -> Filter:
        self.expect("{")
        conditions: list[tuple[str, bool, str]] = []
        while not (self.tok.kind == "punct" and self.tok.text == "}"):
            name = self.next()
            if name.kind not in ("word", "string"):
                raise LogsQLError(f"missing stream field name before {name.text or 'the end'!r}")
            op = self.next()
            equal = True
            if op.text == "!":
                equal = False
                op = self.next()
            if op.text != "=" or self.tok.text == "~":
                raise LogsQLError("only = and != are supported in stream filters")
            value = self.next()
            if value.kind not in ("word", "string"):
                raise LogsQLError(f"missing value for stream field {name.value!r}")
            conditions.append((name.value, equal, value.value))
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.next()
            elif not (self.tok.kind == "punct" and self.tok.text == "}"):
                raise LogsQLError(f"missing ',' or '}}' in stream filter before {self.tok.text!r}")
        self.next()
        return StreamFilter(tuple(conditions))

    def pipe(self) -> LimitPipe | FieldsPipe | CountPipe:
        tok = self.next()
        if tok.is_word("limit", "head"):
            count = self.next()
            if count.kind != "word" or not count.text.isdigit():
                raise LogsQLError(f"cannot parse the number in '{tok.text} {count.text}'")
            return LimitPipe(int(count.text))
        if tok.is_word("fields"):
            names = [self.name()]
            while self.tok.text == ",":
                self.next()
                names.append(self.name())
            return FieldsPipe(tuple(names))
        if tok.is_word("stats"):
            if self.tok.is_word("by"):
                raise LogsQLError("stats by (...) is not supported")
            tok = self.next()
        counts = [self.count_func(tok)]
        while self.tok.text == ",":
            self.next()
            counts.append(self.count_func(self.next()))
        return CountPipe(tuple(counts))

    def name(self) -> str:
        tok = self.next()
        if tok.kind not in ("word", "string"):
            raise LogsQLError(f"missing field name before {tok.text or 'the end'!r}")
        return tok.value

    def count_func(self, tok: _Tok) -> tuple[str, tuple[str, ...]]:
        if not tok.is_word("count"):
            raise LogsQLError(f"unsupported pipe or stats function {tok.text!r}")
        self.expect("(")
        fields: list[str] = []
        while self.tok.text != ")":
            name = self.name()
            if name != "*":
                fields.append(name)
            if self.tok.text == ",":
                self.next()
        self.expect(")")
        result = "count(" + (", ".join(fields) if fields else "*") + ")"
        if self.tok.is_word("as"):
            self.next()
            result = self.name()
        elif self.tok.kind in ("word", "string") and not self.tok.is_word("by"):
            result = self.name()
        return result, tuple(fields)


def parse_query(query: str) -> Query:
    """Parse ``query``; raises :class:`LogsQLError` with a 400-ready text."""
    try:
        return _Parser(query).query()
    except LogsQLError as err:
        raise LogsQLError(f"cannot parse query [{query}]: {err}; {SUPPORTED}") from None
