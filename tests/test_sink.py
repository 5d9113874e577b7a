"""The sink inside loguru: write/stop/complete protocol, wire format, stats, recursion guard."""

from __future__ import annotations

import asyncio
import inspect
import logging
import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import orjson
import pytest
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs._http import Urllib3Transport
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import FakeTransport, closed_port_url, wait_for
from .proc_scripts.run import InterceptHandler


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as srv:
        yield srv


def quiet_sink(url: str, **kwargs: Any) -> VLogsSink:
    """A sink that only sends when asked: nothing leaves before complete()/remove()."""
    kwargs.setdefault("flush_interval", 60.0)
    return VLogsSink(url, **kwargs)


def test_complete_is_a_coroutine_function_for_loguru() -> None:
    """Loguru calls complete() only if inspect says it is a coroutine function."""
    sink = quiet_sink(closed_port_url())
    assert inspect.iscoroutinefunction(sink.complete)


def test_sync_complete_means_delivered(server: FakeVictoriaLogs) -> None:
    """After a plain logger.complete() every earlier record is stored."""
    logger.add(quiet_sink(server.url))
    for i in range(25):
        logger.info("record {}", i)
    logger.complete()
    assert 25 == server.count()


def test_awaited_complete_means_delivered(server: FakeVictoriaLogs) -> None:
    """`await logger.complete()` inside asyncio also waits for delivery."""
    logger.add(quiet_sink(server.url))

    async def main() -> int:
        async def task(n: int) -> None:
            with logger.contextualize(task=n):
                logger.info("from task")
                await asyncio.sleep(0)

        await asyncio.gather(*(task(n) for n in range(20)))
        await logger.complete()
        return server.count()

    assert 20 == asyncio.run(main())
    assert list(range(20)) == sorted(int(r["task"]) for r in server.rows())


def test_remove_flushes_what_is_buffered(server: FakeVictoriaLogs) -> None:
    """logger.remove() sends the buffer before returning."""
    handler = logger.add(quiet_sink(server.url))
    for i in range(10):
        logger.info("record {}", i)
    logger.remove(handler)
    assert 10 == server.count()


def test_close_flushes_and_reports(server: FakeVictoriaLogs) -> None:
    """close() delivers and returns True when nothing was left behind."""
    sink = quiet_sink(server.url)
    logger.add(sink)
    logger.info("one")
    assert sink.close(timeout=5)
    assert 1 == server.count()


def test_drain_waits_for_delivery(server: FakeVictoriaLogs) -> None:
    """drain() returns True once everything written before it is stored."""
    sink = quiet_sink(server.url)
    logger.add(sink)
    for _ in range(3):
        logger.info("x")
    assert sink.drain(timeout=5)
    assert 3 == server.count()


def test_records_flow_without_complete_after_flush_interval(server: FakeVictoriaLogs) -> None:
    """The worker sends on its own after flush_interval."""
    logger.add(VLogsSink(server.url, flush_interval=0.05))
    logger.info("hello")
    assert wait_for(lambda: server.count() == 1, timeout=5)


def test_the_request_carries_the_documented_wire_format(server: FakeVictoriaLogs) -> None:
    """POST /insert/jsonline, stream+json, gzip, _stream_fields, tenant and auth headers."""
    sink = quiet_sink(
        server.url, account_id=5, project_id=6, bearer_token="tkn", headers={"X-Team": "core"}
    )
    logger.add(sink)
    logger.info("wire")
    logger.complete()
    assert wait_for(lambda: server.requests)
    request = server.requests[-1]
    assert "POST" == request.method
    assert "/insert/jsonline" == request.path
    assert {"_stream_fields": "service,host"} == request.params
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert "application/stream+json" == headers["content-type"]
    assert "gzip" == headers["content-encoding"]
    assert ("5", "6") == (headers["accountid"], headers["projectid"])
    assert "Bearer tkn" == headers["authorization"]
    assert "core" == headers["x-team"]
    assert headers["user-agent"].startswith("loguru-vlogs/")
    assert 1 == server.count(account_id=5, project_id=6)
    assert 0 == server.count()


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_every_compression_arrives(server: FakeVictoriaLogs, compression: str) -> None:
    """gzip, zstd and no compression all store the same row."""
    sink = quiet_sink(server.url, compression=compression)
    logger.add(sink)
    logger.info("compressed {}", compression)
    logger.complete()
    assert [f"compressed {compression}"] == [r["_msg"] for r in server.rows()]
    stats = sink.stats()
    encoding = server.requests[-1].headers.get("Content-Encoding")
    assert {"gzip": "gzip", "zstd": "zstd", "none": None}[compression] == encoding
    if compression == "none":
        assert stats["bytes_sent"] == stats["bytes_raw"]
    else:
        assert stats["bytes_sent"] < stats["bytes_raw"]


