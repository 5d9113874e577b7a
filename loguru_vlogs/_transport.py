"""The HTTP seam: ``send(body, headers, timeout) -> Outcome``, urllib3 errors mapped here only."""

from __future__ import annotations

import logging
import re
import threading
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3

from ._config import Endpoint, Settings, quote_query_value
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

        def gzip(data: bytes) -> bytes:
            # wbits=31: gzip framing; compressobj works on 3.10 too (zlib.compress(wbits=) is 3.11+).
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
for _name in _URLLIB3_LOGGERS:
    logging.getLogger(_name).addFilter(_THREAD_FILTER)


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


def tls_options(settings: Settings) -> dict[str, Any]:
    """``urllib3.PoolManager`` keyword arguments for the TLS settings."""
    tls: dict[str, Any] = {}
    if not settings.verify:
        tls["cert_reqs"] = "CERT_NONE"
    if settings.ca_certs:
        tls["ca_certs"] = settings.ca_certs
    if settings.client_cert:
        tls["cert_file"] = settings.client_cert
    if settings.client_key:
        tls["key_file"] = settings.client_key
    return tls


class Urllib3Transport:
    """One ``PoolManager`` for all endpoints: keep-alive, quiet reconnects after ``Connection: close``."""

    def __init__(self, settings: Settings) -> None:
        self._query = ""
        if settings.stream_fields:
            self._query = "?_stream_fields=" + quote_query_value(",".join(settings.stream_fields))
        tls = tls_options(settings)
        if not settings.verify:
            _quiet_insecure_warnings(settings)
        # retries=False: the worker owns retrying (urllib3's Retry skips POST by default and
        # would log its own warnings); redirect=False: a redirected POST loses its body.
        self._pool = urllib3.PoolManager(
            num_pools=max(4, len(settings.endpoints)),
            maxsize=2,
            retries=False,
            **tls,  # type: ignore[arg-type,unused-ignore]
        )

    def send(
        self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timeout: float
    ) -> Outcome:
        try:
            response = self._pool.request(
                "POST",
                endpoint.insert_url + self._query,
                body=body,
                # Request headers replace the pool's defaults in urllib3: add ours here.
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            return Outcome(status=None, error=_describe(exc))
        except Warning as exc:  # a warning turned into an error (-W error) must not kill us
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
        except OSError as exc:  # pragma: no cover - urllib3 wraps socket errors; belt and braces
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
        text = response.data[:500].decode("utf-8", "replace").strip()
        return Outcome(
            status=response.status, body=text, retry_after=response.headers.get("Retry-After")
        )

    def close(self) -> None:
        self._pool.clear()


def _quiet_insecure_warnings(settings: Settings) -> None:
    """Ignore urllib3's InsecureRequestWarning for this sink's hosts (``verify=False``).

    The user chose not to verify these hosts: the warning would repeat that choice on every
    request, and with warnings as errors (``-W error``, pytest) it is raised on the worker
    thread and stops delivery. Warnings about other hosts stay as the program set them.
    """
    for endpoint in settings.endpoints:
        host = urlsplit(endpoint.base_url).hostname or ""
        warnings.filterwarnings(
            "ignore",
            message=f"Unverified HTTPS request is being made to host '{re.escape(host)}'",
            category=urllib3.exceptions.InsecureRequestWarning,
        )


_POOL_PREFIX = re.compile(r"^(?:HTTPS?Connection(?:Pool)?\([^)]*\)|<[^>]*>): ")


def _describe(exc: BaseException) -> str:
    """A short, credential-free text for a urllib3 error (the URL it names has no userinfo)."""
    reason = getattr(exc, "reason", None)
    inner = reason if isinstance(reason, BaseException) else exc
    text = _POOL_PREFIX.sub("", str(inner))
    text = text.replace("Failed to establish a new connection: ", "")
    return f"{type(inner).__name__}: {text}"
