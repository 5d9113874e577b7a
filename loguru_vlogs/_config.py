"""The checks of the options and the frozen settings they make.

The table of options (:mod:`._options`) gives each option its check here; :func:`settle` adds
the checks that involve several options. Every check names the argument (or the ``VLOGS_*``
variable its value came from), says what is allowed and shows what was received, so a
misconfiguration fails at ``VLogsSink(...)`` and never later, inside the worker thread.
"""

from __future__ import annotations

import base64
import math
import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ._limits import MAX_KEY_BYTES

#: What ``write()`` does when the buffer is full (docs/options.md).
OverflowPolicy = Literal["drop_oldest", "drop_newest", "block"]
#: Request body compression.
Compression = Literal["gzip", "zstd", "none"]

OVERFLOW_POLICIES: tuple[str, ...] = get_args(OverflowPolicy)
COMPRESSIONS: tuple[str, ...] = get_args(Compression)

#: Names VictoriaLogs reserves; a stream field or static field must not use them.
RESERVED_NAMES = frozenset({"_msg", "_time", "_stream", "_stream_id"})
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
    max_message_bytes: int | None
    time_window: tuple[float, float] | None
    handle_sigterm: bool
    trace_context: bool
    on_drop: Callable[[str, int], object] | None = field(repr=False, compare=False)

    def request_headers(self, endpoint: Endpoint) -> dict[str, str]:
        """Headers of one insert request to ``endpoint`` (compression header added by the caller)."""
        headers = {"Content-Type": "application/stream+json", **self.headers}
        if self.account_id is not None:
            headers["AccountID"] = str(self.account_id)
        if self.project_id is not None:
            headers["ProjectID"] = str(self.project_id)
        if endpoint.basic_auth is not None:
            headers["Authorization"] = basic_auth_header(*endpoint.basic_auth)
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


def default_host() -> str:
    """This machine's host name."""
    return socket.gethostname() or "localhost"


def basic_auth_header(user: str, password: str) -> str:
    """The ``Authorization`` value of basic auth."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _type_name(value: object) -> str:
    return type(value).__name__


# -- checks of one option ----------------------------------------------------------------------
# Each takes the name an error gives the option (the argument, or its VLOGS_* variable) and
# the value given, and returns the value the settings keep. The table of options
# (:mod:`._options`) says which check reads which option.

#: ``check(shown, value) -> value kept``
Check = Callable[[str, Any], Any]


def number(*, positive: bool) -> Check:
    """A finite int/float, as float; ``positive``: > 0, else >= 0."""

    def check(shown: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"Invalid {shown}: it should be a number, not {_type_name(value)}: {value!r}"
            )
        if not math.isfinite(value):
            raise ValueError(f"Invalid {shown}: it should be a finite number, not: {value!r}")
        if value < 0 or (positive and value == 0):
            raise ValueError(
                f"Invalid {shown}: it should be {'> 0' if positive else '>= 0'}, not: {value!r}"
            )
        return float(value)

    return check


def integer(*, minimum: int) -> Check:
    """An int (not a bool) of at least ``minimum``."""

    def check(shown: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"Invalid {shown}: it should be an integer, not {_type_name(value)}: {value!r}"
            )
        if value < minimum:
            raise ValueError(f"Invalid {shown}: it should be >= {minimum}, not: {value!r}")
        return value

    return check


def optional(inner: Check) -> Check:
    """``None``, or what ``inner`` accepts."""

    def check(shown: str, value: object) -> Any:
        return None if value is None else inner(shown, value)

    return check


def one_of(choices: tuple[str, ...]) -> Check:
    """One of ``choices``."""

    def check(shown: str, value: object) -> str:
        if value not in choices:
            raise ValueError(
                f"Invalid {shown}: it should be one of {list(choices)}, not: {value!r}"
            )
        return str(value)

    return check


def check_bool(shown: str, value: object) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise TypeError(f"Invalid {shown}: it should be True or False, not {_type_name(value)}")
    return value


def check_callback(shown: str, value: object) -> Callable[[str, int], object] | None:
    """A callable ``(reason, count)``, or None."""
    if value is None:
        return None
    if not callable(value):
        raise TypeError(
            f"Invalid {shown}: it should be a callable (reason, count) or None, "
            f"not {_type_name(value)}: {value!r}"
        )
    return value


def _field_name(shown: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(
            f"Invalid {shown}: field names should be strings, not {_type_name(name)}: {name!r}"
        )
    if not name:
        raise ValueError(f"Invalid {shown}: field names should not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(
            f"Invalid {shown}: field name longer than {MAX_KEY_BYTES} bytes "
            f"(VictoriaLogs would spoil the line): {name[:40]!r}..."
        )
    if name in RESERVED_NAMES:
        raise ValueError(
            f"Invalid {shown}: {name!r} is reserved by VictoriaLogs; "
            f"use another name than {sorted(RESERVED_NAMES)}"
        )
    return name


def check_urls(shown: str, url: object) -> tuple[Endpoint, ...]:
    """One base URL or a non-empty list of distinct ones."""
    urls: Sequence[object]
    if isinstance(url, (list, tuple)):
        if not url:
            raise ValueError(f"Invalid {shown}: the list of URLs is empty")
        urls = url
    else:
        urls = [url]
    endpoints = tuple(parse_endpoint(u, shown) for u in urls)
    if len({e.base_url for e in endpoints}) != len(endpoints):
        raise ValueError(f"Invalid {shown}: the same URL is listed twice")
    return endpoints


def parse_endpoint(url: object, shown: str = "url") -> Endpoint:
    """Validate one base URL; credentials in the userinfo become basic auth."""
    if not isinstance(url, str):
        raise TypeError(f"Invalid {shown}: it should be a string, not {_type_name(url)}: {url!r}")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"Invalid {shown}: it should start with 'http://' or 'https://' "
            f"(e.g. 'http://localhost:9428'), not: {_redact_url(url)!r}"
        )
    if not parts.hostname:
        raise ValueError(f"Invalid {shown}: it has no host name: {_redact_url(url)!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            f"Invalid {shown}: its port is not a number 0-65535: {_redact_url(url)!r}"
        ) from None
    if parts.query or parts.fragment:
        raise ValueError(
            f"Invalid {shown}: it should be the server's base URL without query or fragment "
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
            f"Invalid {shown}: give the server's base URL (e.g. 'http://localhost:9428'); "
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


def check_stream_fields(shown: str, value: object) -> tuple[str, ...]:
    """Field names (a sequence, or one comma-separated string)."""
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",") if s.strip()]
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"Invalid {shown}: it should be a sequence of field names, not {_type_name(value)}"
        )
    streams = tuple(_field_name(shown, s) for s in value)
    for s in streams:
        # The list travels comma-separated, and the server answers every request with 400
        # when a name holds "=" or "}" (it cannot build the stream's text from it).
        if any(char in s for char in ",=}"):
            raise ValueError(f"Invalid {shown}: a name cannot contain ',', '=' or '}}': {s!r}")
    return streams


def check_fields(shown: str, fields: object) -> dict[str, Any]:
    """A mapping of field names to str/int/float/bool (None: no fields)."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise TypeError(
            f"Invalid {shown}: it should be a mapping of str to values, not {_type_name(fields)}"
        )
    checked: dict[str, Any] = {}
    for key, value in fields.items():
        _field_name(shown, key)
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(
                f"Invalid {shown}: value of {key!r} should be str, int, float or bool, "
                f"not {_type_name(value)}"
            )
        checked[key] = value
    return checked


