"""Timestamps as VictoriaLogs v1.52.2 reads and prints them.

Reading (``insertutil.parseTimestamp``): ``""``, ``"0"`` and ``"-"`` mean "now"; a value whose
fifth byte is not ``-`` is a Unix number (integer, fraction or scientific; the unit is guessed
from its size: seconds up to 9223372036, then milliseconds, microseconds, nanoseconds);
anything else must be ``YYYY-MM-DD[T ]hh:mm:ss`` with an optional fraction of up to 9 digits
and ``Z``, ``±hh:mm`` or ``±hhmm`` (no zone means the server's local zone). Printing is
RFC3339Nano in UTC.
"""

from __future__ import annotations

import datetime
import functools
import re

from ._gojson import go_quote

NANOS_PER_SECOND = 1_000_000_000
NANOS_PER_DAY = 86_400 * NANOS_PER_SECOND
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_GO_INT = re.compile(rb"[+-]?[0-9]+\Z")
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_POW10: tuple[int, ...] = tuple(int(10**i) for i in range(10))
#: ``math.MaxInt64 / 1e9`` and friends (the unit thresholds of Unix timestamps).
_MAX_SECONDS = _INT64_MAX // 1_000_000_000
_MAX_MILLIS = _INT64_MAX // 1_000_000
_MAX_MICROS = _INT64_MAX // 1000


