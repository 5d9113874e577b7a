"""Re-check record times of spooled lines before they are sent.

The encoder keeps ``_time`` inside the server's window when a record is logged, but a batch
can wait in the spool for days: VictoriaLogs would then answer 200 and silently drop lines
older than its retention. Lines that have left the window get the encoder's treatment at
send time (``_time`` = now, the original kept in ``original_time``); the others keep their
exact bytes.
"""

from __future__ import annotations

import datetime as _dt
import re
import time

import orjson

#: ``_time`` is the second key of every line (after ``_msg``); a JSON string cannot contain
#: an unescaped ``"``, so the first match is the key itself, never text inside the message.
_TIME = re.compile(rb'"_time":"([^"]*)"')


def refresh_times(
    payload: bytes, window: tuple[float, float], now: float | None = None
) -> tuple[bytes, int]:
    """``payload`` (lines joined by ``\\n``) with out-of-window times moved; and how many were."""
    current = time.time() if now is None else now
    oldest, newest = current - window[0], current + window[1]
    lines = payload.split(b"\n")
    moved = 0
    for index, line in enumerate(lines):
        match = _TIME.search(line)
        if match is None:
            continue
        try:
            text = match.group(1).decode("ascii")
            if text.endswith("Z"):  # Python 3.10's fromisoformat() does not read "Z"
                text = text[:-1] + "+00:00"
            stamp = _dt.datetime.fromisoformat(text).timestamp()
        except (ValueError, UnicodeDecodeError, OverflowError, OSError):
            continue  # not a time the encoder wrote: leave the line as it is
        if oldest <= stamp <= newest:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        original = record["_time"]
        moment = _dt.datetime.fromtimestamp(current, _dt.timezone.utc)
        record["_time"] = moment.isoformat(timespec="microseconds")
        record.setdefault("original_time", original)  # an earlier adjustment keeps the first
        lines[index] = orjson.dumps(record)
        moved += 1
    if not moved:
        return payload, 0
    return b"\n".join(lines), moved
