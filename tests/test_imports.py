"""Importing the package, or loading its pytest plugin, has no side effects and no HTTP stack."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.subprocess


def run_python(code: str) -> None:
    """Run ``code`` in a fresh interpreter; its assertions fail the test."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stderr


def test_importing_the_package_loads_no_http_stack_and_installs_nothing() -> None:
    """`import loguru_vlogs`: no urllib3, no OpenTelemetry, no thread, no exit hook, no
    logging filter."""
    run_python(
        """
        import atexit, logging, sys, threading
        import loguru
        hooks = atexit._ncallbacks()
        import loguru_vlogs
        assert "urllib3" not in sys.modules
        assert not [m for m in sys.modules if m.startswith("opentelemetry")]
        assert [m for m in sys.modules if m.startswith("loguru_vlogs.")] == ["loguru_vlogs._version"]
        assert hooks == atexit._ncallbacks()
        assert [threading.main_thread()] == threading.enumerate()
        assert [] == logging.getLogger("urllib3").filters
        """
    )


def test_exit_and_fork_hooks_arrive_with_the_first_sink() -> None:
    """Importing VLogsSink / VLogsHandler registers nothing; the first sink or handler registers
    the exit hook, once; none imports the HTTP stack before it sends."""
    run_python(
        """
        import atexit, multiprocessing.util, sys  # the latter registers its own exit hook
        import loguru
        hooks = atexit._ncallbacks()
        from loguru_vlogs import VLogsHandler, VLogsSink, trace_patcher
        assert hooks == atexit._ncallbacks()
        assert not [m for m in sys.modules if m.startswith("opentelemetry")]
        VLogsSink("http://127.0.0.1:9")
        VLogsSink("http://127.0.0.1:9")
        VLogsHandler("http://127.0.0.1:9")
        assert hooks + 1 == atexit._ncallbacks()
        assert "urllib3" not in sys.modules
        """
    )


def test_the_pytest_plugin_loads_nothing_until_a_fixture_is_used() -> None:
    """The plugin (loaded in every pytest run where the package is installed) is cheap."""
    run_python(
        """
        import sys
        import loguru_vlogs.testing.pytest_plugin
        assert "urllib3" not in sys.modules
        assert "loguru_vlogs._sink" not in sys.modules
        assert "loguru_vlogs.testing._server" not in sys.modules
        """
    )


def test_the_http_stack_and_hooks_arrive_with_the_first_sink_that_sends() -> None:
    """A constructed sink imports no urllib3; its first send does, and filters urllib3's
    records of the worker thread from then on."""
    run_python(
        """
        import logging, sys
        from loguru import logger
        from loguru_vlogs import VLogsSink
        sink = VLogsSink("http://127.0.0.1:9", shutdown_timeout=0.2, timeout=0.2)
        assert "urllib3" not in sys.modules
        logger.add(sink)
        logger.info("x")
        logger.complete()
        assert "urllib3" in sys.modules
        assert logging.getLogger("urllib3").filters
        logger.remove()
        """
    )
