"""Ship loguru logs to VictoriaLogs.

>>> from loguru import logger
>>> from loguru_vlogs import VLogsSink
>>> logger.add(VLogsSink(url="http://localhost:9428"))  # doctest: +SKIP

Importing the package does nothing else: the sink's modules load on first use of
``VLogsSink`` (so ``loguru_vlogs.testing`` and its pytest plugin never load them), and the HTTP
stack, exit hooks and fork hooks wait for the first sink to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from ._sink import VLogsSink

__all__ = ["VLogsSink", "__version__"]


def __getattr__(name: str) -> object:
    if name == "VLogsSink":
        from ._sink import VLogsSink

        globals()[name] = VLogsSink
        return VLogsSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
