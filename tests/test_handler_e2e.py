"""A stdlib-only program with VLogsHandler against ``vlogs_server`` (a real VictoriaLogs when
one is at hand): 10,000 records with extra= fields and 1 % exceptions, then exit; every record
stored, with the fields VLogsSink stores for the same data, same names, same forms."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

ROOT = Path(__file__).resolve().parents[1]
TOTAL = 10_000

#: The records both programs log, written once: ``log_one(i, extra)`` is the front's call.
WORK = """
def work():
    for i in range(TOTAL):
        extra = {"i": i, "user_id": i % 97, "amount": i / 10, "ok": i % 2 == 0,
                 "tags": ["a", "b"], "who": {"id": i % 7, "name": "n"}}
        if i % 100 == 0:
            try:
                raise ValueError(f"bad {i}")
            except ValueError:
                failed(i, extra)
        else:
            paid(i, extra)


work()
"""

STDLIB = """
import logging, sys
from loguru_vlogs import VLogsHandler

TOTAL = int(sys.argv[3])
log = logging.getLogger(__name__)
log.setLevel(logging.INFO)
log.addHandler(VLogsHandler(sys.argv[1], service="e2e", fields={"run_id": sys.argv[2]}))


def failed(i, extra):
    log.exception("failed %d", i, extra=extra)


def paid(i, extra):
    log.info("order %d paid", i, extra=extra)

"""

LOGURU = """
import sys
from loguru import logger
from loguru_vlogs import VLogsSink

TOTAL = int(sys.argv[3])
logger.remove()
logger.add(
    VLogsSink(sys.argv[1], service="e2e", fields={"run_id": sys.argv[2]}),
    backtrace=False,
    diagnose=False,
)


def failed(i, extra):
    logger.bind(**extra).exception("failed {}", i)


def paid(i, extra):
    logger.bind(**extra).info("order {} paid", i)

"""

#: Fields whose values differ between two runs by nature, checked by form instead.
FORMS = {
    "_time": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z",
    "elapsed": r"\d+(\.\d+)?",
    "process": r"\d+",
    "thread": r"\d+",
    "line": r"\d+",
    "file": r"/.+/app\.py",
}


def run_program(tmp_path: Path, front: str, body: str, url: str, run_id: str) -> None:
    """Write the program as ``<front>/app.py`` (module ``app`` for both) and run it."""
    directory = tmp_path / front
    directory.mkdir()
    script = directory / "app.py"
    check = 'assert "loguru" not in sys.modules\n' if front == "stdlib" else ""
    script.write_text(textwrap.dedent(body) + WORK + check, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLOGS_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(script), url, run_id, str(TOTAL)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert "" == done.stderr


def stored(server: Any, run_id: str) -> dict[int, dict[str, str]]:
    query = f'run_id:="{run_id}"'
    assert TOTAL == server.wait_for_count(query, TOTAL, timeout=60)
    rows = server.rows(query, limit=TOTAL + 10)
    return {int(row["i"]): row for row in rows}


def test_a_stdlib_program_stores_what_the_sink_stores_for_the_same_data(
    vlogs_server: Any, tmp_path: Path
) -> None:
    """No flush, no close: the exit delivers all 10,000; each row has exactly the sink's
    field names, the same values where the data is the same, the same forms elsewhere."""
    std_run, sink_run = uuid.uuid4().hex, uuid.uuid4().hex
    run_program(tmp_path, "stdlib", STDLIB, vlogs_server.url, std_run)
    run_program(tmp_path, "loguru", LOGURU, vlogs_server.url, sink_run)
    handler_rows, sink_rows = stored(vlogs_server, std_run), stored(vlogs_server, sink_run)
    assert set(range(TOTAL)) == set(handler_rows) == set(sink_rows)
    for i in range(TOTAL):
        ours, theirs = handler_rows[i], sink_rows[i]
        assert set(theirs) == set(ours), i
        for key, value in theirs.items():
            if key in FORMS:
                assert re.fullmatch(FORMS[key], ours[key]), (key, ours[key])
                assert re.fullmatch(FORMS[key], value), (key, value)
            elif key == "exception.traceback":
                for text in (ours[key], value):
                    assert text.startswith("Traceback (most recent call last):\n")
                    assert 'raise ValueError(f"bad {i}")' in text
                    assert text.endswith(f"ValueError: bad {i}")
            elif key != "run_id":
                assert value == ours[key], (i, key)
        if i % 100 == 0:
            assert ("ERROR", f"failed {i}", "ValueError") == (
                ours["level"],
                ours["_msg"],
                ours["exception.type"],
            )
        else:
            assert ("INFO", f"order {i} paid", str(i % 97)) == (
                ours["level"],
                ours["_msg"],
                ours["user_id"],
            )
        function = "failed" if i % 100 == 0 else "paid"
        assert (function, "app", "__main__") == (ours["function"], ours["module"], ours["logger"])
