"""Value rendering of the careful path: the documented value rules, JSON text trees, flattening.

:class:`ValueRenderer` holds no state: the per-record budgets (depth, nodes, text) and the
repair reasons live in :class:`Ctx`.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as _dt
import decimal
import enum
import itertools
import math
import pathlib
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, cast

import orjson

from ._limits import Field, marker, sanitize_component, unique
from ._text import qualname, repair, safe_attr, safe_text, utf8_len

#: Nested mappings become dotted keys down to this many key levels (the extra's own key is
#: level 1); a mapping deeper than that is stored as its JSON text.
_FLATTEN_DEPTH: Final = 10
#: Nesting deeper than this (any container) is replaced by ``_TOO_DEEP``.
MAX_DEPTH: Final = 64
#: Values visited per top-level value and per record; containers stop early past it.
NODES_PER_VALUE: Final = 20_000
NODES_PER_RECORD: Final = 100_000

_CYCLE: Final = "<cycle>"
_TOO_DEEP: Final = "<too deep>"
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1

# One-level classification of a value by the careful path.
_SCALAR: Final = 0
_MAP: Final = 1
_SEQ: Final = 2
_SET: Final = 3


class _Cut:
    """A string already cut inside a JSON text tree (orjson writes it through the default)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def json_default(obj: object) -> object:
    if isinstance(obj, _Cut):
        return obj.text
    raise TypeError  # pragma: no cover - trees only hold JSON types and _Cut


class Ctx:
    """Per-record state of the careful path."""

    __slots__ = ("max_depth", "node_limit", "nodes", "reasons", "stack", "text_chars")

    def __init__(self, reasons: set[str], text_chars: int, max_depth: int) -> None:
        self.reasons = reasons
        self.nodes = 0
        self.node_limit = NODES_PER_RECORD
        self.text_chars = text_chars
        self.max_depth = max_depth
        self.stack: set[int] = set()


