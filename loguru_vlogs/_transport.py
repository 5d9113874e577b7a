"""The HTTP seam: ``send(body, headers, timeout) -> Outcome``, and what a request carries.

No HTTP stack here: the urllib3 transport lives in :mod:`._http`, imported when the first
sink starts, so that importing the package stays cheap and free of side effects.
"""

from __future__ import annotations

import logging
import sys
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ._config import Endpoint, Settings
from ._version import __version__

USER_AGENT = f"loguru-vlogs/{__version__}"


@dataclass(frozen=True)
class Outcome:
    """What one request gave: an HTTP status, or ``None`` and an error text when there was no answer."""

    status: int | None
    body: str = ""
    retry_after: str | None = None
    error: str | None = None


class Transport(Protocol):
    """Sends one compressed batch to one endpoint; never raises."""

    def send(
        self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timeout: float
    ) -> Outcome:
        """POST ``body`` to the endpoint's insert URL."""
        ...

    def close(self) -> None:
        """Drop every pooled connection."""
        ...


def make_compressor(name: str, level: int) -> tuple[str | None, Callable[[bytes], bytes]]:
    """``(Content-Encoding value, function)`` for a compression setting."""
    if name == "gzip":
        if sys.version_info >= (3, 11):

            def gzip(data: bytes) -> bytes:
                # wbits=31: gzip framing. One call: the worker gives up the GIL once for it
                # (compressobj's compress + flush give it up twice).
                return zlib.compress(data, level, 31)

        else:  # zlib.compress has no wbits before 3.11

            def gzip(data: bytes) -> bytes:
                c = zlib.compressobj(level, zlib.DEFLATED, 31)
                return c.compress(data) + c.flush()

        return "gzip", gzip
    if name == "zstd":
        import zstandard

        compressor = zstandard.ZstdCompressor(level=level)
        lock = threading.Lock()  # a ZstdCompressor is not safe to share between threads

        def zstd(data: bytes) -> bytes:
            with lock:
                return bytes(compressor.compress(data))

        return "zstd", zstd
    return None, bytes


def request_plan(settings: Settings) -> tuple[Callable[[bytes], bytes], list[dict[str, str]]]:
    """The compressor and, per endpoint (same order), the headers of an insert request."""
    encoding, compress = make_compressor(settings.compression, settings.compression_level)
    headers = []
    for endpoint in settings.endpoints:
        endpoint_headers = settings.request_headers(endpoint)
        if encoding:
            endpoint_headers["Content-Encoding"] = encoding
        headers.append(endpoint_headers)
    return compress, headers


class _ThreadFilter(logging.Filter):
    """Drops urllib3's records emitted by the sink's worker threads.

    An application that routes stdlib logging into loguru (loguru's InterceptHandler recipe)
    would otherwise feed the worker's own HTTP traffic back into the sink, and, worse, block
    the worker on loguru's handler lock while ``logger.complete()`` holds it and waits for
    the worker: a deadlock.
    """

    def __init__(self) -> None:
        super().__init__()
        self.idents: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.idents


_THREAD_FILTER = _ThreadFilter()
_URLLIB3_LOGGERS = (
    "urllib3",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "urllib3.util.ssl_",
    "urllib3.contrib.pyopenssl",
    # logging.captureWarnings(True) turns urllib3's InsecureRequestWarning (verify=False),
    # raised on the worker thread, into a record of this logger.
    "py.warnings",
)
_filters_installed = False


def install_log_filters() -> None:
    """Put the worker-thread filter on urllib3's loggers (once; at the first sink's start)."""
    global _filters_installed  # noqa: PLW0603 - one process-wide switch, set once
    if not _filters_installed:
        for name in _URLLIB3_LOGGERS:
            logging.getLogger(name).addFilter(_THREAD_FILTER)
        _filters_installed = True


def mute_thread(ident: int | None) -> None:
    """Silence urllib3's logging for records emitted by thread ``ident``."""
    if ident is not None:
        _THREAD_FILTER.idents.add(ident)


def unmute_thread(ident: int | None) -> None:
    """Undo :func:`mute_thread`."""
    if ident is not None:
        _THREAD_FILTER.idents.discard(ident)


def clear_muted_threads() -> None:
    """Forget every muted thread (in a forked child, none of them exists)."""
    _THREAD_FILTER.idents.clear()
