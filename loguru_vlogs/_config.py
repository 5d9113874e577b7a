"""Keyword arguments -> one frozen, validated settings object.

Every check names the argument, says what is allowed and shows what was received, so a
misconfiguration fails at ``VLogsSink(...)`` and never later, inside the worker thread.
"""

from __future__ import annotations

import base64
import math
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ._spool import FSYNC_POLICIES

#: What ``write()`` does when the buffer is full (docs/options.md).
OverflowPolicy = Literal["drop_oldest", "drop_newest", "block"]
#: Request body compression.
Compression = Literal["gzip", "zstd", "none"]

OVERFLOW_POLICIES: tuple[str, ...] = get_args(OverflowPolicy)
COMPRESSIONS: tuple[str, ...] = get_args(Compression)

#: Names VictoriaLogs reserves; a stream field or static field must not use them.
RESERVED_NAMES = frozenset({"_msg", "_time", "_stream", "_stream_id"})
#: VictoriaLogs keeps keys up to this many bytes (longer top-level keys spoil the whole line).
MAX_KEY_BYTES = 128
_UINT32_MAX = 2**32 - 1
#: Headers the sink owns: letting the user set them would break the request silently
#: (a form Content-Type or an unknown Content-Encoding makes the server store nothing).
_OWNED_HEADERS = frozenset({"content-type", "content-encoding", "content-length", "host"})
_DEFAULT_LEVELS = {"gzip": 1, "zstd": 3, "none": 0}
_LEVEL_RANGES = {"gzip": (0, 9), "zstd": (1, 22), "none": (0, 0)}


#: How errors name each argument while :func:`naming` is in force (argument -> name).
_NAMES: ContextVar[Mapping[str, str] | None] = ContextVar("loguru_vlogs_error_names", default=None)


def label(argument: str) -> str:
    """The name an error gives ``argument``: the ``VLOGS_*`` variable its value came from
    (see :func:`naming`), else the argument itself."""
    names = _NAMES.get()
    return argument if names is None else names.get(argument, argument)


@contextmanager
def naming(names: Mapping[str, str]) -> Iterator[None]:
    """Errors raised within name ``argument`` as ``names[argument]`` (``from_env()``)."""
    token = _NAMES.set(names)
    try:
        yield
    finally:
        _NAMES.reset(token)


@dataclass(frozen=True)
class Endpoint:
    """One server base URL, without credentials, plus the insert URL derived from it."""

    base_url: str
    insert_url: str
    basic_auth: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def display(self) -> str:
        """The URL as it may appear in messages: never with credentials."""
        return self.base_url


@dataclass(frozen=True)
class Settings:
    """The sink's validated configuration (docs/options.md explains each field)."""

    endpoints: tuple[Endpoint, ...]
    stream_fields: tuple[str, ...]
    fields: Mapping[str, Any]
    service: str
    host: str
    batch_size: int
    batch_bytes: int
    flush_interval: float
    buffer_size: int
    buffer_bytes: int
    overflow: OverflowPolicy
    block_timeout: float
    compression: Compression
    compression_level: int
    timeout: float
    shutdown_timeout: float
    account_id: int | None
    project_id: int | None
    headers: Mapping[str, str] = field(repr=False)
    auth_header: str | None = field(repr=False)
    verify: bool
    ca_certs: str | None
    client_cert: str | None
    client_key: str | None
    backoff_base: float
    backoff_max: float
    retry_max_elapsed: float | None
    warn_interval: float
    spool_dir: str | None
    spool_max_bytes: int
    spool_fsync: str
    spool_threshold: int
    handle_sigterm: bool

    def request_headers(self, endpoint: Endpoint) -> dict[str, str]:
        """Headers of one insert request to ``endpoint`` (compression header added by the caller)."""
        headers = {"Content-Type": "application/stream+json", **self.headers}
        if self.account_id is not None:
            headers["AccountID"] = str(self.account_id)
        if self.project_id is not None:
            headers["ProjectID"] = str(self.project_id)
        if endpoint.basic_auth is not None:
            headers["Authorization"] = _basic(*endpoint.basic_auth)
        elif self.auth_header is not None:
            headers["Authorization"] = self.auth_header
        return headers


