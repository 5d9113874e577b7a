"""Ship loguru and stdlib ``logging`` records to VictoriaLogs.

>>> from loguru import logger
>>> from loguru_vlogs import VLogsSink
>>> logger.add(VLogsSink(url="http://localhost:9428"))  # doctest: +SKIP

>>> import logging
>>> from loguru_vlogs import VLogsHandler
>>> logging.getLogger().addHandler(VLogsHandler(url="http://localhost:9428"))  # doctest: +SKIP

Importing the package does nothing else: the sink's and the handler's modules load on first
use of ``VLogsSink`` / ``VLogsHandler`` / ``trace_patcher`` (so ``loguru_vlogs.testing`` and
its pytest plugin never load them), and the HTTP stack, exit hooks and fork hooks wait for
the first sink or handler to start. OpenTelemetry, when installed, is looked up by the first
sink or handler (``trace_context=True``) or the patcher's first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from ._handler import VLogsHandler
    from ._sink import VLogsSink
    from ._trace import trace_patcher

__all__ = ["VLogsHandler", "VLogsSink", "__version__", "trace_patcher"]


def __getattr__(name: str) -> object:
    found: object
    if name == "VLogsSink":
        from ._sink import VLogsSink

        found = VLogsSink
    elif name == "VLogsHandler":
        from ._handler import VLogsHandler

        found = VLogsHandler
    elif name == "trace_patcher":
        from ._trace import trace_patcher

        found = trace_patcher
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = found
    return found
