"""Values users log that orjson refuses, that the server would mangle, or that fight back.

Each case builds a fresh value (some are cyclic or mutable) and, where the rendering is a
documented rule, the fields expected when it is bound as the extra ``v``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import pathlib
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple


class Case(NamedTuple):
    id: str
    make: Callable[[], object]
    expected: dict[str, object] | None  # fields whose key starts with "v", or None


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    label: str


@dataclasses.dataclass
class Order:
    id: int
    at: Point


class Plain:
    """Default str/repr: rendered without the memory address."""


class WithStr:
    def __str__(self) -> str:
        return "with-str"


class StrRaises:
    def __str__(self) -> str:
        raise RuntimeError("str")

    def __repr__(self) -> str:
        return "StrRaises()"


class BothRaise:
    def __str__(self) -> str:
        raise RuntimeError("str")

    def __repr__(self) -> str:
        raise RuntimeError("repr")


class StrNotStr:
    def __str__(self) -> Any:
        return 42  # noqa: PLE0307 - a broken __str__ is the point

    def __repr__(self) -> str:
        return "StrNotStr()"


class LazyOrm:
    """An ORM row whose attribute access would hit the database (and here fails)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"lazy load of {name} outside a session")

    def __str__(self) -> str:
        return "<User 7>"


class SneakyStr(str):
    def __str__(self) -> str:
        raise RuntimeError("no")


class FakeNumpyScalar:
    """Looks like numpy.int64 (duck-typed: numpy is not imported by the encoder)."""

    shape = ()

    def item(self) -> int:
        return 7


class FakeNumpyArray:
    shape = (3,)
    size = 3

    def tolist(self) -> list[int]:
        return [1, 2, 3]


FakeNumpyScalar.__module__ = "numpy"
FakeNumpyArray.__module__ = "numpy"


class BrokenMapping(Mapping[str, int]):
    def __getitem__(self, key: str) -> int:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no iteration")

    def __len__(self) -> int:
        return 1

    def items(self) -> Any:
        raise ValueError("no items")


