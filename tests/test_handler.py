"""VLogsHandler: stdlib logging through the same engine, in the same schema as VLogsSink."""

from __future__ import annotations

import logging
import pickle
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from loguru_vlogs import VLogsHandler, VLogsSink
from loguru_vlogs._http import Urllib3Transport
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import closed_port_url

SERVER_FIELDS = {"_time", "_stream", "_stream_id"}


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


@pytest.fixture
def std() -> Iterator[logging.Logger]:
    """A stdlib logger of this module's name, no propagation, no handlers, left clean."""
    log = logging.getLogger(__name__)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    log.propagate = True
    log.setLevel(logging.NOTSET)


def make_chatty(handler: VLogsHandler) -> None:
    """The handler's transport logs through stdlib logging on every send, on the worker
    thread (as urllib3 does at DEBUG)."""
    real = Urllib3Transport(handler.settings)

    class Chatty:
        def send(self, *args: Any) -> Any:
            logging.getLogger("library").warning("sending a batch")
            return real.send(*args)

        def close(self) -> None:
            real.close()

    handler._engine.worker._transport_factory = Chatty


def quiet_handler(url: str, **kwargs: Any) -> VLogsHandler:
    options: dict[str, Any] = {"flush_interval": 0.01, "warn_interval": 3600.0, **kwargs}
    return VLogsHandler(url, **options)


def rows_by_message(server: FakeVictoriaLogs) -> dict[str, dict[str, str]]:
    return {row["_msg"]: row for row in server.rows()}


def test_a_record_becomes_a_row_with_the_documented_fields(
    server: FakeVictoriaLogs, std: logging.Logger
) -> None:
    """_msg is getMessage(); every LogRecord attribute has its schema name; extra= keys are
    fields; service, host and static fields as with the sink."""
    handler = quiet_handler(server.url, service="shop", host="h1", fields={"env": "prod"})
    std.addHandler(handler)
    std.info("order %s paid", 1017, extra={"user_id": 42, "amount": 12.5})
    handler.flush()
    row = server.rows()[0]
    line = sys._getframe().f_lineno - 3
    assert {
        "_msg": "order 1017 paid",
        "level": "INFO",
        "level_no": "20",
        "logger": __name__,
        "module": "test_handler",
        "function": "test_a_record_becomes_a_row_with_the_documented_fields",
        "line": str(line),
        "file": __file__,
        "process_name": "MainProcess",
        "thread_name": threading.current_thread().name,
        "service": "shop",
        "host": "h1",
        "env": "prod",
        "user_id": "42",
        "amount": "12.5",
    }.items() <= row.items()
    assert str(threading.get_ident()) == row["thread"]
    assert float(row["elapsed"]) > 0
    assert {"process", "elapsed"} <= set(row)


def test_exc_info_and_stack_info_become_fields(
    server: FakeVictoriaLogs, std: logging.Logger
) -> None:
    """logger.exception(): exception.type/.value/.traceback; stack_info=True: stack_info."""
    handler = quiet_handler(server.url)
    std.addHandler(handler)
    try:
        {}["missing"]
    except KeyError:
        std.exception("lookup failed")
    std.warning("where am I", stack_info=True)
    handler.flush()
    rows = rows_by_message(server)
    failed = rows["lookup failed"]
    assert ("KeyError", "'missing'", "ERROR") == (
        failed["exception.type"],
        failed["exception.value"],
        failed["level"],
    )
    assert failed["exception.traceback"].startswith("Traceback (most recent call last):")
    assert failed["exception.traceback"].endswith("KeyError: 'missing'")
    assert "lookup failed" == failed["_msg"]  # no traceback in the message
    stack = rows["where am I"]["stack_info"]
    assert stack.startswith("Stack (most recent call last):")
    assert "test_exc_info_and_stack_info_become_fields" in stack