def default_service() -> str:
    """The program's name: the script's stem, or the module run with ``python -m``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        name = str(spec.name)
        return name.removesuffix(".__main__")
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 and argv0 not in ("-c", "-m", "-"):
        stem = os.path.splitext(os.path.basename(argv0))[0]
        if stem:
            return stem
    return "python"


def _basic(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _type_name(value: object) -> str:
    return type(value).__name__


def _number(name: str, value: object, *, positive: bool) -> float:
    """A finite int/float; ``positive``: > 0, else >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"Invalid {label(name)}: it should be a number, not {_type_name(value)}: {value!r}"
        )
    if not math.isfinite(value):
        raise ValueError(f"Invalid {label(name)}: it should be a finite number, not: {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(
            f"Invalid {label(name)}: it should be {'> 0' if positive else '>= 0'}, not: {value!r}"
        )
    return float(value)


def _integer(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"Invalid {label(name)}: it should be an integer, not {_type_name(value)}: {value!r}"
        )
    if value < minimum:
        raise ValueError(f"Invalid {label(name)}: it should be >= {minimum}, not: {value!r}")
    return value


def _check_field_name(argument: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(
            f"Invalid {label(argument)}: field names should be strings, not {_type_name(name)}: {name!r}"
        )
    if not name:
        raise ValueError(f"Invalid {label(argument)}: field names should not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(
            f"Invalid {label(argument)}: field name longer than {MAX_KEY_BYTES} bytes "
            f"(VictoriaLogs would spoil the line): {name[:40]!r}..."
        )
    if name in RESERVED_NAMES:
        raise ValueError(
            f"Invalid {label(argument)}: {name!r} is reserved by VictoriaLogs; "
            f"use another name than {sorted(RESERVED_NAMES)}"
        )
    return name


def parse_endpoint(url: object) -> Endpoint:
    """Validate one base URL; credentials in the userinfo become basic auth."""
    if not isinstance(url, str):
        raise TypeError(
            f"Invalid {label('url')}: it should be a string, not {_type_name(url)}: {url!r}"
        )
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"Invalid {label('url')}: it should start with 'http://' or 'https://' "
            f"(e.g. 'http://localhost:9428'), not: {_redact_url(url)!r}"
        )
    if not parts.hostname:
        raise ValueError(f"Invalid {label('url')}: it has no host name: {_redact_url(url)!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            f"Invalid {label('url')}: its port is not a number 0-65535: {_redact_url(url)!r}"
        ) from None
    if parts.query or parts.fragment:
        raise ValueError(
            f"Invalid {label('url')}: it should be the server's base URL without query or fragment "
            f"(the sink adds '/insert/jsonline'), not: {_redact_url(url)!r}"
        )
    basic = None
    if parts.username is not None or parts.password is not None:
        basic = (unquote(parts.username or ""), unquote(parts.password or ""))
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    if path.endswith("/insert/jsonline"):
        raise ValueError(
            f"Invalid {label('url')}: give the server's base URL (e.g. 'http://localhost:9428'); "
            f"the sink adds '/insert/jsonline' itself, got: {_redact_url(url)!r}"
        )
    base = urlunsplit((parts.scheme, netloc, path, "", ""))
    return Endpoint(base_url=base, insert_url=base + "/insert/jsonline", basic_auth=basic)


