"""Record what a real VictoriaLogs answers to, and stores from, a list of HTTP requests.

    .venv/bin/python tests/data/conformance/record.py \
        --binary /path/to/victoria-logs --version v1.52.2

starts the binary on loopback (``RealVictoriaLogs``: free port, temporary data directory,
``-retentionPeriod=100y``, ``TZ=UTC``) and sends every case of ``cases.py`` (the v1.26.0
cases plus the newer ones), each under its own tenant: after each request (a case may send
several) it calls ``/internal/force_flush``, and it reads the tenant back with ``query=*`` at
once (before the server's background merges can change blocks). Cases that make the server
exit, or that ask for a merge (``/internal/force_merge``, then a second read-back), get a
server of their own. It writes ``victorialogs-<version>.json`` next to this script (format:
``README.md``; ``--only NAME`` records some cases into the existing file); every server is
stopped and its data removed.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2]))

from cases import Case, all_cases  # noqa: E402

from loguru_vlogs.testing import RealVictoriaLogs  # noqa: E402
from loguru_vlogs.testing._gotime import parse_rfc3339  # noqa: E402

#: What the server's log lines look like: ``<time>\t<level>\t<caller>\t<message>``.
_LOG_LINE = re.compile(r"^\S+\t(warn|error|panic|fatal)\t\S+\t(.*)$")
#: Logged messages are cut to this length (some quote whole lines).
LOG_LIMIT = 400
#: Short bodies are also written as text, for reading the file.
BODY_TEXT_LIMIT = 4096
RESPONSE_LIMIT = 500


def rfc3339(nanos: int) -> str:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + "Z"


def send(port: int, case: Case) -> tuple[int, str, str | None]:
    """The case's exact bytes, method, path, parameters and headers (nothing added but
    ``Host``, ``Accept-Encoding: identity`` and ``Content-Length``)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        target = case.path + ("?" + urlencode(case.params) if case.params else "")
        conn.request(case.method, target, body=case.body, headers=case.all_headers())
        response = conn.getresponse()
        data = response.read()
        return response.status, data.decode("utf-8", "replace"), response.getheader("Content-Type")
    finally:
        conn.close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def read_back(port: int, account: int, project: int) -> list[list[tuple[str, str]]]:
    """Every row of the tenant, as (name, value) pairs in the server's order."""
    query = urlencode({"query": "*"})
    status, data = get(
        port,
        f"/select/logsql/query?{query}",
        {"AccountID": str(account), "ProjectID": str(project)},
    )
    if status != 200:
        raise RuntimeError(f"query for {account}:{project} answered {status}: {data[:300]!r}")
    text = data.decode("utf-8", "replace")  # invalid UTF-8 comes back raw
    return [json.loads(line, object_pairs_hook=list) for line in text.splitlines() if line]


