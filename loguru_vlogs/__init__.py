"""Ship loguru logs to VictoriaLogs.

>>> from loguru import logger
>>> from loguru_vlogs import VLogsSink
>>> logger.add(VLogsSink(url="http://localhost:9428"))  # doctest: +SKIP
"""

from ._sink import VLogsSink
from ._version import __version__

__all__ = ["VLogsSink", "__version__"]