def _redact_url(url: str) -> str:
    """``url`` with any userinfo replaced, for error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.username is None and parts.password is None:
        return url
    netloc = "***@" + parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _check_path(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"Invalid {label(name)}: it should be a file path, not {_type_name(value)}")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ValueError(f"Invalid {label(name)}: no such file: {path!r}")
    return path


def _check_tenant(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"Invalid {label(name)}: it should be an integer 0..{_UINT32_MAX}, "
            f"not {_type_name(value)}: {value!r}"
        )
    if not 0 <= value <= _UINT32_MAX:
        raise ValueError(f"Invalid {label(name)}: it should be in 0..{_UINT32_MAX}, not: {value!r}")
    return value


def _check_headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError(
            f"Invalid {label('headers')}: it should be a mapping of str to str, not {_type_name(headers)}"
        )
    checked: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"Invalid {label('headers')}: names and values should be strings, not {key!r}: {_type_name(value)}"
            )
        if key.lower() in _OWNED_HEADERS:
            raise ValueError(
                f"Invalid {label('headers')}: {key!r} is set by the sink itself and cannot be overridden"
            )
        if any(c in key + value for c in "\r\n\0"):
            raise ValueError(f"Invalid {label('headers')}: {key!r} contains a line break or NUL")
        checked[key] = value
    return checked


def _check_fields(fields: object) -> dict[str, Any]:
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise TypeError(
            f"Invalid {label('fields')}: it should be a mapping of str to values, not {_type_name(fields)}"
        )
    checked: dict[str, Any] = {}
    for key, value in fields.items():
        _check_field_name("fields", key)
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(
                f"Invalid {label('fields')}: value of {key!r} should be str, int, float or bool, "
                f"not {_type_name(value)}"
            )
        checked[key] = value
    return checked


def _check_str(name: str, value: object, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise TypeError(
            f"Invalid {label(name)}: it should be a string, not {_type_name(value)}: {value!r}"
        )
    if not value:
        raise ValueError(f"Invalid {label(name)}: it should not be empty")
    return value


def build_settings(
    url: object,
    *,
    stream_fields: object,
    fields: object,
    service: object,
    host: object,
    batch_size: object,
    batch_bytes: object,
    flush_interval: object,
    buffer_size: object,
    buffer_bytes: object,
    overflow: object,
    block_timeout: object,
    compression: object,
    compression_level: object,
    timeout: object,
    shutdown_timeout: object,
    account_id: object,
    project_id: object,
    headers: object,
    auth: object,
    bearer_token: object,
    verify: object,
    ca_certs: object,
    client_cert: object,
    client_key: object,
    backoff_base: object,
    backoff_max: object,
    retry_max_elapsed: object,
    warn_interval: object,
    spool_dir: object,
    spool_max_bytes: object,
    spool_fsync: object,
    spool_threshold: object,
    handle_sigterm: object,
) -> Settings:
    """Validate every argument of ``VLogsSink`` and return the frozen settings."""
    urls: Sequence[object]
    if isinstance(url, (list, tuple)):
        if not url:
            raise ValueError(f"Invalid {label('url')}: the list of URLs is empty")
        urls = url
    else:
        urls = [url]
    endpoints = tuple(parse_endpoint(u) for u in urls)
    if len({e.base_url for e in endpoints}) != len(endpoints):
        raise ValueError(f"Invalid {label('url')}: the same URL is listed twice")

    if isinstance(stream_fields, str):
        stream_fields = [s.strip() for s in stream_fields.split(",") if s.strip()]
    if not isinstance(stream_fields, (list, tuple)):
        raise TypeError(
            f"Invalid {label('stream_fields')}: it should be a sequence of field names, "
            f"not {_type_name(stream_fields)}"
        )
    streams = tuple(_check_field_name("stream_fields", s) for s in stream_fields)
    for s in streams:
        # The list travels comma-separated, and the server answers every request with 400
        # when a name holds "=" or "}" (it cannot build the stream's text from it).
        if any(char in s for char in ",=}"):
            raise ValueError(
                f"Invalid {label('stream_fields')}: a name cannot contain ',', '=' or '}}': {s!r}"
            )

    batch_size = _integer("batch_size", batch_size, minimum=1)
    batch_bytes = _integer("batch_bytes", batch_bytes, minimum=1024)
    flush_interval = _number("flush_interval", flush_interval, positive=True)
    buffer_size = _integer("buffer_size", buffer_size, minimum=1)
    buffer_bytes = _integer("buffer_bytes", buffer_bytes, minimum=1024 * 1024)
    block_timeout = _number("block_timeout", block_timeout, positive=False)
    timeout = _number("timeout", timeout, positive=True)
    shutdown_timeout = _number("shutdown_timeout", shutdown_timeout, positive=False)
    backoff_base = _number("backoff_base", backoff_base, positive=True)
    backoff_max = _number("backoff_max", backoff_max, positive=True)
    warn_interval = _number("warn_interval", warn_interval, positive=False)
    max_elapsed = None
    if retry_max_elapsed is not None:
        max_elapsed = _number("retry_max_elapsed", retry_max_elapsed, positive=True)
    if batch_size > buffer_size:
        raise ValueError(
            f"Invalid {label('batch_size')}: it should not exceed buffer_size ({buffer_size}), not: {batch_size}"
        )
    directory = None
    if spool_dir is not None:
        if not isinstance(spool_dir, (str, os.PathLike)):
            raise TypeError(
                f"Invalid {label('spool_dir')}: it should be a directory path, not {_type_name(spool_dir)}"
            )
        directory = os.fspath(spool_dir)
        if not isinstance(directory, str) or not directory:
            raise ValueError(
                f"Invalid {label('spool_dir')}: it should be a non-empty path, not: {directory!r}"
            )
    spool_max = _integer("spool_max_bytes", spool_max_bytes, minimum=64 * 1024)
    if spool_fsync not in FSYNC_POLICIES:
        raise ValueError(
            f"Invalid {label('spool_fsync')}: it should be one of {list(FSYNC_POLICIES)}, not: {spool_fsync!r}"
        )
    threshold = batch_size
    if spool_threshold is not None:
        threshold = _integer("spool_threshold", spool_threshold, minimum=1)
    if backoff_max < backoff_base:
        raise ValueError(
            f"Invalid {label('backoff_max')}: it should be >= backoff_base ({backoff_base:g}), not: {backoff_max:g}"
        )

    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(
            f"Invalid {label('overflow')}: it should be one of {list(OVERFLOW_POLICIES)}, not: {overflow!r}"
        )
    if compression is None:
        compression = "none"
    if compression not in COMPRESSIONS:
        raise ValueError(
            f"Invalid {label('compression')}: it should be one of {list(COMPRESSIONS)}, not: {compression!r}"
        )
    if compression == "zstd":
        try:
            import zstandard  # noqa: F401 - optional extra, checked only when asked for
        except ImportError:
            raise ValueError(
                f"Invalid {label('compression')}: 'zstd' needs the optional extra: pip install 'loguru-vlogs[zstd]'"
            ) from None
    codec = str(compression)
    if compression_level is None:
        level = _DEFAULT_LEVELS[codec]
    else:
        if isinstance(compression_level, bool) or not isinstance(compression_level, int):
            raise TypeError(
                f"Invalid {label('compression_level')}: it should be an integer, not {_type_name(compression_level)}"
            )
        low, high = _LEVEL_RANGES[codec]
        if not low <= compression_level <= high:
            raise ValueError(
                f"Invalid {label('compression_level')}: for {compression!r} it should be in {low}..{high}, "
                f"not: {compression_level}"
            )
        level = compression_level

    extra_headers = _check_headers(headers)
    auth_header = None
    if auth is not None:
        if (
            not isinstance(auth, (tuple, list))
            or len(auth) != 2
            or not all(isinstance(a, str) for a in auth)
        ):
            raise TypeError(
                f"Invalid {label('auth')}: it should be a (username, password) tuple of strings"
            )
        auth_header = _basic(auth[0], auth[1])
    if bearer_token is not None:
        if not isinstance(bearer_token, str) or not bearer_token:
            raise TypeError(f"Invalid {label('bearer_token')}: it should be a non-empty string")
        if auth_header is not None:
            raise ValueError(
                f"Invalid {label('bearer_token')}: give either auth or bearer_token, not both"
            )
        auth_header = f"Bearer {bearer_token}"
    if any(e.basic_auth for e in endpoints) and auth_header is not None:
        raise ValueError(
            f"Invalid {label('url')}: it carries credentials and auth/bearer_token is given too; give one"
        )
    if auth_header is not None and "authorization" in {k.lower() for k in extra_headers}:
        raise ValueError(
            f"Invalid {label('headers')}: 'Authorization' conflicts with auth/bearer_token"
        )

    if not isinstance(verify, bool):
        raise TypeError(
            f"Invalid {label('verify')}: it should be True or False, not {_type_name(verify)}"
        )
    if not isinstance(handle_sigterm, bool):
        raise TypeError(
            f"Invalid {label('handle_sigterm')}: it should be True or False, "
            f"not {_type_name(handle_sigterm)}"
        )
    cert = _check_path("client_cert", client_cert)
    key = _check_path("client_key", client_key)
    if key is not None and cert is None:
        raise ValueError(f"Invalid {label('client_key')}: it needs client_cert too")

    static = _check_fields(fields)
    service_name = _check_str("service", service, default_service())
    host_name = _check_str("host", host, socket.gethostname() or "localhost")
    return Settings(
        endpoints=endpoints,
        stream_fields=streams,
        fields=static,
        service=service_name,
        host=host_name,
        batch_size=batch_size,
        batch_bytes=batch_bytes,
        flush_interval=flush_interval,
        buffer_size=buffer_size,
        buffer_bytes=buffer_bytes,
        overflow=overflow,  # type: ignore[arg-type]
        block_timeout=block_timeout,
        compression=codec,  # type: ignore[arg-type]
        compression_level=level,
        timeout=timeout,
        shutdown_timeout=shutdown_timeout,
        account_id=_check_tenant("account_id", account_id),
        project_id=_check_tenant("project_id", project_id),
        headers=extra_headers,
        auth_header=auth_header,
        verify=verify,
        ca_certs=_check_path("ca_certs", ca_certs),
        client_cert=cert,
        client_key=key,
        backoff_base=backoff_base,
        backoff_max=backoff_max,
        retry_max_elapsed=max_elapsed,
        warn_interval=warn_interval,
        spool_dir=directory,
        spool_max_bytes=spool_max,
        spool_fsync=str(spool_fsync),
        spool_threshold=threshold,
        handle_sigterm=handle_sigterm,
    )


def quote_query_value(value: str) -> str:
    """Percent-encode a query value but keep commas, which VictoriaLogs splits lists on."""
    return quote(value, safe=",")
