"""Test helpers for code that ships logs to VictoriaLogs (stable, documented API).

- :class:`FakeVictoriaLogs`: a VictoriaLogs v1.52.2-compatible receiver on loopback, with
  fault injection (``fail_next``, ``delay_next``, ``drop_next``, ``reset_next``).
- :class:`RealVictoriaLogs`: a real ``victoria-logs`` process (``$VLOGS_BINARY`` or ``PATH``).
- :class:`VLogsClient`: query either one over HTTP (``rows``, ``count``, ``wait_for_count``).
- The pytest plugin (``loguru_vlogs.testing.pytest_plugin``, registered as ``pytest11``)
  provides the ``vlogs_server``, ``fake_vlogs`` and ``vlogs_run_id`` fixtures.

Nothing here imports the sink; each name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._client import VLogsClient, VLogsQueryError
    from ._real import RealVictoriaLogs, find_binary, free_port
    from ._server import FakeVictoriaLogs, Headers, RecordedRequest, serve

#: Each public name and its module: loaded on first use, so that the pytest plugin (a module of
#: this package, loaded in every pytest run where the package is installed) costs nothing.
_WHERE = {
    "VLogsClient": "._client",
    "VLogsQueryError": "._client",
    "RealVictoriaLogs": "._real",
    "find_binary": "._real",
    "free_port": "._real",
    "FakeVictoriaLogs": "._server",
    "Headers": "._server",
    "RecordedRequest": "._server",
    "serve": "._server",
}

__all__ = [
    "FakeVictoriaLogs",
    "Headers",
    "RealVictoriaLogs",
    "RecordedRequest",
    "VLogsClient",
    "VLogsQueryError",
    "find_binary",
    "free_port",
    "serve",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