def _parse_int64(text: bytes) -> int | None:
    """``strconv.ParseInt(s, 10, 64)``: optional sign, ASCII digits, int64 range."""
    if not _GO_INT.match(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _multiply_by_decimal_exp(number: int | None, exp: int) -> int | None:
    if number is None or exp < 0 or exp >= 19:
        return None
    result = number * 10**exp
    return result if _INT64_MIN <= result <= _INT64_MAX else None


def _fractional(int_part: bytes, frac_part: bytes) -> int | None:
    """``tryParseFractionalNumberForUnixTimestamp``: int64 arithmetic where a negative
    fraction (``"1.-5"``) trips Go's wrapped overflow check and is rejected."""
    number = _multiply_by_decimal_exp(_parse_int64(int_part), len(frac_part))
    frac = _parse_int64(frac_part)
    if number is None or frac is None or frac < 0:
        return None
    result = number + frac if number >= 0 else number - frac
    return result if _INT64_MIN <= result <= _INT64_MAX else None


def _unix_nanos(number: int) -> int:
    """``getUnixTimestampNanoseconds``: seconds, ms, µs or ns by magnitude."""
    size = abs(number)
    if size <= _MAX_SECONDS:
        return number * NANOS_PER_SECOND
    if size <= _MAX_MILLIS:
        return number * 1_000_000
    if size <= _MAX_MICROS:
        return number * 1000
    return number


def parse_unix_timestamp(text: bytes) -> int | None:  # noqa: PLR0911 - Go's early exits
    """``timeutil.TryParseUnixTimestamp``: nanoseconds, or None when not a Unix number."""
    exp_index = text.find(b"e")
    if exp_index < 0:
        exp_index = text.find(b"E")
    if exp_index >= 0:
        exp = _parse_int64(text[exp_index + 1 :])
        if exp is None:
            return None
        mantissa = text[:exp_index]
        dot = mantissa.find(b".")
        if dot < 0:
            number = _multiply_by_decimal_exp(_parse_int64(mantissa), exp)
        else:
            frac_part = mantissa[dot + 1 :]
            if exp < len(frac_part):
                return None
            number = _multiply_by_decimal_exp(
                _fractional(mantissa[:dot], frac_part), exp - len(frac_part)
            )
        return None if number is None else _unix_nanos(number)
    dot = text.find(b".")
    if dot < 0:
        number = _parse_int64(text)
        return None if number is None else _unix_nanos(number)
    frac_part = text[dot + 1 :]
    number = _fractional(text[:dot], frac_part)
    if number is None:
        return None
    exp = len(frac_part)
    while exp % 3:
        number *= 10
        if not _INT64_MIN <= number <= _INT64_MAX:
            return None
        exp += 1
    return _unix_nanos(number)


def parse_date_uint(text: bytes) -> int | None:
    """``tryParseDateUint64``: 1-9 ASCII digits. Two-byte values take a shortcut that checks
    only the first byte: the second counts as ``byte - '0'`` modulo 256 (``"4a"`` is 89)."""
    if not text or len(text) > 9:
        return None
    if len(text) == 2:
        if not 0x30 <= text[0] <= 0x39:
            return None
        return 10 * (text[0] - 0x30) + ((text[1] - 0x30) & 0xFF)
    number = 0
    for byte in text:
        if not 0x30 <= byte <= 0x39:
            return None
        number = number * 10 + byte - 0x30
    return number


@functools.lru_cache(maxsize=1024)
def days_from_civil(year: int, month: int) -> int:
    """Days from 1970-01-01 to the first of ``month`` (normalised like Go's ``time.Date``)."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime.date(year, month, 1).toordinal() - _EPOCH_ORDINAL


def parse_timestamp_secs(text: bytes) -> tuple[int, bytes] | None:
    """``tryParseTimestampSecs``: ``YYYY-MM-DD[T ]hh:mm:ss`` at the start of ``text`` (at least
    19 bytes) → (Unix seconds, the rest). The year must be 1677-2262; the other parts are not
    range-checked but carried over like ``time.Date`` does (month 13 is next January)."""
    if len(text) < 19 or text[4] != 0x2D or text[7] != 0x2D or text[10] not in b"T ":
        return None
    if text[13] != 0x3A or text[16] != 0x3A:
        return None
    year = parse_date_uint(text[0:4])
    if year is None or not 1677 <= year <= 2262:
        return None
    month = parse_date_uint(text[5:7])
    day = parse_date_uint(text[8:10])
    hour = parse_date_uint(text[11:13])
    minute = parse_date_uint(text[14:16])
    second = parse_date_uint(text[17:19])
    if month is None or day is None or hour is None or minute is None or second is None:
        return None
    days = days_from_civil(year, month) + day - 1
    secs = days * 86_400 + hour * 3600 + minute * 60 + second
    if secs < -(_INT64_MAX // NANOS_PER_SECOND) or secs >= _INT64_MAX // NANOS_PER_SECOND:
        return None
    return secs, text[19:]


def _parse_hhmm(text: bytes) -> int | None:
    """``tryParseHHMM``: ``hh:mm`` or ``hhmm``, hours <= 24, minutes <= 60 → nanoseconds."""
    if len(text) == 5 and text[2] == 0x3A:
        hours, minutes = parse_date_uint(text[:2]), parse_date_uint(text[3:])
    elif len(text) == 4:
        hours, minutes = parse_date_uint(text[:2]), parse_date_uint(text[2:])
    else:
        return None
    if hours is None or hours > 24 or minutes is None or minutes > 60:
        return None
    return (hours * 3600 + minutes * 60) * NANOS_PER_SECOND


def _sub_no_overflow(a: int, b: int) -> int:
    """``SubInt64NoOverflow``: ``a - b`` saturated to the int64 range."""
    return min(max(a - b, _INT64_MIN), _INT64_MAX)


_RFC3339_COMMON = re.compile(
    rb"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    rb"(?:\.([0-9]{1,9}))?(?:(Z)|([+-])([0-9]{2}):?([0-9]{2}))?\Z"
)


def parse_rfc3339(text: bytes, local_offset_nanos: int) -> int | None:
    """``logstorage.TryParseTimestampRFC3339Nano`` of v1.52.2: nanoseconds or None."""
    match = _RFC3339_COMMON.match(text)
    if match is None:
        return _parse_rfc3339_exactly(text, local_offset_nanos)
    year, month, day, hour, minute, second, fraction, utc, sign, zone_h, zone_m = match.groups()
    if not 1677 <= int(year) <= 2262:
        return None
    secs = (
        (days_from_civil(int(year), int(month)) + int(day) - 1) * 86_400
        + int(hour) * 3600
        + int(minute) * 60
        + int(second)
    )
    if secs < -(_INT64_MAX // NANOS_PER_SECOND) or secs >= _INT64_MAX // NANOS_PER_SECOND:
        return None
    nanos = secs * NANOS_PER_SECOND
    if sign:
        hours, minutes = int(zone_h), int(zone_m)
        if hours > 24 or minutes > 60:
            return None
        offset = (hours * 3600 + minutes * 60) * NANOS_PER_SECOND
        nanos -= -offset if sign == b"-" else offset
    elif not utc:
        nanos -= local_offset_nanos
    if fraction:
        nanos += int(fraction) * _POW10[9 - len(fraction)]
    return nanos


def _parse_rfc3339_exactly(text: bytes, local_offset_nanos: int) -> int | None:
    """The byte-by-byte port, for everything the common pattern does not cover."""
    parsed = parse_timestamp_secs(text)
    if parsed is None:
        return None
    secs, tail = parsed
    nanos = secs * NANOS_PER_SECOND
    if tail.endswith(b"Z"):
        tail = tail[:-1]
    else:
        sign_at = max(tail.rfind(b"+"), tail.rfind(b"-"))
        if sign_at < 0:
            nanos = _sub_no_overflow(nanos, local_offset_nanos)
        else:
            offset = _parse_hhmm(tail[sign_at + 1 :])
            if offset is None:
                return None
            nanos = _sub_no_overflow(nanos, -offset if tail[sign_at] == 0x2D else offset)
            tail = tail[:sign_at]
    if not tail:
        return nanos
    if tail[0] == 0x2E:
        tail = tail[1:]
    if len(tail) > 9:
        return None
    fraction = parse_date_uint(tail)
    if fraction is None:
        return None
    return nanos + fraction * _POW10[9 - len(tail)]


class TimestampError(ValueError):
    """An unparsable ``_time`` value (the line is skipped)."""


def parse_timestamp(value: str, now_nanos: int, local_offset_nanos: int) -> int:
    """``insertutil.parseTimestamp`` + the ``0 → now`` rule of ``ExtractTimestampFromFields``."""
    if value in ("", "0", "-"):
        return now_nanos
    raw = value.encode("utf-8")
    if len(raw) <= 4 or raw[4] != ord("-"):
        nanos = parse_unix_timestamp(raw)
        if nanos is None:
            raise TimestampError(f"cannot parse unix timestamp {go_quote(value)}")
    else:
        nanos = parse_rfc3339(raw, local_offset_nanos)
        if nanos is None:
            raise TimestampError(f"cannot unmarshal rfc3339 timestamp {go_quote(value)}")
    return nanos if nanos != 0 else now_nanos


@functools.lru_cache(maxsize=4096)
def _date_text(days: int) -> str:
    day = datetime.date.fromordinal(days + _EPOCH_ORDINAL)
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}T"


def format_rfc3339_nano(nanos: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing zeros of the fraction trimmed, ``Z``."""
    seconds, fraction = divmod(nanos, NANOS_PER_SECOND)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_date_text(days)}{hours:02d}:{minutes:02d}:{secs:02d}"
    if fraction:
        return f"{text}.{fraction:09d}".rstrip("0") + "Z"
    return text + "Z"


_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s|m|h|d|w|y)?\s*\Z")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86_400,
    "w": 7 * 86_400,
    "y": 365 * 86_400,
}


def parse_duration(value: float | str | datetime.timedelta | None, name: str) -> int | None:
    """A duration in nanoseconds from seconds, a ``timedelta`` or text such as ``"7d"``/``"100y"``.

    ``None`` means unlimited. Like VictoriaMetrics, ``y`` is 365 days.
    """
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(
            f"Invalid {name}, it should be seconds, a timedelta or text like '7d', not: {value!r}"
        )
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(
                f"Invalid {name}, it should look like '7d', '12h' or '100y', not: {value!r}"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        seconds = float(value)
    if seconds < 0:
        raise ValueError(f"Invalid {name}, it should not be negative, not: {value!r}")
    return int(seconds * NANOS_PER_SECOND)


def go_day(nanos: int) -> int:
    """``nanos / nsecsPerDay`` with Go's truncation toward zero."""
    days = abs(nanos) // NANOS_PER_DAY
    return days if nanos >= 0 else -days