def text_or(default: Callable[[], str]) -> Check:
    """A non-empty string; None gives ``default()``."""

    def check(shown: str, value: object) -> str:
        if value is None:
            return default()
        if not isinstance(value, str):
            raise TypeError(
                f"Invalid {shown}: it should be a string, not {_type_name(value)}: {value!r}"
            )
        if not value:
            raise ValueError(f"Invalid {shown}: it should not be empty")
        return value

    return check


def check_compression(shown: str, value: object) -> str:
    """One of COMPRESSIONS (None means "none"); zstd needs its extra."""
    codec: str = one_of(COMPRESSIONS)(shown, "none" if value is None else value)
    if codec == "zstd":
        try:
            import zstandard  # noqa: F401 - optional extra, checked only when asked for
        except ImportError:
            raise ValueError(
                f"Invalid {shown}: 'zstd' needs the optional extra: pip install 'loguru-vlogs[zstd]'"
            ) from None
    return codec


def check_level(shown: str, value: object) -> int | None:
    """An integer or None; its range depends on the compression (see :func:`settle`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Invalid {shown}: it should be an integer, not {_type_name(value)}")
    return value


def check_tenant(shown: str, value: object) -> int | None:
    """A uint32 (digits accepted) or None."""
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"Invalid {shown}: it should be an integer 0..{_UINT32_MAX}, "
            f"not {_type_name(value)}: {value!r}"
        )
    if not 0 <= value <= _UINT32_MAX:
        raise ValueError(f"Invalid {shown}: it should be in 0..{_UINT32_MAX}, not: {value!r}")
    return value


def check_headers(shown: str, headers: object) -> dict[str, str]:
    """A mapping of str to str, without the headers the sink owns (None: no headers)."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError(
            f"Invalid {shown}: it should be a mapping of str to str, not {_type_name(headers)}"
        )
    checked: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"Invalid {shown}: names and values should be strings, not {key!r}: {_type_name(value)}"
            )
        if key.lower() in _OWNED_HEADERS:
            raise ValueError(
                f"Invalid {shown}: {key!r} is set by the sink itself and cannot be overridden"
            )
        if any(c in key + value for c in "\r\n\0"):
            raise ValueError(f"Invalid {shown}: {key!r} contains a line break or NUL")
        checked[key] = value
    return checked


