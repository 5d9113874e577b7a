"""Text -> value parsers for option values read from the environment or a command line.

One parser per kind of value; every error names where the text came from (a ``VLOGS_*``
variable or a command-line flag), says what is expected and shows what was found (never the
value of a secret). Range and consistency checks stay in ``_config``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# The VictoriaLogs flag convention: KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^(\d[\d_]*)\s*([a-z]*)$", re.IGNORECASE)
_SECONDS = re.compile(r"^([0-9.eE+-]+?)\s*(ms|s|m|h|d)?$")
_SECONDS_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}

Parser = Callable[[str, str], Any]


def _show(value: str, secret: bool) -> str:
    return "<hidden>" if secret else repr(value)


def parse_text(variable: str, raw: str) -> str:
    """A non-empty string, surrounding blanks removed."""
    return raw.strip()


def parse_integer(variable: str, raw: str) -> int:
    """A decimal integer (``1_000`` allowed)."""
    try:
        return int(raw.strip(), 10)
    except ValueError:
        raise ValueError(f"Invalid {variable}: it should be an integer, not: {raw!r}") from None


def parse_bytes(variable: str, raw: str) -> int:
    """A byte count, optionally with a unit: ``1048576``, ``512KiB``, ``1MiB``, ``10MB``."""
    match = _SIZE.match(raw.strip())
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(
            f"Invalid {variable}: it should be a number of bytes such as 1048576, 512KiB "
            f"or 1MiB (KB/MB/GB: powers of 1000), not: {raw!r}"
        )
    return int(match.group(1), 10) * _SIZE_UNITS[unit]


def parse_seconds(variable: str, raw: str) -> float:
    """A duration in seconds: ``1.5``, or with a unit: ``1500ms``, ``2s``, ``1m``, ``2h``, ``7d``."""
    match = _SECONDS.match(raw.strip())
    try:
        number = float(match.group(1)) if match else None
    except ValueError:
        number = None
    if match is None or number is None:
        raise ValueError(
            f"Invalid {variable}: it should be a number of seconds such as 1.5 "
            f"(or 1500ms, 2s, 1m, 2h, 7d), not: {raw!r}"
        )
    return number * _SECONDS_UNITS[match.group(2)]


def parse_time_window(variable: str, raw: str) -> tuple[float, float] | None:
    """``MAX_AGE,MAX_FUTURE`` durations (``7d,2d``), or ``none`` to send every time as it is."""
    text = raw.strip()
    if text.lower() == "none":
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(
            f"Invalid {variable}: it should be MAX_AGE,MAX_FUTURE durations such as 7d,2d "
            f"(or none), not: {raw!r}"
        )
    return parse_seconds(variable, parts[0]), parse_seconds(variable, parts[1])


def parse_optional_bytes(variable: str, raw: str) -> int | None:
    """:func:`parse_bytes`, or ``none`` for no limit."""
    return None if raw.strip().lower() == "none" else parse_bytes(variable, raw)


def parse_boolean(variable: str, raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, any case."""
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(
        f"Invalid {variable}: it should be one of 1/true/yes/on or 0/false/no/off, not: {raw!r}"
    )


def parse_names(variable: str, raw: str) -> tuple[str, ...]:
    """Comma-separated names: ``service,host``."""
    names = tuple(n.strip() for n in raw.split(","))
    if any(not n for n in names):
        raise ValueError(
            f"Invalid {variable}: it should be comma-separated names such as "
            f"'service,host', with no empty name, not: {raw!r}"
        )
    return names


def parse_urls(variable: str, raw: str) -> str | list[str]:
    """One base URL, or several separated by commas (a cluster's vlinsert nodes)."""
    urls = [u.strip() for u in raw.split(",")]
    if any(not u for u in urls):
        # The URL may carry credentials: show the shape, not the text.
        raise ValueError(
            f"Invalid {variable}: it should be a URL or comma-separated URLs with no empty "
            f"entry, got {len(urls)} entries of which {sum(not u for u in urls)} empty"
        )
    return urls[0] if len(urls) == 1 else urls


def _pairs(variable: str, raw: str, secret: bool) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for position, item in enumerate(raw.split(","), start=1):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            shown = f"entry {position}" if secret else repr(item)
            raise ValueError(
                f"Invalid {variable}: it should be comma-separated key=value pairs such as "
                f"'env=prod,team=core', not: {shown} in {_show(raw, secret)}"
            )
        if key in pairs:
            raise ValueError(f"Invalid {variable}: {key!r} is given twice")
        pairs[key] = value.strip()
    return pairs


def parse_pairs(variable: str, raw: str) -> dict[str, str]:
    """``key=value`` pairs separated by commas: ``env=prod,team=core`` (values: strings)."""
    return _pairs(variable, raw, secret=False)


def parse_secret_pairs(variable: str, raw: str) -> dict[str, str]:
    """:func:`parse_pairs` for values that may be secrets (headers): errors never show them."""
    return _pairs(variable, raw, secret=True)
