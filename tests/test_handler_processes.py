"""VLogsHandler in whole programs: dictConfig files, logging.shutdown() and exit (bounded with
the server hung), a forked child, and victorialogs-handler's documented calls."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from importlib import metadata, resources
from pathlib import Path

import pytest

from loguru_vlogs.testing import FakeVictoriaLogs

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parents[1]
#: Slack over shutdown_timeout the issue allows logging.shutdown() with the server hung.
SHUTDOWN_SLACK = 0.5


@pytest.fixture
def server() -> Iterator[FakeVictoriaLogs]:
    with FakeVictoriaLogs() as fake:
        yield fake


def run(code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (this checkout importable, no VLOGS_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLOGS_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def dict_config(urls: list[str], **options: object) -> dict[str, object]:
    """A logging configuration as a JSON file would hold it: a console and a VLogsHandler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"console": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "console",
                "stream": "ext://sys.stdout",
            },
            "vlogs": {
                "class": "loguru_vlogs.VLogsHandler",
                "level": "INFO",
                "url": urls,
                "service": "billing",
                "fields": {"env": "prod"},
                "time_window": [30 * 86400, 2 * 86400],
                **options,
            },
        },
        "root": {"level": "DEBUG", "handlers": ["console", "vlogs"]},
    }


def test_a_dictconfig_file_configures_the_handler(tmp_path: Path) -> None:
    """The class path, keyword options (a list of URLs, a mapping, a pair as a JSON list) and
    the handler's level, from a JSON file: records reach both endpoints, exit delivers them."""
    with FakeVictoriaLogs() as a, FakeVictoriaLogs() as b:
        config = tmp_path / "logging.json"
        config.write_text(json.dumps(dict_config([a.url, b.url], batch_size=10)))
        done = run(
            """
            import json, logging, logging.config, sys
            with open(sys.argv[1]) as f:
                logging.config.dictConfig(json.load(f))
            log = logging.getLogger("billing.api")
            log.debug("not shipped: below the handler's level")
            for i in range(40):
                log.info("charge %d", i, extra={"i": i})
            assert "loguru" not in sys.modules
            """,
            str(config),
        )
        assert 0 == done.returncode, done.stderr
        assert "" == done.stderr
        assert 41 == done.stdout.count(" billing.api ")
        rows = a.rows() + b.rows()
        assert set(range(40)) == {int(row["i"]) for row in rows}
        assert [] not in (a.rows(), b.rows())  # spread over both endpoints
        assert {("billing", "prod", "billing.api")} == {
            (row["service"], row["env"], row["logger"]) for row in rows
        }


@pytest.mark.slow
def test_logging_shutdown_is_bounded_with_the_server_hung(
    server: FakeVictoriaLogs, tmp_path: Path
) -> None:
    """The server accepts and never answers: logging.shutdown() (flush, then close, under the
    handler's lock) returns within shutdown_timeout + 0.5 s, says what was lost, and the
    interpreter then exits at once."""
    server.delay_next(100, 30.0)
    config = tmp_path / "logging.json"
    config.write_text(
        json.dumps(
            dict_config([server.url], shutdown_timeout=1.0, timeout=5.0, flush_interval=0.05)
        )
    )
    done = run(
        """
        import json, logging, logging.config, sys, time
        with open(sys.argv[1]) as f:
            logging.config.dictConfig(json.load(f))
        for i in range(50):
            logging.getLogger("app").info("r %d", i)
        time.sleep(0.2)  # the worker is inside the hung request
        started = time.monotonic()
        logging.shutdown()
        print("SHUTDOWN", time.monotonic() - started, flush=True)
        print("END", time.time(), flush=True)
        """,
        str(config),
    )
    ended = time.time()
    assert 0 == done.returncode, done.stderr
    took = float(re.search(r"SHUTDOWN (\S+)", done.stdout)[1])  # type: ignore[index]
    assert took < 1.0 + SHUTDOWN_SLACK
    assert "50 records could not be delivered" in done.stderr
    exit_took = ended - float(re.search(r"END (\S+)", done.stdout)[1])  # type: ignore[index]
    assert exit_took < SHUTDOWN_SLACK + 0.5


@pytest.mark.slow
def test_at_exit_with_the_server_hung_the_program_ends_within_shutdown_timeout(
    server: FakeVictoriaLogs,
) -> None:
    """No explicit shutdown: the exit hook and logging's own shutdown share one budget."""
    server.delay_next(100, 30.0)
    done = run(
        f"""
        import logging, time
        from loguru_vlogs import VLogsHandler
        logging.basicConfig(
            level=logging.INFO,
            handlers=[VLogsHandler({server.url!r}, shutdown_timeout=1.0, flush_interval=0.05)],
        )
        for i in range(50):
            logging.info("r %d", i)
        time.sleep(0.2)
        print("END", time.time(), flush=True)
        """
    )
    ended = time.time()
    assert 0 == done.returncode, done.stderr
    exit_took = ended - float(re.search(r"END (\S+)", done.stdout)[1])  # type: ignore[index]
    assert exit_took < 1.0 + SHUTDOWN_SLACK + 0.3
    assert 1 == done.stderr.count("could not be delivered"), done.stderr