def check_auth(shown: str, value: object) -> tuple[str, str] | None:
    """A ``(username, password)`` pair of strings, or None."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"Invalid {shown}: it should be a (username, password) tuple of strings")
    user, password = value
    if not isinstance(user, str) or not isinstance(password, str):
        raise TypeError(f"Invalid {shown}: it should be a (username, password) tuple of strings")
    return (user, password)


def check_token(shown: str, value: object) -> str | None:
    """A non-empty string, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"Invalid {shown}: it should be a non-empty string")
    return value


def check_file(shown: str, value: object) -> str | None:
    """The path of an existing file (str or os.PathLike), or None."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"Invalid {shown}: it should be a file path, not {_type_name(value)}")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ValueError(f"Invalid {shown}: no such file: {path!r}")
    return path


def check_directory(shown: str, value: object) -> str | None:
    """A non-empty directory path (str or os.PathLike; need not exist yet), or None."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"Invalid {shown}: it should be a directory path, not {_type_name(value)}")
    directory = os.fspath(value)
    if not isinstance(directory, str) or not directory:
        raise ValueError(f"Invalid {shown}: it should be a non-empty path, not: {directory!r}")
    return directory


def settle(values: Mapping[str, Any]) -> Settings:
    """The settings from every option's checked value (``values``): the checks that involve
    several options, and the values one option derives from another."""
    if values["batch_size"] > values["buffer_size"]:
        raise ValueError(
            f"Invalid {label('batch_size')}: it should not exceed buffer_size "
            f"({values['buffer_size']}), not: {values['batch_size']}"
        )
    if values["backoff_max"] < values["backoff_base"]:
        raise ValueError(
            f"Invalid {label('backoff_max')}: it should be >= backoff_base "
            f"({values['backoff_base']:g}), not: {values['backoff_max']:g}"
        )
    codec = values["compression"]
    level = values["compression_level"]
    if level is None:
        level = _DEFAULT_LEVELS[codec]
    low, high = _LEVEL_RANGES[codec]
    if not low <= level <= high:
        raise ValueError(
            f"Invalid {label('compression_level')}: for {codec!r} it should be in {low}..{high}, "
            f"not: {level}"
        )
    auth, token = values["auth"], values["bearer_token"]
    if auth is not None and token is not None:
        raise ValueError(
            f"Invalid {label('bearer_token')}: give either auth or bearer_token, not both"
        )
    auth_header = None
    if auth is not None:
        auth_header = basic_auth_header(*auth)
    elif token is not None:
        auth_header = f"Bearer {token}"
    endpoints: tuple[Endpoint, ...] = values["url"]
    if auth_header is not None and any(e.basic_auth for e in endpoints):
        raise ValueError(
            f"Invalid {label('url')}: it carries credentials and auth/bearer_token is given too; give one"
        )
    if auth_header is not None and "authorization" in {k.lower() for k in values["headers"]}:
        raise ValueError(
            f"Invalid {label('headers')}: 'Authorization' conflicts with auth/bearer_token"
        )
    if values["client_key"] is not None and values["client_cert"] is None:
        raise ValueError(f"Invalid {label('client_key')}: it needs client_cert too")
    window = values["time_window"]
    return Settings(
        endpoints=endpoints,
        stream_fields=values["stream_fields"],
        fields=values["fields"],
        service=values["service"],
        host=values["host"],
        batch_size=values["batch_size"],
        batch_bytes=values["batch_bytes"],
        flush_interval=values["flush_interval"],
        buffer_size=values["buffer_size"],
        buffer_bytes=values["buffer_bytes"],
        overflow=values["overflow"],
        block_timeout=values["block_timeout"],
        compression=codec,
        compression_level=level,
        timeout=values["timeout"],
        shutdown_timeout=values["shutdown_timeout"],
        account_id=values["account_id"],
        project_id=values["project_id"],
        headers=values["headers"],
        auth_header=auth_header,
        verify=values["verify"],
        ca_certs=values["ca_certs"],
        client_cert=values["client_cert"],
        client_key=values["client_key"],
        backoff_base=values["backoff_base"],
        backoff_max=values["backoff_max"],
        retry_max_elapsed=values["retry_max_elapsed"],
        warn_interval=values["warn_interval"],
        spool_dir=values["spool_dir"],
        spool_max_bytes=values["spool_max_bytes"],
        spool_fsync=values["spool_fsync"],
        spool_threshold=(
            values["batch_size"] if values["spool_threshold"] is None else values["spool_threshold"]
        ),
        max_message_bytes=values["max_message_bytes"],
        time_window=None if window is None else (float(window[0]), float(window[1])),
        handle_sigterm=values["handle_sigterm"],
        trace_context=values["trace_context"],
        on_drop=values["on_drop"],
    )


def quote_query_value(value: str) -> str:
    """Percent-encode a query value but keep commas, which VictoriaLogs splits lists on."""
    return quote(value, safe=",")