def test_url_with_a_path_prefix_and_credentials(server: FakeVictoriaLogs) -> None:
    """A base URL behind a proxy prefix is honoured; URL credentials become basic auth."""
    # The fake serves only at the root, so the prefix is observed as the request path.
    url = server.url.replace("http://", "http://user:pa%3Ass@") + "/vlogs"
    # (the fake answers 400 "unsupported path", as VictoriaLogs: retried until remove())
    sink = quiet_sink(url, timeout=2, shutdown_timeout=0.1)
    logger.add(sink)
    logger.info("x")
    logger.complete()
    request = server.requests[-1]
    assert "/vlogs/insert/jsonline" == request.path
    assert "Basic dXNlcjpwYTpzcw==" == request.headers["Authorization"]
    assert "pa:ss" not in repr(sink)
    assert "pa%3Ass" not in str(sink.stats())


def test_complete_returns_promptly_when_the_server_is_down() -> None:
    """With nobody listening, complete() returns after the failed attempt; records stay buffered."""
    sink = quiet_sink(closed_port_url(), timeout=1.0, shutdown_timeout=0.2)
    logger.add(sink)
    for _ in range(5):
        logger.info("lost?")
    started = time.monotonic()
    logger.complete()
    assert time.monotonic() - started < 1.0 + 5.0  # one failed attempt (timeout), no retrying
    stats = sink.stats()
    assert stats["failed_requests"] >= 1
    assert 5 == stats["buffered"] + stats["in_flight"]
    assert "Connection" in stats["last_error"] or "refused" in stats["last_error"].lower()


