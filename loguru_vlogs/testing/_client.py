"""A small HTTP client for any VictoriaLogs-compatible server: the real one or the fake.

End-to-end tests read back through this interface only, so they run the same way against a
real ``victoria-logs`` and against :class:`~loguru_vlogs.testing.FakeVictoriaLogs`.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

#: How often :meth:`VLogsClient.wait_for_count` asks again.
DEFAULT_POLL_INTERVAL = 0.05


class VLogsQueryError(RuntimeError):
    """The server answered a query with an error status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text.strip()}")
        self.status = status
        self.text = text


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:pass@host`` → (URL without them, ``Basic`` header value)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url.rstrip("/"), None
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)).rstrip("/"), f"Basic {token}"


def _first_wins(pairs: list[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in pairs:
        result.setdefault(name, value)
    return result


class Polling:
    """``wait_for_count`` for any server object that has ``force_flush`` and ``count``."""

    def force_flush(self) -> bool:
        """Make every ingested row visible now, where the server allows it."""
        raise NotImplementedError

    def count(self, query: str = "*", account_id: int = 0, project_id: int = 0) -> int:
        """How many rows match ``query`` for the tenant."""
        raise NotImplementedError

    def wait_for_count(
        self,
        query: str,
        n: int,
        timeout: float = 10.0,
        account_id: int = 0,
        project_id: int = 0,
        *,
        interval: float = DEFAULT_POLL_INTERVAL,
    ) -> int:
        """Flush and poll until at least ``n`` rows match or ``timeout`` passes; the last count."""
        deadline = time.monotonic() + timeout
        while True:
            self.force_flush()
            found = self.count(query, account_id, project_id)
            remaining = deadline - time.monotonic()
            if found >= n or remaining <= 0:
                return found
            time.sleep(min(interval, remaining))


class VLogsClient(Polling):
    """Query a VictoriaLogs(-compatible) server at ``url`` (with or without a path prefix).

    Credentials in the URL become basic auth. ``headers`` are sent with every request.
    """

    kind = "remote"

    def __init__(
        self, url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"Invalid url, it should start with http:// or https://, not: {url!r}")
        self._base, auth = _split_credentials(url)
        self.timeout = timeout
        self._headers = dict(headers or {})
        if auth is not None:
            self._headers.setdefault("Authorization", auth)
        # Loopback test servers must not go through an HTTP proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        """The base URL (credentials removed)."""
        return self._base

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base!r})"

    def _request(
        self,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__
            self._base + path, data=data, headers={**self._headers, **(headers or {})}
        )
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            # http(s) only: the scheme was checked in __init__.
            opened = self._opener.open(request, timeout=self.timeout)
            with opened as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read()

    def select(
        self,
        query: str = "*",
        account_id: int = 0,
        project_id: int = 0,
        limit: int | None = None,
        *,
        start: str | None = None,
        end: str | None = None,
    ) -> list[list[tuple[str, str]]]:
        """``/select/logsql/query``: each row as (name, value) pairs in the server's order."""
        form = {"query": query}
        if limit is not None:
            form["limit"] = str(limit)
        if start is not None:
            form["start"] = start
        if end is not None:
            form["end"] = end
        tenant = {"AccountID": str(account_id), "ProjectID": str(project_id)}
        status, body = self._request("/select/logsql/query", form=form, headers=tenant)
        text = body.decode("utf-8", "replace")
        if status != 200:
            raise VLogsQueryError(status, text)
        # One row per "\n": str.splitlines() would also split inside values at U+0085, U+2028...
        return [json.loads(line, object_pairs_hook=list) for line in text.split("\n") if line]

    def rows(
        self, query: str = "*", account_id: int = 0, project_id: int = 0, limit: int | None = None
    ) -> list[dict[str, str]]:
        """Rows matching ``query``; with duplicate keys the first one wins."""
        return [_first_wins(pairs) for pairs in self.select(query, account_id, project_id, limit)]

    def count(self, query: str = "*", account_id: int = 0, project_id: int = 0) -> int:
        """How many rows match ``query`` (``| stats count() as n``)."""
        result = self.select(f"{query} | stats count() as n", account_id, project_id)
        return int(dict(result[0])["n"]) if result else 0

    def force_flush(self) -> bool:
        """Make ingested rows visible now; False where the server has no such endpoint (cluster)."""
        status, body = self._request("/internal/force_flush")
        if status in (400, 404, 405):
            return False
        if status != 200:
            raise VLogsQueryError(status, body.decode("utf-8", "replace"))
        return True

    def healthy(self) -> bool:
        """``/health`` answers ``OK``."""
        try:
            status, body = self._request("/health")
        except OSError:
            return False
        return status == 200 and body.strip() == b"OK"
