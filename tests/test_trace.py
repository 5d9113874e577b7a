"""Trace correlation: the ids of the span active at the logging call, in its thread or asyncio
task, reach the record (loguru directly, enqueue=True through trace_patcher); the record's own
ids win; trace_context=False never looks; without OpenTelemetry nothing is imported per record."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsSink, trace_patcher
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import subprocess_env

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
tracer = sdk_trace.TracerProvider().get_tracer("loguru-vlogs tests")


def ids(span: Any) -> tuple[str, str]:
    """A span's trace and span ids as the records carry them."""
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def by_message(server: FakeVictoriaLogs) -> dict[str, dict[str, str]]:
    return {row["_msg"]: row for row in server.rows()}


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as fake:
        yield fake


@pytest.fixture
def server(shared_server: FakeVictoriaLogs) -> FakeVictoriaLogs:
    """One receiver for the module (stopping one costs 50 ms), emptied for each test."""
    shared_server.clear()
    shared_server.clear_faults()
    return shared_server


@pytest.fixture(params=["direct", "enqueue"])
def enqueue(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Two ways in: the sink reads the span itself in write() (direct), or loguru's queue
    thread calls write() and trace_patcher took the ids at the call (enqueue=True)."""
    if request.param == "direct":
        yield False
        return
    logger.configure(patcher=trace_patcher)
    yield True
    logger.configure(patcher=lambda _record: None)


def quiet(url: str, **kwargs: Any) -> VLogsSink:
    return VLogsSink(url, flush_interval=0.01, warn_interval=3600.0, **kwargs)


def test_a_record_in_a_span_carries_its_ids(server: FakeVictoriaLogs) -> None:
    """Without enqueue, the sink reads the span itself: trace_id (32 hex), span_id (16 hex),
    trace_flags; a record outside any span has none of them."""
    logger.add(quiet(server.url))
    with tracer.start_as_current_span("request") as span:
        logger.info("inside")
    logger.info("outside")
    logger.complete()
    rows = by_message(server)
    assert ids(span) == (rows["inside"]["trace_id"], rows["inside"]["span_id"])
    assert str(int(span.get_span_context().trace_flags)) == rows["inside"]["trace_flags"]
    assert not {"trace_id", "span_id", "trace_flags"} & set(rows["outside"])


def test_the_records_own_ids_are_never_overwritten(server: FakeVictoriaLogs) -> None:
    """A bound trace_id / span_id wins over the span's; the missing one is still added."""
    logger.add(quiet(server.url))
    with tracer.start_as_current_span("request") as span:
        logger.bind(trace_id="mine").info("own trace")
        logger.bind(span_id="own-span", trace_id="t").info("own both")
    logger.complete()
    rows = by_message(server)
    assert ("mine", ids(span)[1]) == (rows["own trace"]["trace_id"], rows["own trace"]["span_id"])
    assert ("t", "own-span") == (rows["own both"]["trace_id"], rows["own both"]["span_id"])


def test_trace_context_false_never_looks(server: FakeVictoriaLogs) -> None:
    """trace_context=False: no trace fields, span or not."""
    logger.add(quiet(server.url, trace_context=False))
    with tracer.start_as_current_span("request"):
        logger.info("inside")
    logger.complete()
    assert "trace_id" not in by_message(server)["inside"]


def test_threads_each_carry_their_own_spans_ids(server: FakeVictoriaLogs, enqueue: bool) -> None:
    """Four threads log inside their own spans, interleaved: each record has its thread's
    ids, also when loguru's queue thread calls the sink (enqueue=True, trace_patcher)."""
    logger.add(quiet(server.url), enqueue=enqueue)
    expected: dict[str, tuple[str, str]] = {}
    barrier = threading.Barrier(4)

    def work(k: int) -> None:
        with tracer.start_as_current_span(f"job-{k}") as span:
            expected[f"t{k}"] = ids(span)
            barrier.wait()
            for i in range(5):
                logger.info("t{}-{}", k, i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logger.complete()
    rows = server.rows()
    assert 20 == len(rows)
    for row in rows:
        assert expected[row["_msg"].split("-")[0]] == (row["trace_id"], row["span_id"])


def test_asyncio_tasks_each_carry_their_own_spans_ids(
    server: FakeVictoriaLogs, enqueue: bool
) -> None:
    """Concurrent tasks of one thread, each in its own span, switching at every await: each
    record has its task's ids."""
    logger.add(quiet(server.url), enqueue=enqueue)
    expected: dict[str, tuple[str, str]] = {}

    async def handle(k: int) -> None:
        with tracer.start_as_current_span(f"request-{k}") as span:
            expected[f"r{k}"] = ids(span)
            for i in range(5):
                logger.info("r{}-{}", k, i)
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(handle(k) for k in range(4)))

    asyncio.run(main())
    logger.complete()
    rows = server.rows()
    assert 20 == len(rows)
    for row in rows:
        assert expected[row["_msg"].split("-")[0]] == (row["trace_id"], row["span_id"])


def test_enqueue_without_the_patcher_sees_no_span(server: FakeVictoriaLogs) -> None:
    """Why enqueue=True needs trace_patcher: loguru's queue thread, where write() runs, has
    no active span."""
    logger.add(quiet(server.url), enqueue=True)
    with tracer.start_as_current_span("request"):
        logger.info("inside")
    logger.complete()
    assert "trace_id" not in by_message(server)["inside"]


def test_the_patcher_keeps_the_records_own_ids() -> None:
    """trace_patcher adds what is missing and leaves a bound id alone."""
    record: dict[str, Any] = {"extra": {"trace_id": "mine"}}
    with tracer.start_as_current_span("request") as span:
        trace_patcher(record)
    flags = int(span.get_span_context().trace_flags)
    assert {"trace_id": "mine", "span_id": ids(span)[1], "trace_flags": flags} == record["extra"]
    outside: dict[str, Any] = {"extra": {}}
    trace_patcher(outside)
    assert {} == outside["extra"]


@pytest.mark.subprocess
def test_without_opentelemetry_nothing_is_looked_up_per_record(server: FakeVictoriaLogs) -> None:
    """OpenTelemetry not importable: the first sink tries the import once; 1000 records and the
    patcher try nothing more, and carry no trace field."""
    code = textwrap.dedent(
        f"""
        import sys
        attempts = []

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "opentelemetry":
                    attempts.append(name)
                    raise ImportError("blocked")

        sys.meta_path.insert(0, Blocker())
        from loguru import logger
        from loguru_vlogs import VLogsSink, trace_patcher
        assert [] == attempts  # importing the package looks for nothing
        logger.remove()
        logger.configure(patcher=trace_patcher)
        sink = VLogsSink({server.url!r})
        logger.add(sink)
        assert 1 == len(attempts), attempts
        for i in range(1000):
            logger.info("r{{}}", i)
        logger.complete()
        assert 1 == len(attempts), attempts
        assert 1000 == sink.stats()["sent"]
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert not any("trace_id" in row for row in server.rows())