def test_a_forked_child_ships_its_own_records(server: FakeVictoriaLogs) -> None:
    """The handler inherited by a forked child gets a fresh engine there; the child's
    records arrive once, before it exits (multiprocessing leaves through os._exit)."""
    done = run(
        f"""
        import logging, multiprocessing, os
        from loguru_vlogs import VLogsHandler
        handler = VLogsHandler({server.url!r}, flush_interval=0.05)
        log = logging.getLogger("app")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("parent before")

        def child():
            for i in range(20):
                log.info("child %d", i, extra={{"pid": os.getpid()}})

        p = multiprocessing.get_context("fork").Process(target=child)
        p.start()
        p.join()
        log.info("parent after")
        """
    )
    assert 0 == done.returncode, done.stderr
    messages = [row["_msg"] for row in server.rows()]
    assert 22 == len(messages)
    assert {f"child {i}" for i in range(20)} | {"parent before", "parent after"} == set(messages)


# -- victorialogs-handler's documented calls ------------------------------------------------------


def documented_snippets() -> list[str]:
    """The Python blocks of victorialogs-handler's README (its package metadata) and of its
    technical documentation (``vlogs_handler/technical.md``), as installed."""
    readme = metadata.metadata("victorialogs-handler").get_payload()  # type: ignore[attr-defined]
    technical = (resources.files("vlogs_handler") / "technical.md").read_text(encoding="utf-8")
    return [
        textwrap.dedent(block)
        for text in (readme, technical)
        for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    ]


def migrated(code: str, url: str) -> str:
    """``code`` with only the import and the constructor changed (docs/migration.md)."""
    code = code.replace(
        "from vlogs_handler import VictoriaLogsHandler", "from loguru_vlogs import VLogsHandler"
    )
    code = code.replace("VictoriaLogsHandler()", f"VLogsHandler(url={url!r})")
    return code.replace("VictoriaLogsHandler(", f"VLogsHandler(url={url!r}, ")


def test_victorialogs_handlers_documented_calls_work_unchanged_but_for_the_constructor(
    server: FakeVictoriaLogs,
) -> None:
    """Its README's quick start and its technical documentation's snippets (buffer_size, the
    handler's own logger with a console handler), run one after the other with only the
    import and the constructor changed, and the calls of its repository's examples
    (setLevel, addHandler, extra=, logger.exception): every record arrives."""
    pytest.importorskip("vlogs_handler")
    snippets = documented_snippets()
    assert any("VictoriaLogsHandler()" in s for s in snippets)
    assert any("buffer_size=100_000" in s for s in snippets)
    examples = """
        log = logging.getLogger("examples")
        log.setLevel(logging.DEBUG)
        console_handler = logging.StreamHandler()
        console_handler.setLevel(logging.DEBUG)
        console_handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(message)s"))
        log.addHandler(console_handler)
        handler = VictoriaLogsHandler(batch_size=30)
        handler.setLevel(logging.DEBUG)
        log.addHandler(handler)
        log.info("structured", extra={"user_id": 42})
        try:
            _ = 1 / 0
        except Exception:
            log.exception("an exception")
        log.info("%d: formatted", 7)
    """
    program = "import logging\n" + "\n".join(
        migrated(code, server.url) for code in [*snippets, textwrap.dedent(examples)]
    )
    done = run(program)
    assert 0 == done.returncode, done.stderr + "\n" + program
    rows = {row["_msg"]: row for row in server.rows()}
    assert {"This is an info message", "structured", "an exception", "7: formatted"} <= set(rows)
    assert "42" == rows["structured"]["user_id"]
    assert "ZeroDivisionError" == rows["an exception"]["exception.type"]


def test_victorialogs_handlers_dictconfig_example_works_with_the_class_path_changed(
    server: FakeVictoriaLogs,
) -> None:
    """Its dictConfig setup (a console and the handler on the root logger, "flush_interval"):
    the class path changed and "url" added."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"standard": {"format": "%(asctime)s [%(levelname)s] %(name)s: %(message)s"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "level": "DEBUG",
                "formatter": "standard",
                "stream": "ext://sys.stdout",
            },
            "vlogs": {
                "class": "loguru_vlogs.VLogsHandler",
                "url": server.url,
                "level": "DEBUG",
                "flush_interval": 0.5,
            },
        },
        "loggers": {"": {"handlers": ["console", "vlogs"], "level": "DEBUG"}},
    }
    done = run(
        f"""
        import logging, logging.config
        logging.config.dictConfig({config!r})
        logger = logging.getLogger(__name__)
        logger.debug("a debug message")
        logger.info("an info message")
        logger.error("an error message")
        """
    )
    assert 0 == done.returncode, done.stderr
    assert ["a debug message", "an info message", "an error message"] == [
        row["_msg"] for row in server.rows()
    ]


def test_a_fileconfig_ini_configures_the_handler(server: FakeVictoriaLogs, tmp_path: Path) -> None:
    """logging.config.fileConfig: class, args (the URL) and kwargs (options)."""
    ini = tmp_path / "logging.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [loggers]
            keys=root

            [handlers]
            keys=vlogs

            [formatters]
            keys=

            [logger_root]
            level=INFO
            handlers=vlogs

            [handler_vlogs]
            class=loguru_vlogs.VLogsHandler
            level=INFO
            args=({server.url!r},)
            kwargs={{"service": "ini-app", "fields": {{"env": "test"}}}}
            """
        )
    )
    done = run(
        """
        import logging, logging.config, sys
        logging.config.fileConfig(sys.argv[1])
        logging.getLogger("app").info("from an ini file")
        """,
        str(ini),
    )
    assert 0 == done.returncode, done.stderr
    row = server.rows()[0]
    assert ("from an ini file", "ini-app", "test") == (row["_msg"], row["service"], row["env"])