def test_task_name_where_the_record_has_one(server: FakeVictoriaLogs) -> None:
    """taskName (Python 3.12+ sets it inside asyncio tasks) becomes task_name; absent without."""
    handler = quiet_handler(server.url)
    handler.handle(logging.makeLogRecord({"msg": "in a task", "taskName": "Task-7"}))
    handler.handle(logging.makeLogRecord({"msg": "no task", "taskName": None}))
    handler.flush()
    rows = rows_by_message(server)
    assert "Task-7" == rows["in a task"]["task_name"]
    assert "task_name" not in rows["no task"]
    handler.close()


def test_extras_follow_the_loguru_extras_rules(
    server: FakeVictoriaLogs, std: logging.Logger
) -> None:
    """A built-in name goes to extra.<name>, mappings are flattened, None is "null", other
    values rendered as documented; the repairs are counted."""
    handler = quiet_handler(server.url)
    std.addHandler(handler)
    std.info(
        "extras",
        extra={"level": "mine", "user": {"id": 7, "tags": ["a", "b"]}, "none": None, "b": b"\xff"},
    )
    handler.flush()
    row = server.rows()[0]
    assert ("INFO", "mine") == (row["level"], row["extra.level"])
    assert ("7", '["a","b"]') == (row["user.id"], row["user.tags"])
    assert ("null", "\\xff") == (row["none"], row["b"])
    assert {"extra_renamed": 1, "value_converted": 1} == handler.stats()["repairs"]


def test_the_same_data_gives_the_same_row_as_the_sink(
    server: FakeVictoriaLogs, std: logging.Logger
) -> None:
    """The same message, extras, exception and static fields through VLogsSink (loguru) and
    VLogsHandler (logging), logged from the same function: the same field names, and the same
    values but for the line, the time and the elapsed seconds."""
    options: dict[str, Any] = {"service": "shop", "fields": {"env": "prod"}}
    logger.add(VLogsSink(server.url, flush_interval=0.01, **options), format="{message}")
    handler = quiet_handler(server.url, **options)
    std.addHandler(handler)
    extra = {"user_id": 42, "amount": 12.5, "ok": True, "tags": ["a"], "who": {"id": 7}}
    error = ValueError("card declined")
    try:
        raise error
    except ValueError:
        logger.bind(front="sink", **extra).opt(exception=True).error("order 1017 failed")
        std.error("order 1017 failed", exc_info=True, extra={"front": "handler", **extra})
    logger.bind(front="sink", **extra).info("plain")
    std.info("plain", extra={"front": "handler", **extra})
    logger.complete()
    handler.flush()
    rows = {(row["front"], row["_msg"]): row for row in server.rows()}
    assert 4 == len(rows)
    for message in ("order 1017 failed", "plain"):
        sink_row, handler_row = rows["sink", message], rows["handler", message]
        assert set(sink_row) == set(handler_row)
        differ = {"line", "_time", "elapsed", "front"}
        assert {k: v for k, v in sink_row.items() if k not in differ} == {
            k: v for k, v in handler_row.items() if k not in differ
        }
    assert "ValueError" == rows["handler", "order 1017 failed"]["exception.type"]


def test_a_formatter_is_used_for_msg_only_when_one_is_set(
    server: FakeVictoriaLogs, std: logging.Logger
) -> None:
    """The handler starts with the message alone; setFormatter() (or dictConfig's
    "formatter") makes _msg the formatter's text."""
    handler = quiet_handler(server.url)
    std.addHandler(handler)
    std.info("bare %d", 1)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    std.info("formatted %d", 2)
    handler.flush()
    assert ["bare 1", "[INFO] formatted 2"] == [row["_msg"] for row in server.rows()]


