"""Test helpers for code that ships logs to VictoriaLogs (stable, documented API).

- :class:`FakeVictoriaLogs`: a VictoriaLogs v1.26.0-compatible receiver on loopback, with
  fault injection (``fail_next``, ``delay_next``, ``drop_next``, ``reset_next``).
- :class:`RealVictoriaLogs`: a real ``victoria-logs`` process (``$VLOGS_BINARY`` or ``PATH``).
- :class:`VLogsClient`: query either one over HTTP (``rows``, ``count``, ``wait_for_count``).
- The pytest plugin (``loguru_vlogs.testing.pytest_plugin``, registered as ``pytest11``)
  provides the ``vlogs_server``, ``fake_vlogs`` and ``vlogs_run_id`` fixtures.

Nothing here imports the sink.
"""

from __future__ import annotations

from ._client import VLogsClient, VLogsQueryError
from ._real import RealVictoriaLogs, find_binary, free_port
from ._server import FakeVictoriaLogs, Headers, RecordedRequest, serve

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
