"""Smoke tests of examples/ (each runs against the test receiver and delivers) and of docs/."""

from __future__ import annotations

import collections
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import closed_port_url

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HAS_FASTAPI = importlib.util.find_spec("fastapi") is not None


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as srv:
        yield srv


def run_example(
    name: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run examples/NAME.py in a fresh interpreter; (result, wall seconds)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VLOGS_")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    return result, time.monotonic() - started


def rows_of(server: FakeVictoriaLogs, service: str) -> list[dict[str, str]]:
    return server.rows(f'service:="{service}"', limit=1000)


def test_every_example_is_smoke_tested() -> None:
    """A new example needs a test here."""
    tested = {
        "basic",
        "cli_tool",
        "enqueue_pool",
        "asyncio_service",
        "fastapi_middleware",
        "stdlib_intercept",
        "stdlib_handler",
        "cluster",
        "spool",
        "gunicorn_style",
    }
    assert tested == {p.stem for p in EXAMPLES.glob("*.py")}


def test_basic(server: FakeVictoriaLogs) -> None:
    """Four records with their bound, keyword and context fields and the exception."""
    result, _ = run_example("basic", "--url", server.url)
    assert "sent 4 records, dropped 0\n" == result.stdout
    rows = {r["_msg"]: r for r in rows_of(server, "example-basic")}
    expected = {"service starting", "order 1017 paid", "slow request", "payment failed"}
    assert expected == set(rows)
    order = rows["order 1017 paid"]
    assert ("42", "12.5", "EUR", "dev") == (
        order["user_id"],
        order["amount"],
        order["currency"],
        order["env"],
    )
    failed = rows["payment failed"]
    assert ("KeyError", "req-7f3a") == (failed["exception.type"], failed["request_id"])


def test_cli_tool_exits_fast_and_delivers_every_line(server: FakeVictoriaLogs) -> None:
    """No complete(), no remove(): all 20 lines arrive; the URL comes from VLOGS_URL."""
    _, elapsed = run_example("cli_tool", env={"VLOGS_URL": server.url})
    # Interpreter start and imports take well under a second here; nothing waits on flush_interval.
    assert elapsed < 5
    rows = rows_of(server, "example-cli-tool")
    assert set(range(20)) == {int(r["item"]) for r in rows}


def test_enqueue_pool(server: FakeVictoriaLogs) -> None:
    """8 tasks x 5 lines from the pool's processes plus 2 from the parent, all through the queue."""
    result, _ = run_example("enqueue_pool", "--url", server.url)
    assert "sent 42 records, dropped 0\n" == result.stdout
    rows = rows_of(server, "example-enqueue-pool")
    tasks = [r for r in rows if "task" in r]
    parent = {r["process"] for r in rows if "task" not in r}
    assert (42, 40) == (len(rows), len(tasks))
    assert {(t, s) for t in range(8) for s in range(5)} == {
        (int(r["task"]), int(r["step"])) for r in tasks
    }
    assert 1 == len(parent)
    assert parent.isdisjoint({r["process"] for r in tasks})


def test_asyncio_service(server: FakeVictoriaLogs) -> None:
    """Each of 10 concurrent requests has its two records under its own request id."""
    result, _ = run_example("asyncio_service", "--url", server.url)
    assert "handled 10 requests\n" == result.stdout
    per_request = collections.Counter(r["request_id"] for r in rows_of(server, "example-asyncio"))
    assert {f"req-{i:03d}": 2 for i in range(10)} == dict(per_request)


@pytest.mark.skipif(not HAS_FASTAPI, reason="fastapi is not installed")
def test_fastapi_middleware(server: FakeVictoriaLogs) -> None:
    """Both the endpoint's and the middleware's records carry the request fields."""
    run_example("fastapi_middleware", "--url", server.url)
    rows = rows_of(server, "example-fastapi")
    assert 6 == len(rows)
    fields = {(r["request_id"], r["method"], r["path"], r["client"]) for r in rows}
    assert {(f"req-{i}", "GET", f"/items/{i}", "127.0.0.1") for i in range(3)} == fields


@pytest.mark.skipif(HAS_FASTAPI, reason="fastapi is installed: the example runs for real")
def test_fastapi_middleware_without_fastapi_says_so(server: FakeVictoriaLogs) -> None:
    """Without fastapi the example explains what to install and exits 0."""
    result, _ = run_example("fastapi_middleware", "--url", server.url)
    assert "this example needs FastAPI: pip install fastapi\n" == result.stdout
    assert 0 == server.count()


def test_stdlib_intercept(server: FakeVictoriaLogs) -> None:
    """stdlib records arrive through loguru with their logger name; the sink's traffic does not."""
    run_example("stdlib_intercept", "--url", server.url)
    rows = rows_of(server, "example-stdlib")
    assert 4 == server.count()  # nothing else, e.g. no urllib3 debug records
    from_stdlib = [r for r in rows if r.get("stdlib_logger") == "app.payments"]
    assert 3 == len(from_stdlib)
    (failed,) = [r for r in rows if r["_msg"] == "charge failed"]
    assert ("ERROR", "TimeoutError") == (failed["level"], failed["exception.type"])


def test_stdlib_handler(server: FakeVictoriaLogs) -> None:
    """dictConfig with VLogsHandler: the two records at or above its level, with their fields."""
    result, _ = run_example("stdlib_handler", "--url", server.url)
    assert result.stdout.endswith("sent 2 records, dropped 0\n")
    rows = {r["_msg"]: r for r in rows_of(server, "example-stdlib-handler")}
    assert {"order 1017 paid", "payment failed"} == set(rows)
    assert ("42", "app.orders", "dev") == (
        rows["order 1017 paid"]["user_id"],
        rows["order 1017 paid"]["logger"],
        rows["order 1017 paid"]["env"],
    )
    failed = rows["payment failed"]
    assert ("KeyError", "req-7f3a") == (failed["exception.type"], failed["request_id"])


def test_cluster_spreads_over_every_endpoint(server: FakeVictoriaLogs) -> None:
    """50 records over two endpoints: all arrive, each endpoint got some."""
    with FakeVictoriaLogs() as other:
        result, _ = run_example("cluster", "--url", f"{server.url},{other.url}")
        counts = (server.count(), other.count())
    assert result.stdout.startswith("2 endpoints: sent 50 records in ")
    assert 50 == sum(counts)
    assert min(counts) > 0


def test_spool_keeps_records_across_an_outage(server: FakeVictoriaLogs, tmp_path: Path) -> None:
    """Run with the server down (records spooled), then up: both runs' 10 records arrive."""
    spool_dir = str(tmp_path / "spool")
    down, _ = run_example("spool", "--url", closed_port_url(), "--spool-dir", spool_dir)
    assert f"sent 0 records (0 of them from the spool), 10 waiting in {spool_dir}\n" == down.stdout
    assert 0 == server.count()
    up, _ = run_example("spool", "--url", server.url, "--spool-dir", spool_dir)
    assert f"sent 20 records (10 of them from the spool), 0 waiting in {spool_dir}\n" == up.stdout
    per_run = collections.Counter(r["pid"] for r in rows_of(server, "example-spool"))
    assert [10, 10] == sorted(per_run.values())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_gunicorn_style_forked_workers(server: FakeVictoriaLogs) -> None:
    """3 forked workers x 5 lines, each from its own process, plus the master's line."""
    run_example("gunicorn_style", "--url", server.url, "--workers", "3")
    rows = rows_of(server, "example-prefork")
    workers = [r for r in rows if "worker" in r]
    assert (16, 15) == (len(rows), len(workers))
    assert 3 == len({r["process"] for r in workers})
    assert {"0": 5, "1": 5, "2": 5} == dict(collections.Counter(r["worker"] for r in workers))


def test_the_api_reference_builds_without_warnings(tmp_path: Path) -> None:
    """docs/build_api.py renders the public modules with pdoc; any warning would fail it."""
    pytest.importorskip("pdoc")
    spec = importlib.util.spec_from_file_location("build_api", ROOT / "docs" / "build_api.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pages = module.build(tmp_path)
    expected = {"index.html", "loguru_vlogs.html", "loguru_vlogs/testing.html"}
    assert expected == {p.relative_to(tmp_path).as_posix() for p in pages}
    sink_page = (tmp_path / "loguru_vlogs.html").read_text(encoding="utf-8")
    assert "VLogsSink" in sink_page
    assert "FakeVictoriaLogs" in (tmp_path / "loguru_vlogs" / "testing.html").read_text("utf-8")