def test_basic_config_leaves_the_message_alone(server: FakeVictoriaLogs) -> None:
    """logging.basicConfig(handlers=[...], format=...) gives its console format to handlers
    without a formatter: not to this one, whose _msg stays the message."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    handler = quiet_handler(server.url)
    try:
        logging.basicConfig(
            handlers=[handler], level=logging.INFO, format="%(asctime)s %(message)s", force=True
        )
        logging.getLogger("app").info("hello %s", "there")
        handler.flush()
        assert ["hello there"] == [row["_msg"] for row in server.rows()]
        assert "app" == server.rows()[0]["logger"]
    finally:
        root.removeHandler(handler)
        handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_flush_means_delivered_and_is_bounded(
    std: logging.Logger, server: FakeVictoriaLogs
) -> None:
    """flush() returns once the server has the records; with the server away it returns at
    the first failed attempt, the records kept for retry."""
    handler = quiet_handler(server.url, flush_interval=60.0)
    std.addHandler(handler)
    for i in range(5):
        std.info("r%d", i)
    handler.flush()
    assert 5 == server.count()
    away = quiet_handler(closed_port_url(), flush_interval=60.0, timeout=0.5, shutdown_timeout=0.1)
    std.addHandler(away)
    std.info("kept")
    handler.flush()
    away.flush()
    assert 1 == away.stats()["buffered"] + away.stats()["in_flight"]
    away.close()


def test_records_made_on_the_worker_thread_are_never_shipped(
    server: FakeVictoriaLogs,
) -> None:
    """A library logging on the worker thread while it sends (here: to the root logger the
    handler is on), and urllib3's debug records: not shipped, counted as recursion, no
    deadlock with flush()."""
    root = logging.getLogger()
    saved = root.level
    handler = quiet_handler(server.url)
    make_chatty(handler)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        logging.getLogger("app").info("hello")
        handler.flush()
        logging.getLogger("app").info("again")
        handler.flush()
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
    assert ["hello", "again"] == [row["_msg"] for row in server.rows()]
    assert 2 == handler.stats()["dropped"]["recursion"]
    handler.close()


def test_urllib3_records_of_the_worker_never_reach_the_handler(server: FakeVictoriaLogs) -> None:
    """urllib3 logs at DEBUG on every connection it opens: those of the worker thread are
    filtered before any handler (so they are not even counted)."""
    root = logging.getLogger()
    saved = root.level
    handler = quiet_handler(server.url)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        logging.getLogger("app").info("hello")
        handler.flush()
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
    assert ["app"] == [row["logger"] for row in server.rows()]
    assert {} == handler.stats()["dropped"]
    handler.close()


def test_close_sends_what_is_left_then_a_record_restarts_it(
    server: FakeVictoriaLogs, std: logging.Logger
) -> None:
    """close() delivers within shutdown_timeout; emitting afterwards starts the worker again."""
    handler = quiet_handler(server.url, flush_interval=60.0)
    std.addHandler(handler)
    std.info("before close")
    handler.close()
    assert 1 == server.count()
    std.info("after close")
    assert handler.drain(timeout=5)
    assert 2 == server.count()


def test_from_env_and_repr(monkeypatch: pytest.MonkeyPatch, server: FakeVictoriaLogs) -> None:
    """VLOGS_* variables configure the handler, explicit arguments (level too) win; the repr
    names the URL without credentials and the level."""
    monkeypatch.setenv("VLOGS_URL", server.url.replace("http://", "http://u:secret@"))
    monkeypatch.setenv("VLOGS_BATCH_SIZE", "7")
    monkeypatch.setenv("VLOGS_SERVICE", "from-env")
    handler = VLogsHandler.from_env(service="explicit", level="WARNING")
    try:
        assert (7, "explicit", logging.WARNING) == (
            handler.settings.batch_size,
            handler.settings.service,
            handler.level,
        )
        assert "secret" not in repr(handler)
        assert f"<VLogsHandler url={server.url!r} service='explicit' (WARNING)>" == repr(handler)
    finally:
        handler.close()
    monkeypatch.setenv("VLOGS_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match=r"^Invalid VLOGS_BATCH_SIZE: it should be >= 1"):
        VLogsHandler.from_env()


def test_a_wrong_option_raises_and_registers_nothing() -> None:
    """Options are checked by the same table as the sink's, before logging knows the handler."""
    before = len(logging._handlerList)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"^Invalid batch_size: it should be >= 1, not: 0$"):
        VLogsHandler("http://127.0.0.1:9", batch_size=0)
    assert before == len(logging._handlerList)  # type: ignore[attr-defined]


