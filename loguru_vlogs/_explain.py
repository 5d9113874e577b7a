"""What a failure means, in one sentence that says what to change.

Shared by the worker's stderr lines and ``loguru-vlogs check``, so both say the same thing.
:func:`misrouted` is pure; :func:`diagnose` reads urllib3's exceptions (imported only when
it runs, by callers that already sent with urllib3).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

#: A Go HTTPS server (VictoriaLogs with -tls) answers a plain-HTTP request with 400 and this.
_HTTP_TO_HTTPS = (
    "client sent an http request to an https server",
    "plain http request was sent to https port",
)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (urllib3's ``reason``, ``__cause__``, ``__context__``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        reason = getattr(item, "reason", None)
        todo.extend(
            [
                reason if isinstance(reason, BaseException) else None,
                item.__cause__,
                item.__context__,
            ]
        )


def diagnose(exc: BaseException, url: str, timeout: float) -> str:
    """One actionable sentence for a failed connection to ``url`` (no credentials in it)."""
    import urllib3.exceptions as u3

    chain = list(causes(exc))
    text = " ".join(str(c) for c in chain)
    where = url.split("://", 1)[-1].split("/", 1)[0]

    def caused_by(*kinds: type[BaseException]) -> bool:
        return any(isinstance(c, kinds) for c in chain)

    hint = " (is it an https:// server? then use https://)" if url.startswith("http:") else ""
    rules: list[tuple[bool, str]] = [
        (
            caused_by(socket.gaierror, u3.NameResolutionError),
            f"DNS: the host name in {url} cannot be resolved: check for a typo; inside a "
            "container use the service's name on that network",
        ),
        (
            caused_by(ConnectionRefusedError) or "refused" in text,
            f"connection refused: nothing listens on {where}; is VictoriaLogs running, and "
            "is the port right (default 9428)?",
        ),
        (
            caused_by(ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text,
            "TLS: the server's certificate is not trusted: give the CA bundle (ca_certs, "
            "--ca-certs, VLOGS_CA_CERTS), or do not verify (verify=False, --insecure, "
            "VLOGS_VERIFY=0) for a test setup",
        ),
        (
            "WRONG_VERSION_NUMBER" in text.upper() or "record layer failure" in text,
            f"TLS: {where} does not speak TLS: use http:// instead of https://",
        ),
        (caused_by(ssl.SSLError, u3.SSLError), f"TLS handshake failed: {chain[-1]}"),
        (
            caused_by(u3.ConnectTimeoutError),
            f"connect timed out after {timeout:g} s: the host does not answer on {where} "
            "(a firewall dropping packets, or the wrong address)",
        ),
        (
            caused_by(u3.ReadTimeoutError, TimeoutError),
            f"no answer within {timeout:g} s: the connection was accepted but the server did "
            "not respond (overloaded, or not an HTTP server); raise the timeout (timeout, "
            "--timeout, VLOGS_TIMEOUT) to wait longer",
        ),
        (
            caused_by(u3.ProtocolError, ConnectionError),
            f"the connection was closed without an HTTP answer{hint}: {chain[-1]}",
        ),
    ]
    return next((m for hit, m in rules if hit), f"{type(exc).__name__}: {exc}")


STATUS_HINTS = {
    400: "the server rejected the request",
    401: "authentication is required or wrong: check --user/--password or --bearer-token",
    403: "access denied: check the credentials and the tenant (--account-id/--project-id)",
    404: "not found: is the URL the server's base URL (mind a proxy's path prefix)?",
    405: "method not allowed: the URL does not point at VictoriaLogs' insert API",
    413: "request too large for a proxy in between",
    429: "the server's storage is read-only (disk nearly full); it will accept again later",
}


#: VictoriaLogs answers a path it does not serve with 400 and this text (not 404).
UNSUPPORTED_PATH = "unsupported path requested"


def wrong_path(status: int, body: str) -> bool:
    return status == 404 or (status == 400 and UNSUPPORTED_PATH in body)


def status_hint(status: int, body: str = "") -> str:
    if wrong_path(status, body):
        return STATUS_HINTS[404]
    if status in STATUS_HINTS:
        return STATUS_HINTS[status]
    if status >= 500:
        return "server error: the server or a proxy in front of it is failing or overloaded"
    return f"unexpected HTTP {status}"


def misrouted(status: int, body: str) -> str | None:
    """What to change when an answer shows the URL does not lead to VictoriaLogs' insert API
    (a configuration mistake, not a bad batch), else None."""
    lowered = body[:500].lower()
    if any(text in lowered for text in _HTTP_TO_HTTPS):
        return "the server speaks TLS: use https:// instead of http://"
    if lowered.lstrip().startswith(("<!doctype html", "<html")) or "<html" in lowered[:200]:
        return (
            f"HTTP {status} with an HTML page: the URL does not lead to VictoriaLogs (a web "
            "server, a login page or a proxy's error page); check the host, port and path"
        )
    if wrong_path(status, body):
        return STATUS_HINTS[404]
    if status == 405:
        return STATUS_HINTS[405]
    if 300 <= status < 400:
        return (
            f"HTTP {status} redirect: the URL does not lead to VictoriaLogs' insert API "
            "(give the address it redirects to, e.g. https:// or a path prefix)"
        )
    return None
