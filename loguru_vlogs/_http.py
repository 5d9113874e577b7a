"""The urllib3 transport: one ``PoolManager``, urllib3's errors mapped to an ``Outcome`` here only.

Imported when the first sink starts (never at package import): it brings in urllib3.
"""

from __future__ import annotations

import re
import warnings
from typing import Any
from urllib.parse import urlsplit

import urllib3

from ._config import Endpoint, Settings, quote_query_value
from ._transport import USER_AGENT, Outcome, install_log_filters


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
        install_log_filters()
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
