"""Ship loguru logs to VictoriaLogs.

>>> from loguru import logger
>>> from loguru_vlogs import VLogsSink
>>> logger.add(VLogsSink(url="http://localhost:9428"))  # doctest: +SKIP

Importing the package does nothing else: the sink's modules load on first use of
``VLogsSink`` or ``trace_patcher`` (so ``loguru_vlogs.testing`` and its pytest plugin never
load them), and the HTTP stack, exit hooks and fork hooks wait for the first sink to start.
OpenTelemetry, when installed, is looked up by the first sink (``trace_context=True``) or the
patcher's first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from ._sink import VLogsSink
    from ._trace import trace_patcher

__all__ = ["VLogsSink", "__version__", "trace_patcher"]


def __getattr__(name: str) -> object:
    found: object
    if name == "VLogsSink":
        from ._sink import VLogsSink

        found = VLogsSink
    elif name == "trace_patcher":
        from ._trace import trace_patcher

        found = trace_patcher
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = found
    return found