class AlwaysChanging(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("dictionary changed size during iteration")


def self_dict() -> dict[str, object]:
    d: dict[str, object] = {"name": "loop"}
    d["self"] = d
    return d


def self_list() -> list[object]:
    items: list[object] = [1]
    items.append(items)
    return items


def mutual() -> dict[str, object]:
    a: dict[str, object] = {}
    b: dict[str, object] = {"a": a}
    a["b"] = b
    return a


def nested(depth: int, leaf: object = "deep") -> object:
    value: object = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_lists(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def shared_dag() -> object:
    # 2**20 leaves through shared references: rendering must stop early.
    value: object = ["y" * 1000]
    for _ in range(20):
        value = [value, value]
    return value


def generator() -> object:
    return (i for i in range(3))


def func() -> None:
    """A function logged as a value."""


AWARE = dt.datetime(2026, 11, 20, 8, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
NAIVE = dt.datetime(2026, 11, 20, 8, 15, 30, 123456)  # naive on purpose
UID = uuid.UUID("12345678-1234-5678-1234-567812345678")

CASES: list[Case] = [
    Case("bytes-invalid-utf8", lambda: b"\xff\x00ab", {"v": "\\xff\x00ab"}),
    Case("bytearray", lambda: bytearray(b"abc"), {"v": "abc"}),
    Case("memoryview", lambda: memoryview(b"abc"), {"v": "abc"}),
    Case("memoryview-strided", lambda: memoryview(b"a-b-c")[::2], {"v": "abc"}),
    Case("bytes-500KB-invalid", lambda: b"\xfe" * 500_000, None),
    Case("decimal", lambda: decimal.Decimal("12.50"), {"v": "12.50"}),
    Case("decimal-nan", lambda: decimal.Decimal("NaN"), {"v": "NaN"}),
    Case("datetime-naive", lambda: NAIVE, {"v": "2026-11-20T08:15:30.123456"}),
    Case("datetime-aware", lambda: AWARE, {"v": "2026-11-20T08:15:30+01:00"}),
    Case("date", lambda: dt.date(2026, 11, 20), {"v": "2026-11-20"}),
    Case("time", lambda: dt.time(8, 15, 30), {"v": "08:15:30"}),
    Case("timedelta", lambda: dt.timedelta(minutes=1, seconds=30.5), {"v": 90.5}),
    Case("uuid", lambda: UID, {"v": "12345678-1234-5678-1234-567812345678"}),
    Case("path", lambda: pathlib.PurePosixPath("/var/log/app.log"), {"v": "/var/log/app.log"}),
    Case("complex", lambda: complex(1, -2), {"v": "(1-2j)"}),
    Case("dataclass", lambda: Point(1, "a"), {"v.x": 1, "v.label": "a"}),
    Case(
        "nested-dataclass",
        lambda: Order(9, Point(2, "b")),
        {"v.id": 9, "v.at.x": 2, "v.at.label": "b"},
    ),
    Case("numpy-scalar-duck", FakeNumpyScalar, {"v": 7}),
    Case("numpy-array-duck", FakeNumpyArray, {"v": "[1,2,3]"}),
    Case("set-ints", lambda: {3, 1, 2}, {"v": "[1,2,3]"}),
    Case("frozenset-str", lambda: frozenset({"b", "a"}), {"v": '["a","b"]'}),
    Case("set-mixed", lambda: {1, "a", None}, {"v": '["a",1,null]'}),
    Case("set-of-tuples", lambda: {(2, 1), (1, 2)}, {"v": "[[1,2],[2,1]]"}),
    Case("enum", lambda: Color.RED, {"v": "red"}),
    Case("int-enum", lambda: Level.HIGH, {"v": 3}),
    Case("exception-value", lambda: ValueError("bad"), {"v": "ValueError: bad"}),
    Case("exception-empty", ValueError, {"v": "ValueError"}),
    Case("exception-key", lambda: KeyError("k"), {"v": "KeyError: 'k'"}),
    Case("int-2**70", lambda: 2**70, {"v": "1180591620717411303424"}),
    Case("int-minus-2**70", lambda: -(2**70), {"v": "-1180591620717411303424"}),
    Case("int-u64-max", lambda: 2**64 - 1, {"v": 18446744073709551615}),
    Case("int-i64-min", lambda: -(2**63), {"v": -(2**63)}),
    Case("int-10**5000", lambda: 10**5000, None),
    Case("float-nan", lambda: float("nan"), {"v": "nan"}),
    Case("float-inf", lambda: float("inf"), {"v": "inf"}),
    Case("float-minus-inf", lambda: float("-inf"), {"v": "-inf"}),
    Case("lone-surrogate", lambda: "a\ud800b", {"v": "a\ufffdb"}),
    Case("surrogate-pair", lambda: "\ud83d\ude80", {"v": "\U0001f680"}),
    Case("nul", lambda: "nul\x00here", {"v": "nul\x00here"}),
    Case("control-chars", lambda: "\x1b[31mred\x07", {"v": "\x1b[31mred\x07"}),
    Case("self-dict", self_dict, {"v.name": "loop", "v.self": "<cycle>"}),
    Case("self-list", self_list, {"v": '[1,"<cycle>"]'}),
    Case("mutual-recursion", mutual, {"v.b.a": "<cycle>"}),
    Case(
        "non-str-keys",
        lambda: {1: "a", "1": "b", None: "c", (1, 2): "d", 1.5: "e"},
        {"v.1": "a", "v.1~2": "b", "v.null": "c", "v.[1,2]": "d", "v.1.5": "e"},
    ),
    Case("empty-key", lambda: {"": 1}, {"v.(empty)": 1}),
    Case("control-key", lambda: {"a\nb\x00": 1}, {"v.a\\nb\\x00": 1}),
    Case("surrogate-key", lambda: {"k\udc80": 1}, {"v.k\ufffd": 1}),
    Case("dotted-key-collision", lambda: {"a.b": 1, "a": {"b": 2}}, {"v.a.b": 1, "v.a.b~2": 2}),
    Case("nested-50", lambda: nested(50), None),
    Case("nested-lists-5000", lambda: nested_lists(5000), None),
    Case("shared-dag-2**20", shared_dag, None),
    Case("list-1M", lambda: list(range(1_000_000)), None),
    Case("dict-100k", lambda: {f"k{i}": i for i in range(100_000)}, None),
    Case("str-1MB", lambda: "x" * 1_000_000, None),
    Case("empty-dict", dict, {"v": "{}"}),
    Case("empty-list", list, {"v": "[]"}),
    Case("empty-str", str, {"v": ""}),
    Case("none", lambda: None, {"v": "null"}),
    Case("tuple", lambda: (1, "a", None), {"v": '[1,"a",null]'}),
    Case("deque", lambda: deque([1, 2]), {"v": "[1,2]"}),
    Case("ordered-dict", lambda: OrderedDict(b=1, a=2), {"v.b": 1, "v.a": 2}),
    Case("list-of-dicts", lambda: [{"a": {1: float("nan")}}], {"v": '[{"a":{"1":"nan"}}]'}),
    Case("plain-object", Plain, {"v": "<tests.corpus.hostile_values.Plain object>"}),
    Case("object-with-str", WithStr, {"v": "with-str"}),
    Case("object-str-raises", StrRaises, {"v": "StrRaises()"}),
    Case(
        "object-str-and-repr-raise",
        BothRaise,
        {"v": "<unprintable tests.corpus.hostile_values.BothRaise object>"},
    ),
    Case("object-str-not-str", StrNotStr, {"v": "StrNotStr()"}),
    Case("lazy-orm", LazyOrm, {"v": "<User 7>"}),
    Case("str-subclass-str-raises", lambda: SneakyStr("data"), {"v": "data"}),
    Case("broken-mapping", BrokenMapping, None),
    Case("always-changing-dict", lambda: AlwaysChanging(a=1), None),
    Case("range", lambda: range(3), {"v": "range(0, 3)"}),
    Case("type", lambda: int, {"v": "<class 'int'>"}),
    Case("bool", lambda: True, {"v": True}),
]


class NastyRecord(NamedTuple):
    id: str
    message: str
    make_extra: Callable[[], dict[Any, Any]]
    expected: dict[str, object] | None  # exact output fields, when the rule fixes them


_SHARED_100KB = "f" * 100_000

# Records that broke (or nearly broke) earlier versions of the encoder, or that the property
# tests found hardest: keep them as regular tests.
NASTY_RECORDS: list[NastyRecord] = [
    NastyRecord(
        # Escapes make the message 2-6x its length in JSON while 1200 extras of 100 KB need the
        # room: the fitter must count escaped bytes. (An early fitter rebuilt the overflow
        # field uncut on every pass and ended on the fallback line with records this wide.)
        "escape-heavy-message-and-1200-wide-extras",
        '"\x01\\' * 50_000,
        lambda: {f"k{i}": _SHARED_100KB for i in range(1200)},
        None,
    ),
    NastyRecord(
        "dedup-chain",
        "m",
        lambda: {"a.b": 1, "a": {"b": 2}, "a.b~2": 3},
        {"a.b": 1, "a.b~2": 2, "a.b~2~2": 3},
    ),
    NastyRecord(
        "keys-rendering-alike",
        "m",
        lambda: {"n": {None: 1, "null": 2, "": 3, "(empty)": 4}},
        {"n.null": 1, "n.null~2": 2, "n.(empty)": 3, "n.(empty)~2": 4},
    ),
    NastyRecord(
        "renamed-meets-literal",
        "m",
        lambda: {"level": 1, "extra.level": 2, "extra": {"level": 3}},
        {"extra.level": 1, "extra.extra.level": 2, "extra.extra.level~2": 3},
    ),
    NastyRecord(
        "long-keys-same-prefix",
        "m",
        lambda: {"k" * 199 + "1": 1, "k" * 199 + "2": 2},
        None,
    ),
    NastyRecord(
        "one-extra-with-1500-keys",
        "m",
        lambda: {"wide": {f"k{i}": i for i in range(1500)}},
        None,
    ),
    NastyRecord(
        "surrogates-everywhere",
        "\udfff",
        lambda: {"\ud800": {"\udc00": ["\ud83d", b"\xed\xa0\x80"]}},
        {"\ufffd.\ufffd": '["\ufffd","\\\\xed\\\\xa0\\\\x80"]'},
    ),
    NastyRecord(
        "nan-keys-and-values",
        "m",
        lambda: {"f": {float("nan"): float("nan"), float("inf"): -0.0}},
        {"f.nan": "nan", "f.inf": -0.0},
    ),
]