@pytest.mark.slow
def test_remove_with_the_server_down_is_bounded_and_says_so(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """remove() gives up after shutdown_timeout and reports the undelivered count on stderr."""
    sink = quiet_sink(closed_port_url(), shutdown_timeout=2.0, timeout=0.5)
    handler = logger.add(sink)
    for _ in range(7):
        logger.info("x")
    started = time.monotonic()
    logger.remove(handler)
    assert time.monotonic() - started < 2.0 + 1.5  # one budget: a second wait would pass it
    assert {"shutdown": 7} == sink.stats()["dropped"]
    err = capfd.readouterr().err
    assert "loguru-vlogs: 7 records could not be delivered" in err


def test_stats_account_for_every_record(server: FakeVictoriaLogs) -> None:
    """received == sent + dropped + buffered + in flight, with drops by reason."""
    sink = quiet_sink(server.url, buffer_size=10, batch_size=10)
    logger.add(sink)
    for i in range(2500):
        logger.info("r{}", i)
    logger.complete()
    stats = sink.stats()
    assert 2500 == stats["received"]
    assert {"buffer_full"} == set(stats["dropped"])
    assert stats["sent"] == server.count()
    assert 2500 == stats["sent"] + stats["dropped_total"]
    assert (0, 0) == (stats["buffered"], stats["in_flight"])
    assert stats["bytes_sent"] < stats["bytes_raw"]


def test_write_never_raises_and_counts_what_it_cannot_encode() -> None:
    """A failing encoder is counted as encode_error instead of raising into the caller."""
    sink = quiet_sink(closed_port_url())

    class Broken:
        def encode(self, record: Any, text: Any = None) -> bytes:
            raise RuntimeError("boom")

        repairs: ClassVar[dict[str, int]] = {}

    sink._encoder = Broken()  # type: ignore[assignment]
    logger.add(sink, catch=False)
    logger.info("x")
    assert {"encode_error": 1} == sink.stats()["dropped"]


def test_sink_is_callable_and_accepts_a_plain_string(server: FakeVictoriaLogs) -> None:
    """sink("text") works like write() even outside loguru."""
    sink = quiet_sink(server.url)
    sink("plain text\n")
    assert sink.drain(timeout=5)
    assert ["plain text"] == [r["_msg"] for r in server.rows()]


def test_pickled_sink_keeps_its_configuration_only() -> None:
    """A pickled sink (spawn) carries the settings, resolved service and host, no state."""
    sink = quiet_sink("http://u:p@127.0.0.1:9", fields={"env": "prod"})
    copy = pickle.loads(pickle.dumps(sink))
    assert sink.settings == copy.settings
    assert ({"env": "prod"}, ("u", "p")) == (
        copy.settings.fields,
        copy.settings.endpoints[0].basic_auth,
    )
    assert 0 == copy.stats()["received"]


@pytest.fixture
def intercepted() -> Iterator[None]:
    root = logging.getLogger()
    old = (root.handlers[:], root.level)
    root.handlers = [InterceptHandler()]
    root.setLevel(logging.NOTSET)
    yield
    root.handlers, level = old
    root.setLevel(level)


@pytest.mark.usefixtures("intercepted")
def test_own_http_traffic_never_comes_back_through_loguru(server: FakeVictoriaLogs) -> None:
    """With stdlib logging routed into loguru, urllib3's records from the worker are not shipped."""
    seen: list[str] = []
    logger.add(lambda m: seen.append(m.record["name"] or ""), level="DEBUG")
    sink = quiet_sink(server.url)
    logger.add(sink, level="DEBUG")
    logging.getLogger("app").info("from stdlib")
    for _ in range(3):
        logger.info("from loguru")
        logger.complete()
    assert 4 == server.count()
    assert not [name for name in seen if name.startswith("urllib3")]
    assert not [r for r in server.rows() if r.get("logger", "").startswith("urllib3")]


@pytest.mark.usefixtures("intercepted")
def test_a_failing_server_with_intercepted_logging_neither_deadlocks_nor_storms(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """complete() under loguru's lock with a dead server returns; stderr gets few lines."""
    sink = quiet_sink(closed_port_url(), timeout=0.5, warn_interval=60, shutdown_timeout=0.2)
    logger.add(sink, level="DEBUG")
    started = time.monotonic()
    for _ in range(20):
        logger.info("x")
        logger.complete()
    assert time.monotonic() - started < 10
    lines = [
        line for line in capfd.readouterr().err.splitlines() if line.startswith("loguru-vlogs:")
    ]
    assert 1 <= len(lines) <= 2


def test_records_written_on_the_worker_thread_are_refused_and_counted(
    server: FakeVictoriaLogs,
) -> None:
    """The recursion guard: a record made on the sink's own worker thread is dropped, counted."""
    sink = quiet_sink(server.url)
    real = Urllib3Transport(sink.settings)

    class Recursing:
        def send(self, *args: Any) -> Any:
            sink.write("from the worker")  # e.g. a library logging while we send
            return real.send(*args)

        def close(self) -> None:
            real.close()

    sink._engine.worker._transport_factory = Recursing
    sink("hello")
    assert sink.drain(timeout=5)
    assert {"recursion": 1} == sink.stats()["dropped"]
    assert ["hello"] == [r["_msg"] for r in server.rows()]


def test_lines_are_valid_json_with_the_schema(server: FakeVictoriaLogs) -> None:
    """What the sink puts on the wire decodes to the documented top-level keys."""
    logger.add(quiet_sink(server.url, service="svc", host="h1", fields={"env": "prod"}))
    logger.bind(user_id=42).info("order {} paid", 1017, amount=12.5)
    logger.complete()
    body = server.requests[-1].body
    obj = orjson.loads(body.strip())
    assert "order 1017 paid" == obj["_msg"]
    assert ("svc", "h1", "prod", 42, 12.5) == (
        obj["service"],
        obj["host"],
        obj["env"],
        obj["user_id"],
        obj["amount"],
    )
    assert {
        "_msg",
        "_time",
        "level",
        "level_no",
        "logger",
        "module",
        "function",
        "line",
        "file",
    } <= set(obj)


def test_a_thread_reusing_a_stopped_workers_id_is_not_refused(server: FakeVictoriaLogs) -> None:
    """Thread ids are reused: after close() ended the worker, a new thread that happens to get
    its id (loguru's enqueue thread after a remove()/add(), say) writes as any thread does."""
    sink = quiet_sink(server.url)
    sink.write("first")
    assert sink.drain(timeout=5)
    old_ident = sink._engine.worker.ident
    sink.close()
    assert wait_for(lambda: old_ident not in {t.ident for t in threading.enumerate()}, timeout=5)
    try:
        for _attempt in range(100):
            thread = threading.Thread(target=lambda: sink.write("from a reused id"))
            thread.start()
            reused = thread.ident == old_ident
            thread.join()
            if reused:
                break
        else:
            pytest.skip("no thread got the stopped worker's id")
        assert sink.drain(timeout=5)
        assert {} == sink.stats()["dropped"]
        assert "from a reused id" in [r["_msg"] for r in server.rows()]
    finally:
        # Skipped or not, the records go out while the server is up (left behind, the exit
        # flush would wait shutdown_timeout for a server gone and report them lost).
        assert sink.close(timeout=5)


@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_the_format_given_to_loguru_changes_no_row(enqueue: bool) -> None:
    """README recommends ``format="{message}"`` (it spares loguru its default format): every
    line, exceptions included, is the same as with loguru's default format, also with
    ``enqueue=True``, where the traceback is read back from loguru's formatted text."""
    transports = {"default": FakeTransport(), "message": FakeTransport()}
    sinks = {}
    for name, transport in transports.items():
        sink = quiet_sink("http://127.0.0.1:9", flush_interval=0.01)
        sink._engine.worker._transport_factory = lambda transport=transport: transport
        sinks[name] = sink
    logger.add(sinks["default"], enqueue=enqueue)
    logger.add(sinks["message"], enqueue=enqueue, format="{message}")
    log = logger.bind(user_id=42, path="/api/orders")
    log.info("order {} paid", 1017, amount=12.5)  # noqa: PLE1205 - loguru {} style
    log.warning("with {braces} and a | pipe", braces="{}")
    try:
        raise ValueError("card declined")
    except ValueError:
        log.exception("payment failed for order {}", 1018)  # noqa: PLE1205 - loguru {} style
    log.opt(exception=RuntimeError("no traceback")).error("a bare exception")
    logger.complete()
    for sink in sinks.values():
        assert sink.drain(timeout=5)
    default, message = (transports[name].lines() for name in ("default", "message"))
    assert len(default) == 4
    assert default == message
    rows = [orjson.loads(line) for line in default]
    assert rows[2]["exception.type"] == "ValueError"
    assert 'raise ValueError("card declined")' in rows[2]["exception.traceback"]
    assert rows[3]["exception.value"] == "no traceback"
