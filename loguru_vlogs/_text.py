"""Text helpers shared by the encoder modules: UTF-8 sizes, surrogate repair, safe ``str()``.

A leaf module: the record, value and limit modules import it; it imports none of them.
"""

from __future__ import annotations

from typing import Any, Final


def utf8_len(text: str) -> int:
    # isascii() is O(1) in CPython: only non-ASCII text pays for an encode.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def repair(text: str) -> str:
    """Lone surrogates -> U+FFFD; a surrogate pair becomes the character it encodes."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def repair_if_needed(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return repair(text)
    return text


def qualname(cls: object) -> str:
    """``module.Qualname`` (``builtins.`` omitted), for exception types and objects."""
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None)
    if not isinstance(name, str):
        name = getattr(cls, "__name__", None)
    if not isinstance(name, str):
        return "?"
    if not isinstance(module, str) or module == "builtins":
        return name
    return f"{module}.{name}"


def safe_attr(obj: object, name: str) -> object:
    try:
        return getattr(obj, name)
    except Exception:  # noqa: BLE001 - a property may raise anything
        return f"<unavailable {name}>"


_UNPRINTABLE: Final = object()


def safe_text(value: object, default: Any = _UNPRINTABLE) -> Any:
    """str(value), else repr(value), else ``default`` (an "<unprintable ...>" text)."""
    for render in (str, repr):
        try:
            text = render(value)
            return text if type(text) is str else str.__str__(text)
        except Exception:  # noqa: BLE001, S112 - __str__ / __repr__ may raise anything
            continue
    if default is _UNPRINTABLE:
        return f"<unprintable {qualname(type(value))} object>"
    return default