def test_a_pickled_handler_is_rebuilt_from_its_configuration(server: FakeVictoriaLogs) -> None:
    """Pickling carries the options, the level and a formatter the user set."""
    handler = quiet_handler(server.url, service="svc", level=logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s!"))
    copy = pickle.loads(pickle.dumps(handler))
    try:
        assert (handler.settings, logging.INFO) == (copy.settings, copy.level)
        copy.handle(logging.makeLogRecord({"msg": "hi"}))
        copy.flush()
        assert ["hi!"] == [row["_msg"] for row in server.rows()]
    finally:
        handler.close()
        copy.close()


def test_on_drop_and_stats_work_as_for_the_sink(std: logging.Logger) -> None:
    """The engine is the sink's: drops counted by reason and told to on_drop."""
    told: list[tuple[str, int]] = []
    handler = quiet_handler(
        closed_port_url(),
        buffer_size=5,
        batch_size=5,
        overflow="drop_newest",
        timeout=0.2,
        shutdown_timeout=0.1,
        on_drop=lambda reason, count: told.append((reason, count)),
    )
    std.addHandler(handler)
    for i in range(20):
        std.info("r%d", i)
    std.removeHandler(handler)
    handler.close()
    stats = handler.stats()
    assert 20 == stats["received"] == stats["dropped_total"]
    totals: dict[str, int] = {}
    for reason, count in told:
        totals[reason] = totals.get(reason, 0) + count
    assert stats["dropped"] == totals


def test_a_message_that_cannot_be_made_is_counted_not_raised(
    server: FakeVictoriaLogs, capfd: pytest.CaptureFixture[str]
) -> None:
    """ "%d" with a string: logging would print a traceback; the handler counts encode_error,
    says so on stderr, and goes on."""
    handler = quiet_handler(server.url, warn_interval=0.0)
    handler.handle(logging.makeLogRecord({"msg": "%d items", "args": ("many",)}))
    handler.handle(logging.makeLogRecord({"msg": "fine"}))
    handler.flush()
    assert ["fine"] == [row["_msg"] for row in server.rows()]
    assert {"encode_error": 1} == handler.stats()["dropped"]
    assert "a record could not be encoded and was dropped: TypeError(" in capfd.readouterr().err
    handler.close()


def test_logging_shutdown_while_the_worker_logs_into_the_handler_does_not_stall(
    server: FakeVictoriaLogs,
) -> None:
    """logging.shutdown() holds the handler's lock through flush() and close(), which wait for
    the worker; the worker logs (a library, at every send) into the same handler meanwhile:
    it never waits for that lock (with logging's own handle() it would, until flush() and
    close() gave up: seconds, and the batch lost), the shutdown completes at once, the
    worker's record is refused."""
    import weakref

    root = logging.getLogger()
    handler = quiet_handler(server.url, flush_interval=60.0)
    make_chatty(handler)
    root.addHandler(handler)
    try:
        logging.getLogger("app").warning("before shutdown")
        done = threading.Event()
        shutdown = threading.Thread(
            target=lambda: (logging.shutdown([weakref.ref(handler)]), done.set())
        )
        shutdown.start()
        assert done.wait(timeout=2), "logging.shutdown() waited for its own lock"
    finally:
        root.removeHandler(handler)
    assert ["before shutdown"] == [row["_msg"] for row in server.rows()]
    assert {"recursion": 1} == handler.stats()["dropped"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"level": "LOUD"},
            ValueError,
            r"^Invalid level: it should be a registered level name, not: 'LOUD'$",
        ),
        (
            {"level": 1.5},
            TypeError,
            r"^Invalid level: it should be an int or a level name, not float$",
        ),
        ({"spool_dir": "/proc/no/spool/here"}, ValueError, r"^Invalid spool_dir: "),
    ],
)
def test_a_handler_that_cannot_be_made_is_never_registered(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A wrong level or a spool that cannot open raises before logging knows the handler
    (logging.shutdown() at exit never meets a half-made one)."""
    before = len(logging._handlerList)  # type: ignore[attr-defined]
    with pytest.raises(error, match=message):
        VLogsHandler("http://127.0.0.1:9", **options)
    assert before == len(logging._handlerList)  # type: ignore[attr-defined]