class ValueRenderer:
    """The value rules as methods of :class:`RecordEncoder` (its base class); no own state."""

    def _classify(self, value: object, ctx: Ctx) -> tuple[int, Any]:  # noqa: PLR0911 - dispatch
        """One level of the value rules: (_SCALAR, JSON scalar) or (kind, container)."""
        kind = type(value)
        if kind is str:
            return _SCALAR, self._clean_str(cast(str, value), ctx)
        if kind is bool or value is None:
            return _SCALAR, value
        if kind is int:
            return _SCALAR, self._int(cast(int, value), ctx)
        if kind is float:
            return _SCALAR, self._float(cast(float, value), ctx)
        if kind is dict:
            return _MAP, value
        if kind is list or kind is tuple:
            return _SEQ, value
        if isinstance(value, enum.Enum):  # before int/str: IntEnum and StrEnum are both
            ctx.reasons.add("value_converted")
            inner = safe_attr(value, "value")
            if isinstance(inner, enum.Enum):
                return _SCALAR, self._object_text(inner, ctx)
            return self._classify(inner, ctx)
        if isinstance(value, str):
            return _SCALAR, self._clean_str(str.__str__(value), ctx)
        if isinstance(value, int):
            return _SCALAR, self._int(int.__int__(value), ctx)
        if isinstance(value, float):
            return _SCALAR, self._float(float.__float__(value), ctx)
        ctx.reasons.add("value_converted")
        module = getattr(kind, "__module__", None)
        if isinstance(module, str) and (module == "numpy" or module.startswith("numpy.")):
            return self._numpy(value, ctx)
        if isinstance(value, (bytes, bytearray, memoryview)):
            # Text-like bytes stay readable; invalid UTF-8 shows as \xNN (nothing lost). The
            # whole buffer is decoded so a cut's marker counts what was really removed.
            try:
                return _SCALAR, codecs.decode(value, "utf-8", "backslashreplace")
            except BufferError:  # a non-contiguous memoryview: copy it first
                return _SCALAR, bytes(value).decode("utf-8", "backslashreplace")
        if isinstance(value, Mapping):
            return _MAP, value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = dataclasses.fields(value)
            return _MAP, {f.name: safe_attr(value, f.name) for f in fields}
        if isinstance(value, _dt.datetime):
            return _SCALAR, _dt.datetime.isoformat(value)
        if isinstance(value, (_dt.date, _dt.time)):
            return _SCALAR, value.isoformat()
        if isinstance(value, _dt.timedelta):
            return _SCALAR, value.total_seconds()
        if isinstance(value, (decimal.Decimal, uuid.UUID, pathlib.PurePath, complex)):
            return _SCALAR, self._clean_str(str(value), ctx)
        if isinstance(value, (list, tuple, deque)):
            return _SEQ, value
        if isinstance(value, (set, frozenset)):
            return _SET, value
        if isinstance(value, BaseException):
            name = qualname(kind)
            text = safe_text(value)
            return _SCALAR, self._clean_str(f"{name}: {text}" if text else name, ctx)
        return _SCALAR, self._object_text(value, ctx)

    def _numpy(self, value: Any, ctx: Ctx) -> tuple[int, Any]:
        # Duck-typed, numpy is never imported: scalars have .item(), arrays .tolist().
        if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
            item = value.item()
            if type(item).__module__ == "numpy":  # pragma: no cover - defensive
                return _SCALAR, self._object_text(value, ctx)
            return self._classify(item, ctx)
        size = getattr(value, "size", None)
        if (
            isinstance(size, int)
            and size <= NODES_PER_VALUE
            and callable(getattr(value, "tolist", None))
        ):
            return _SEQ, value.tolist()
        return _SCALAR, self._object_text(value, ctx)

    def _int(self, value: int, ctx: Ctx) -> int | str:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        ctx.reasons.add("value_converted")
        try:
            return str(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            return hex(value)

    def _float(self, value: float, ctx: Ctx) -> float | str:
        if value - value == 0.0:
            return value
        ctx.reasons.add("value_converted")
        return repr(value)  # "nan", "inf", "-inf"

    def _clean_str(self, text: str, ctx: Ctx) -> str:
        if text.isascii():
            return text
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            ctx.reasons.add("string_repaired")
            return repair(text)
        return text

    def _object_text(self, value: object, ctx: Ctx) -> str:
        kind = type(value)
        if kind.__str__ is object.__str__ and kind.__repr__ is object.__repr__:
            # The default repr carries a memory address: without it equal objects render
            # alike from one run to the next.
            return f"<{qualname(kind)} object>"
        text = safe_text(value, None)
        if text is None:
            ctx.reasons.add("value_unprintable")
            return f"<unprintable {qualname(kind)} object>"
        return self._clean_str(text, ctx)

    def _key_text(self, key: object, ctx: Ctx) -> str:
        if type(key) is str:
            return self._clean_str(key, ctx)
        ctx.reasons.add("key_sanitized")
        return self._leaf_text(key, ctx)

    def _leaf_text(self, value: object, ctx: Ctx) -> str:
        leaf = self._leaf(value, _FLATTEN_DEPTH, ctx)
        return leaf if isinstance(leaf, str) else orjson.dumps(leaf).decode("utf-8")

    def _leaf(self, value: object, depth: int, ctx: Ctx) -> object:
        """A value that is not flattened: a JSON scalar; a container as its JSON text."""
        kind, payload = self._classify(value, ctx)
        if kind == _SCALAR:
            return "null" if payload is None else payload
        tree = self._tree_of(kind, payload, id(value), depth, ctx)
        if isinstance(tree, (dict, list)):
            return orjson.dumps(tree, default=json_default).decode("utf-8")
        return tree

    def _tree(self, value: object, depth: int, ctx: Ctx) -> object:
        """A JSON-able tree (dicts, lists, scalars, _Cut) of a value written as JSON text."""
        ctx.nodes += 1
        kind, payload = self._classify(value, ctx)
        if kind == _SCALAR:
            return self._text_str(payload, ctx) if isinstance(payload, str) else payload
        return self._tree_of(kind, payload, id(value), depth, ctx)

    def _tree_of(self, kind: int, payload: Any, ident: int, depth: int, ctx: Ctx) -> object:
        if depth >= ctx.max_depth:
            ctx.reasons.add("structure_limited")
            return _TOO_DEEP
        if ident in ctx.stack:
            ctx.reasons.add("structure_limited")
            return _CYCLE
        ctx.stack.add(ident)
        try:
            if kind == _MAP:
                return self._tree_map(payload, depth, ctx)
            items, more = _take(payload, ctx)
            children = [self._tree(item, depth + 1, ctx) for item in items]
            if kind == _SET:
                children = _sorted_set(items, children)
            if more:
                children.append(f"…[+{more} more]")
            return children
        finally:
            ctx.stack.discard(ident)

    def _tree_map(self, mapping: object, depth: int, ctx: Ctx) -> object:
        pairs = snapshot_items(mapping)
        if pairs is None:
            return self._object_text(mapping, ctx)
        out: dict[str, object] = {}
        for index, (key, child) in enumerate(pairs):
            if ctx.nodes >= ctx.node_limit:
                ctx.reasons.add("structure_limited")
                out[unique("…", out)] = f"[+{len(pairs) - index} more]"
                break
            # Non-str keys rendered as text may clash ({1: ..., "1": ...}): keep both.
            out[unique(self._key_text(key, ctx), out)] = self._tree(child, depth + 1, ctx)
        return out

    def _text_str(self, text: str, ctx: Ctx) -> str | _Cut:
        """A string inside JSON text, charged to the record's text budget (bounds the work)."""
        budget = ctx.text_chars
        if len(text) <= budget:
            ctx.text_chars = budget - len(text)
            return text
        keep = max(budget, 32)
        ctx.text_chars = max(0, budget - keep)
        ctx.reasons.add("value_truncated")
        head = text[:keep]
        return _Cut(head + marker(utf8_len(text) - utf8_len(head)))

    def _flatten(self, path: str, value: object, level: int, ctx: Ctx, out: list[Field]) -> None:
        """Append the fields of ``value`` stored at ``path``; mappings become dotted keys."""
        ctx.nodes += 1
        kind, payload = self._classify(value, ctx)
        if kind == _SCALAR:
            out.append(Field(path, "null" if payload is None else payload))
            return
        if kind != _MAP or level >= _FLATTEN_DEPTH:
            tree = self._tree_of(kind, payload, id(value), level, ctx)
            if isinstance(tree, (dict, list)):
                tree = orjson.dumps(tree, default=json_default).decode("utf-8")
            out.append(Field(path, tree))
            return
        ident = id(value)
        if ident in ctx.stack:
            ctx.reasons.add("structure_limited")
            out.append(Field(path, _CYCLE))
            return
        pairs = snapshot_items(payload)
        if pairs is None:
            out.append(Field(path, self._object_text(value, ctx)))
            return
        if not pairs:
            out.append(Field(path, "{}"))  # the server drops {}: keep it visible
            return
        ctx.stack.add(ident)
        try:
            for index, (key, child) in enumerate(pairs):
                if ctx.nodes >= ctx.node_limit:
                    ctx.reasons.add("structure_limited")
                    out.append(Field(f"{path}.…", f"[+{len(pairs) - index} more]"))
                    break
                name, changed = sanitize_component(self._key_text(key, ctx))
                if changed:
                    ctx.reasons.add("key_sanitized")
                self._flatten(f"{path}.{name}", child, level + 1, ctx, out)
        finally:
            ctx.stack.discard(ident)


def snapshot_items(mapping: object) -> list[tuple[object, object]] | None:
    """The items of a mapping (at most NODES_PER_VALUE), or None when they cannot be read."""
    for _attempt in range(3):
        try:
            items = mapping.items()  # type: ignore[attr-defined]
            return list(itertools.islice(items, NODES_PER_VALUE))
        except RuntimeError:  # changed size during iteration (another thread): retry
            continue
        except Exception:  # noqa: BLE001 - a hostile mapping
            return None
    return None


def _take(container: Any, ctx: Ctx) -> tuple[list[object], int]:
    """What the node budget allows of a sequence or set, and how many items were left out."""
    room = max(0, ctx.node_limit - ctx.nodes)
    try:
        total = len(container)
    except Exception:  # noqa: BLE001 - a hostile __len__
        total = -1
    items: list[object] = []
    for _attempt in range(3):
        try:
            items = list(itertools.islice(container, room))
            break
        except RuntimeError:  # changed size during iteration (another thread): retry
            continue
    more = max(0, total - len(items))
    if more:
        ctx.reasons.add("structure_limited")
    return items, more


def _sorted_set(items: list[object], children: list[object]) -> list[object]:
    """Set elements in a stable order: natural for numbers or strings, else by JSON text."""
    numbers = all(type(i) is int or _is_number(i) for i in items)
    if numbers or all(type(i) is str for i in items):
        order = sorted(range(len(items)), key=cast(Any, items).__getitem__)
        return [children[i] for i in order]
    return sorted(children, key=lambda c: orjson.dumps(c, default=json_default))


def _is_number(value: object) -> bool:
    return isinstance(value, float) and type(value) is float and not math.isnan(value)