def compact(value: str) -> str:
    """A long value as ``<N chars, sha256 HEX16>`` (cases with ``compact_over``)."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"<{len(value)} chars, sha256 {digest}>"


def as_recorded(
    rows: list[list[tuple[str, str]]], window: tuple[int, int], compact_over: int | None = None
) -> list[dict[str, Any]]:
    """First of duplicate keys kept, the others under ``_duplicates``; no ``_stream_id``; a
    ``_time`` inside the request's send window is ``<ingestion time>``; values longer than
    ``compact_over`` compacted; sorted by JSON text."""
    result = []
    for pairs in rows:
        row: dict[str, Any] = {}
        for name, text in pairs:
            value = compact(text) if compact_over is not None and len(text) > compact_over else text
            if name in row:
                row.setdefault("_duplicates", []).append([name, value])
            else:
                row[name] = value
        row.pop("_stream_id", None)
        nanos = parse_rfc3339(str(row.get("_time", "")).encode(), 0)
        if nanos is not None and window[0] <= nanos <= window[1]:
            row["_time"] = "<ingestion time>"
        result.append(row)
    return sorted(result, key=lambda r: json.dumps(r, ensure_ascii=False))


def log_messages(text: str) -> list[str]:
    """Warnings and errors the server logged, without time and caller."""
    found = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            found.append(f"{match.group(1)}: {match.group(2)}"[:LOG_LIMIT])
    return found


def describe(case: Case) -> dict[str, Any]:
    """The request part of a recorded case."""
    entry: dict[str, Any] = {"name": case.name, "note": case.note}
    if case.method != "POST":
        entry["method"] = case.method
    if case.path != "/insert/jsonline":
        entry["path"] = case.path
    entry["params"] = case.params
    entry["headers"] = case.all_headers()
    entry.update(describe_body(case.body))
    if case.compact_over is not None:
        entry["compact_over"] = case.compact_over
    return entry


def describe_body(body: bytes) -> dict[str, Any]:
    described: dict[str, Any] = {}
    if len(body) <= BODY_TEXT_LIMIT:
        described["body"] = body.decode("utf-8", "replace")
    described["body_b64"] = base64.b64encode(body).decode("ascii")
    described["body_len"] = len(body)
    return described


def new_log(log: Path, offset: int) -> list[str]:
    time.sleep(0.05)  # let the log writer catch up
    with log.open("rb") as handle:
        handle.seek(offset)
        return log_messages(handle.read().decode("utf-8", "replace"))


def send_more(server: RealVictoriaLogs, case: Case, body: bytes) -> dict[str, Any]:
    """One of the case's further requests (same method, path, parameters and headers), then
    ``/internal/force_flush``."""
    request = Case(case.name, body, params=case.params, headers=case.headers)
    request.method, request.path = case.method, case.path
    request.account, request.project = case.account, case.project
    status, response, content_type = send(server.port, request)
    get(server.port, "/internal/force_flush")
    described = describe_body(body)
    described.update(status=status, response=response[:RESPONSE_LIMIT], content_type=content_type)
    return described


def run_case(server: RealVictoriaLogs, case: Case) -> dict[str, Any]:
    """Send one case, flush, note what the server answered and logged, and read the tenant
    back at once (before the server merges in-memory parts, a few seconds later)."""
    log = server._log
    offset = log.stat().st_size
    entry = describe(case)
    before = time.time_ns()
    try:
        status, response, content_type = send(server.port, case)
    except (ConnectionError, http.client.HTTPException) as err:
        status, response, content_type = None, "", None
        entry["error"] = f"{type(err).__name__}: {err}"
    after = time.time_ns()
    if case.crashes:
        deadline = time.monotonic() + 10
        while server.running and time.monotonic() < deadline:
            time.sleep(0.05)
        entry["server_exited"] = not server.running
    else:
        get(server.port, "/internal/force_flush")
    if case.more:
        entry["more"] = [send_more(server, case, body) for body in case.more]
        after = time.time_ns()
    entry["status"] = status
    entry["response"] = response[:RESPONSE_LIMIT]
    entry["content_type"] = content_type
    entry["account"] = str(case.account)
    entry["project"] = str(case.project)
    entry["server_log"] = new_log(log, offset)
    if case.crashes:
        server.stop()
        server.start()  # same port and data: what survived the crash
    entry["stored"] = as_recorded(
        read_back(server.port, case.account, case.project), (before, after), case.compact_over
    )
    if case.merge_after:
        offset = log.stat().st_size
        get(server.port, "/internal/force_merge")  # runs in the background
        deadline = time.monotonic() + 60
        while b"has been successfully finished" not in log.read_bytes()[offset:]:
            if time.monotonic() > deadline:
                raise RuntimeError("the forced merge did not finish")
            time.sleep(0.1)
        entry["server_log_after_merge"] = new_log(log, offset)
        rows = read_back(server.port, case.account, case.project)
        entry["stored_after_merge"] = as_recorded(rows, (before, after), case.compact_over)
    print(f"{case.name}: {status} {response[:80]!r}", file=sys.stderr)
    return entry


def record(binary: str, version: str, only: set[str] | None) -> dict[str, Any]:
    os.environ["TZ"] = "UTC"  # the server's local zone, inherited by the process
    cases = [c for c in all_cases() if only is None or c.name in only]
    tenants = [(c.account, c.project) for c in cases]
    duplicates = {t for t in tenants if tenants.count(t) > 1}
    if duplicates:
        raise SystemExit(f"cases share tenants: {sorted(duplicates)}")
    entries: dict[str, dict[str, Any]] = {}
    recorded_now = time.time_ns()
    with RealVictoriaLogs(binary, retention="100y") as server:
        for case in cases:
            if not (case.crashes or case.merge_after):
                entries[case.name] = run_case(server, case)
    for case in cases:
        if case.crashes or case.merge_after:
            # A server of its own: the case stops it, or merges every part it holds.
            with RealVictoriaLogs(binary, retention="100y") as server:
                entries[case.name] = run_case(server, case)
    return {
        "server": f"VictoriaLogs {version} single node",
        "command": "victoria-logs -storageDataPath=<tmp> -httpListenAddr=127.0.0.1:<port> "
        "-retentionPeriod=100y (TZ=UTC)",
        "recorded_now": rfc3339(recorded_now),
        "cases": [entries[case.name] for case in cases],
    }


def merge_into(existing: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """The existing recording with the newly recorded cases in place of (or next to) its own,
    in the order of ``cases.py``; it keeps its ``recorded_now``, so a new case may not have
    rows stamped with their ingestion time (their time would be another clock's)."""
    for entry in recorded["cases"]:
        if any("<ingestion time>" in json.dumps(entry.get(key, [])) for key in STORED_KEYS):
            raise SystemExit(
                f"{entry['name']}: rows stamped with the ingestion time cannot join a recording "
                "made at another time; record every case instead (no --only)"
            )
    entries = {entry["name"]: entry for entry in existing["cases"]}
    entries.update((entry["name"], entry) for entry in recorded["cases"])
    order = [case.name for case in all_cases()]
    names = sorted(entries, key=lambda name: order.index(name) if name in order else len(order))
    return {**existing, "cases": [entries[name] for name in names]}


STORED_KEYS = ("stored", "stored_after_merge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the victoria-logs binary")
    parser.add_argument("--version", required=True, help="its version, e.g. v1.52.2")
    parser.add_argument("--out", help="output file (default: victorialogs-<version>.json here)")
    parser.add_argument(
        "--only",
        action="append",
        help="record only these cases (repeatable) and put them into the output file in "
        "place of the recorded cases of the same name, keeping the others",
    )
    args = parser.parse_args()
    result = record(args.binary, args.version, set(args.only) if args.only else None)
    out = Path(args.out) if args.out else HERE / f"victorialogs-{args.version}.json"
    if args.only and out.exists():
        result = merge_into(json.loads(out.read_text(encoding="utf-8")), result)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(result['cases'])} cases to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
