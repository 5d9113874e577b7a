"""pytest plugin (``pytest11`` entry point ``loguru_vlogs``): VictoriaLogs fixtures.

- ``vlogs_server`` (session): a real VictoriaLogs when a ``victoria-logs`` binary is on ``PATH``
  or named by ``$VLOGS_BINARY`` (free port, temporary data dir, ``-retentionPeriod=100y``,
  stopped at the end), else a :class:`FakeVictoriaLogs` with no retention limit and the real
  server's one-second visibility delay. Either way it has ``.url``, ``.kind`` (``"real"`` or
  ``"fake"``), ``rows``, ``count``, ``force_flush`` and ``wait_for_count``. Tests share it and
  isolate their rows by a unique field value (see ``vlogs_run_id``), never by restarting it.
  ``--vlogs-require-real`` or ``VLOGS_REQUIRE_REAL=1`` makes a missing binary an error.
- ``fake_vlogs`` (function): a fresh :class:`FakeVictoriaLogs`, for fault injection.
- ``vlogs_run_id`` (function): a unique hex id to tag and query one test's records.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._real import RealVictoriaLogs
    from ._server import FakeVictoriaLogs

    VLogsServer = RealVictoriaLogs | FakeVictoriaLogs

#: Environment variable that makes ``vlogs_server`` refuse to fall back to the fake.
REQUIRE_REAL_ENV = "VLOGS_REQUIRE_REAL"
#: Seconds before a row is queryable on the real server (the fake imitates it).
REAL_VISIBILITY_DELAY = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loguru_vlogs", "VictoriaLogs test server")
    group.addoption(
        "--vlogs-require-real",
        action="store_true",
        default=False,
        help=f"fail instead of using the fake when no victoria-logs binary is found "
        f"(also {REQUIRE_REAL_ENV}=1)",
    )


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """Under the session header, say which server ``vlogs_server`` gives the tests (only in
    runs that use it: the plugin stays silent in every other project)."""
    if not any("vlogs_server" in getattr(item, "fixturenames", ()) for item in items):
        return []
    from ._real import find_binary

    binary = find_binary()
    if binary is None:
        required = " (required: the fixture will fail)" if require_real(config) else ""
        return [f"vlogs_server: FakeVictoriaLogs, no victoria-logs binary{required}"]
    return [f"vlogs_server: real VictoriaLogs, {binary}"]


def require_real(config: pytest.Config) -> bool:
    """Whether a real server is mandatory for this run."""
    flag = os.environ.get(REQUIRE_REAL_ENV, "").strip().lower()
    return bool(config.getoption("vlogs_require_real")) or flag in ("1", "true", "yes", "on")


@pytest.fixture(scope="session")
def vlogs_server(request: pytest.FixtureRequest) -> Iterator[VLogsServer]:
    """A real VictoriaLogs when a binary is at hand, else the fake (session-wide)."""
    from ._real import BINARY_ENV, RealVictoriaLogs, find_binary
    from ._server import FakeVictoriaLogs

    binary = find_binary()
    if binary is None:
        if require_real(request.config):
            pytest.fail(
                f"no victoria-logs binary on PATH and {BINARY_ENV} is not set, "
                f"but a real server is required ({REQUIRE_REAL_ENV} / --vlogs-require-real)",
                pytrace=False,
            )
        with FakeVictoriaLogs(retention=None, visibility_delay=REAL_VISIBILITY_DELAY) as fake:
            yield fake
        return
    with RealVictoriaLogs(binary) as real:
        yield real


@pytest.fixture
def fake_vlogs() -> Iterator[FakeVictoriaLogs]:
    """A fresh FakeVictoriaLogs for this test (fault injection, request inspection)."""
    from ._server import FakeVictoriaLogs

    with FakeVictoriaLogs() as fake:
        yield fake


@pytest.fixture
def vlogs_run_id() -> str:
    """A unique id: send it as a field and query ``run_id:="<id>"`` to see only this test's rows."""
    return uuid.uuid4().hex
