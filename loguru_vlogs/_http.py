"""The urllib3 transport: one ``PoolManager``, urllib3's errors mapped to an ``Outcome`` here only.

Imported when the first sink starts (never at package import): it brings in urllib3.

``timeout`` bounds a whole request, connect to the answer's last byte: urllib3's own timeouts
bound each socket operation only, so a server that sends its answer one byte at a time would
hold the worker for ever. A :class:`Deadline` thread shuts the request's socket down when its
time is up; the request then fails (retried), and its connection is discarded.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
import threading
import time
import warnings
from typing import Any
from urllib.parse import urlsplit

import urllib3
import urllib3.connection
import urllib3.connectionpool

from ._config import Endpoint, Settings, quote_query_value
from ._explain import diagnose
from ._transport import USER_AGENT, Outcome, install_log_filters

#: A Deadline thread with nothing to watch for this long (seconds) ends.
_IDLE_EXIT = 60.0
#: The Deadline of the request this thread is making (read by the connection classes below).
_ACTIVE = threading.local()


class Deadline:
    """Ends the request under way when its deadline passes, from a thread of its own.

    ``arm(deadline)`` before a request, ``disarm()`` after it (True when it fired). The
    connection the request uses reports itself (:meth:`watch`); at the deadline its socket is
    shut down, which ends any blocked read or write at once, TLS included.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._connection: Any = None
        self._fired = False
        self._thread: threading.Thread | None = None
        #: when the thread wakes up next (it is told of an earlier deadline only)
        self._wake_at = math.inf
        #: stop() was called: the thread ends
        self._stopped = False

    def arm(self, deadline: float) -> bool:
        """Watch the next request until ``deadline``; False when no thread can run (exit)."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(
                    target=self._run, name="loguru-vlogs-deadline", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:  # interpreter shutdown: per-operation timeouts only
                    return False
                self._thread = thread
            self._stopped = False
            self._deadline = deadline
            self._connection = None
            self._fired = False
            if deadline < self._wake_at:
                # Otherwise the thread wakes first and waits again for the rest: no GIL
                # hand-off to it per request (a worker sending back to back arms a later
                # deadline each time).
                self._cond.notify()
        return True

    def watch(self, connection: Any) -> None:
        """The connection the armed request uses."""
        with self._cond:
            self._connection = connection

    def stop(self) -> None:
        """End the thread (the transport is closed); a later arm() starts another."""
        with self._cond:
            self._stopped = True
            self._deadline = None
            self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; True when the deadline ended the request."""
        with self._cond:
            self._deadline = None
            self._connection = None
            return self._fired

    def _run(self) -> None:
        from ._transport import mute_thread

        mute_thread(threading.get_ident())
        with self._cond:
            while True:
                deadline = self._deadline
                now = time.monotonic()
                if self._stopped:
                    self._thread = None
                    self._wake_at = math.inf
                    return
                if deadline is None:
                    self._wake_at = now + _IDLE_EXIT
                    if not self._cond.wait(_IDLE_EXIT) and self._deadline is None:
                        self._thread = None  # idle: the next arm() starts another
                        self._wake_at = math.inf
                        return
                    continue
                remaining = deadline - now
                if remaining > 0:
                    self._wake_at = deadline
                    self._cond.wait(remaining)
                    continue
                self._fired = True
                self._deadline = None
                sock = getattr(self._connection, "sock", None)
                if sock is not None:
                    # The plain socket's shutdown, not SSLSocket's (which also drops its TLS
                    # state under the reading thread's feet).
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = getattr(_ACTIVE, "deadline", None)
        if deadline is not None:
            deadline.watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = getattr(_ACTIVE, "deadline", None)
        if deadline is not None:
            deadline.watch(self)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


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
        self._pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        self._deadline = Deadline()
        #: per endpoint: its connection pool and the request target (path and query), found
        #: once: the manager's per-request URL parsing and pool-key lookup cost ~70 µs a batch
        self._routes: dict[str, tuple[urllib3.connectionpool.HTTPConnectionPool, str]] = {}
        self._timeouts: dict[tuple[float, bool], urllib3.Timeout] = {}

    def _route(self, endpoint: Endpoint) -> tuple[urllib3.connectionpool.HTTPConnectionPool, str]:
        route = self._routes.get(endpoint.insert_url)
        if route is None or route[0].pool is None:  # None: that pool was closed
            url = endpoint.insert_url + self._query
            pool = self._pool.connection_from_url(url)
            route = self._routes[endpoint.insert_url] = (
                pool,
                urllib3.util.parse_url(url).request_uri,
            )
        return route

    def _timeout(self, seconds: float, watched: bool) -> urllib3.Timeout:
        key = (seconds, watched)
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) >= 16:  # shortened timeouts near a deadline vary
                self._timeouts.clear()
            # Watched by the Deadline, reading the answer needs no timeout of its own: the
            # socket then blocks, and each receive is one system call (with a timeout, Python
            # polls before each one), so the worker gives up and retakes the GIL less often,
            # which is what a logging thread pays for. Connecting and sending keep it (urllib3
            # applies the connect timeout to both; the Deadline only shuts connected sockets).
            read = None if watched else seconds
            timeout = self._timeouts[key] = urllib3.Timeout(connect=seconds, read=read)
        return timeout

    def send(
        self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timeout: float
    ) -> Outcome:
        started = time.monotonic()
        watched = self._deadline.arm(started + timeout)
        _ACTIVE.deadline = self._deadline if watched else None
        try:
            pool, target = self._route(endpoint)
            response = pool.urlopen(
                "POST",
                target,
                body=body,
                # Request headers replace the pool's defaults in urllib3: add ours here.
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=self._timeout(timeout, watched),
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            if self._deadline.disarm():
                return Outcome(status=None, error=_too_slow(timeout, time.monotonic() - started))
            return Outcome(status=None, error=_describe(exc, endpoint, timeout))
        except Warning as exc:  # a warning turned into an error (-W error) must not kill us
            self._deadline.disarm()
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
        except OSError as exc:  # pragma: no cover - urllib3 wraps socket errors; belt and braces
            self._deadline.disarm()
            return Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
        finally:
            _ACTIVE.deadline = None
        self._deadline.disarm()  # an answer read in full stands, even at the deadline
        text = response.data[:500].decode("utf-8", "replace").strip()
        return Outcome(
            status=response.status, body=text, retry_after=response.headers.get("Retry-After")
        )

    def close(self) -> None:
        self._routes.clear()  # the pools are closed below: find them afresh
        self._pool.clear()
        self._deadline.stop()


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


_POOL_PREFIX = re.compile(r"^(?:\w*HTTPS?Connection(?:Pool)?\([^)]*\)|<[^>]*>): ")


def _describe(exc: BaseException, endpoint: Endpoint, timeout: float) -> str:
    """What to change (the words of ``loguru-vlogs check``), then urllib3's own short,
    credential-free text (the URL it names has no userinfo)."""
    reason = getattr(exc, "reason", None)
    inner = reason if isinstance(reason, BaseException) else exc
    text = _POOL_PREFIX.sub("", str(inner))
    text = text.replace("Failed to establish a new connection: ", "")
    raw = f"{type(inner).__name__}: {text}"
    hint = diagnose(exc, endpoint.display, timeout)
    return raw if hint.startswith(type(exc).__name__) else f"{hint} ({raw})"


def _too_slow(timeout: float, elapsed: float) -> str:
    return (
        f"no complete answer within {timeout:.3g} s (timeout; gave up after {elapsed:.3g} s): "
        "the server or a proxy in front of it is too slow"
    )
