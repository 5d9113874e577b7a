"""``VLOGS_*`` environment variables -> ``VLogsSink`` keyword arguments (twelve-factor setup).

One parser per kind of value; every error names the variable, says what is expected and
shows what was found (never the value of a secret). Range and consistency checks stay in
``_config`` — one source of truth — and :func:`sink_from_env` renames their errors after
the variable that supplied the argument.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ._diag import emit

PREFIX = "VLOGS_"
#: ``VLOGS_*`` names other parts of the package read (the pytest plugin), never typos.
_FOREIGN = frozenset({"VLOGS_BINARY"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# The VictoriaLogs flag convention: KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^(\d[\d_]*)\s*([a-z]*)$", re.IGNORECASE)
_SECONDS = re.compile(r"^([0-9.eE+-]+?)\s*(ms|s|m|h|d)?$")
_SECONDS_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}

Parser = Callable[[str, str], Any]


def _show(value: str, secret: bool) -> str:
    return "<hidden>" if secret else repr(value)


def parse_text(variable: str, raw: str) -> str:
    """A non-empty string, surrounding blanks removed."""
    return raw.strip()


def parse_integer(variable: str, raw: str) -> int:
    """A decimal integer (``1_000`` allowed)."""
    try:
        return int(raw.strip(), 10)
    except ValueError:
        raise ValueError(f"Invalid {variable}: it should be an integer, not: {raw!r}") from None


def parse_bytes(variable: str, raw: str) -> int:
    """A byte count, optionally with a unit: ``1048576``, ``512KiB``, ``1MiB``, ``10MB``."""
    match = _SIZE.match(raw.strip())
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(
            f"Invalid {variable}: it should be a number of bytes such as 1048576, 512KiB "
            f"or 1MiB (KB/MB/GB: powers of 1000), not: {raw!r}"
        )
    return int(match.group(1), 10) * _SIZE_UNITS[unit]


def parse_seconds(variable: str, raw: str) -> float:
    """A duration in seconds: ``1.5``, or with a unit: ``1500ms``, ``2s``, ``1m``, ``2h``, ``7d``."""
    match = _SECONDS.match(raw.strip())
    try:
        number = float(match.group(1)) if match else None
    except ValueError:
        number = None
    if match is None or number is None:
        raise ValueError(
            f"Invalid {variable}: it should be a number of seconds such as 1.5 "
            f"(or 1500ms, 2s, 1m, 2h, 7d), not: {raw!r}"
        )
    return number * _SECONDS_UNITS[match.group(2)]


def parse_time_window(variable: str, raw: str) -> tuple[float, float] | None:
    """``MAX_AGE,MAX_FUTURE`` durations (``7d,2d``), or ``none`` to send every time as it is."""
    text = raw.strip()
    if text.lower() == "none":
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(
            f"Invalid {variable}: it should be MAX_AGE,MAX_FUTURE durations such as 7d,2d "
            f"(or none), not: {raw!r}"
        )
    return parse_seconds(variable, parts[0]), parse_seconds(variable, parts[1])


def parse_optional_bytes(variable: str, raw: str) -> int | None:
    """:func:`parse_bytes`, or ``none`` for no limit."""
    return None if raw.strip().lower() == "none" else parse_bytes(variable, raw)


def parse_boolean(variable: str, raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, any case."""
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(
        f"Invalid {variable}: it should be one of 1/true/yes/on or 0/false/no/off, not: {raw!r}"
    )


def parse_names(variable: str, raw: str) -> tuple[str, ...]:
    """Comma-separated names: ``service,host``."""
    names = tuple(n.strip() for n in raw.split(","))
    if any(not n for n in names):
        raise ValueError(
            f"Invalid {variable}: it should be comma-separated names such as "
            f"'service,host', with no empty name, not: {raw!r}"
        )
    return names


def parse_urls(variable: str, raw: str) -> str | list[str]:
    """One base URL, or several separated by commas (a cluster's vlinsert nodes)."""
    urls = [u.strip() for u in raw.split(",")]
    if any(not u for u in urls):
        # The URL may carry credentials: show the shape, not the text.
        raise ValueError(
            f"Invalid {variable}: it should be a URL or comma-separated URLs with no empty "
            f"entry, got {len(urls)} entries of which {sum(not u for u in urls)} empty"
        )
    return urls[0] if len(urls) == 1 else urls


def _pairs(variable: str, raw: str, secret: bool) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for position, item in enumerate(raw.split(","), start=1):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            shown = f"entry {position}" if secret else repr(item)
            raise ValueError(
                f"Invalid {variable}: it should be comma-separated key=value pairs such as "
                f"'env=prod,team=core', not: {shown} in {_show(raw, secret)}"
            )
        if key in pairs:
            raise ValueError(f"Invalid {variable}: {key!r} is given twice")
        pairs[key] = value.strip()
    return pairs


def parse_pairs(variable: str, raw: str) -> dict[str, str]:
    """``key=value`` pairs separated by commas: ``env=prod,team=core`` (values: strings)."""
    return _pairs(variable, raw, secret=False)


def parse_secret_pairs(variable: str, raw: str) -> dict[str, str]:
    """:func:`parse_pairs` for values that may be secrets (headers): errors never show them."""
    return _pairs(variable, raw, secret=True)


@dataclass(frozen=True)
class Variable:
    """One environment variable: the sink argument it sets and how its text is read."""

    name: str
    argument: str
    parse: Parser


#: Every variable, in the order of the table in docs/configuration.md. ``VLOGS_USERNAME``/``VLOGS_PASSWORD``
#: are read together into ``auth`` (see :func:`sink_kwargs_from_env`).
VARIABLES: tuple[Variable, ...] = (
    Variable("VLOGS_URL", "url", parse_urls),
    Variable("VLOGS_STREAM_FIELDS", "stream_fields", parse_names),
    Variable("VLOGS_FIELDS", "fields", parse_pairs),
    Variable("VLOGS_SERVICE", "service", parse_text),
    Variable("VLOGS_HOST", "host", parse_text),
    Variable("VLOGS_BATCH_SIZE", "batch_size", parse_integer),
    Variable("VLOGS_BATCH_BYTES", "batch_bytes", parse_bytes),
    Variable("VLOGS_FLUSH_INTERVAL", "flush_interval", parse_seconds),
    Variable("VLOGS_BUFFER_SIZE", "buffer_size", parse_integer),
    Variable("VLOGS_BUFFER_BYTES", "buffer_bytes", parse_bytes),
    Variable("VLOGS_OVERFLOW", "overflow", parse_text),
    Variable("VLOGS_BLOCK_TIMEOUT", "block_timeout", parse_seconds),
    Variable("VLOGS_COMPRESSION", "compression", parse_text),
    Variable("VLOGS_COMPRESSION_LEVEL", "compression_level", parse_integer),
    Variable("VLOGS_TIMEOUT", "timeout", parse_seconds),
    Variable("VLOGS_SHUTDOWN_TIMEOUT", "shutdown_timeout", parse_seconds),
    Variable("VLOGS_ACCOUNT_ID", "account_id", parse_integer),
    Variable("VLOGS_PROJECT_ID", "project_id", parse_integer),
    Variable("VLOGS_HEADERS", "headers", parse_secret_pairs),
    Variable("VLOGS_BEARER_TOKEN", "bearer_token", parse_text),
    Variable("VLOGS_VERIFY", "verify", parse_boolean),
    Variable("VLOGS_CA_CERTS", "ca_certs", parse_text),
    Variable("VLOGS_CLIENT_CERT", "client_cert", parse_text),
    Variable("VLOGS_CLIENT_KEY", "client_key", parse_text),
    Variable("VLOGS_BACKOFF_BASE", "backoff_base", parse_seconds),
    Variable("VLOGS_BACKOFF_MAX", "backoff_max", parse_seconds),
    Variable("VLOGS_RETRY_MAX_ELAPSED", "retry_max_elapsed", parse_seconds),
    Variable("VLOGS_WARN_INTERVAL", "warn_interval", parse_seconds),
    Variable("VLOGS_SPOOL_DIR", "spool_dir", parse_text),
    Variable("VLOGS_SPOOL_MAX_BYTES", "spool_max_bytes", parse_bytes),
    Variable("VLOGS_SPOOL_FSYNC", "spool_fsync", parse_text),
    Variable("VLOGS_SPOOL_THRESHOLD", "spool_threshold", parse_integer),
    Variable("VLOGS_MAX_MESSAGE_BYTES", "max_message_bytes", parse_optional_bytes),
    Variable("VLOGS_TIME_WINDOW", "time_window", parse_time_window),
)
_AUTH_VARIABLES = ("VLOGS_USERNAME", "VLOGS_PASSWORD")
#: Every variable name this module reads.
NAMES: tuple[str, ...] = (*(v.name for v in VARIABLES), *_AUTH_VARIABLES)


def _read(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's text, or None when it is unset or blank (blank means unset)."""
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return None
    return raw


def env_arguments(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{argument: variable}`` for every argument the environment sets."""
    env = os.environ if environ is None else environ
    found = {v.argument: v.name for v in VARIABLES if _read(env, v.name) is not None}
    if any(_read(env, name) is not None for name in _AUTH_VARIABLES):
        found["auth"] = "VLOGS_USERNAME/VLOGS_PASSWORD"
    return found


def sink_kwargs_from_env(
    environ: Mapping[str, str] | None = None, *, only: Collection[str] | None = None
) -> dict[str, Any]:
    """``VLogsSink`` keyword arguments from the ``VLOGS_*`` variables of ``environ``.

    ``environ`` defaults to ``os.environ``. Unset or blank variables are left out, so
    ``url`` is absent when ``VLOGS_URL`` is not set. ``only``: read just these arguments.
    Raises ``ValueError`` naming the variable when a value cannot be read.
    """
    env = os.environ if environ is None else environ
    kwargs: dict[str, Any] = {}
    for variable in VARIABLES:
        raw = _read(env, variable.name)
        if raw is None or (only is not None and variable.argument not in only):
            continue
        kwargs[variable.argument] = variable.parse(variable.name, raw)
    if only is not None and "auth" not in only:
        return kwargs
    user = _read(env, "VLOGS_USERNAME")
    password = _read(env, "VLOGS_PASSWORD")
    if (user is None) != (password is None):
        given, missing = _AUTH_VARIABLES if password is None else _AUTH_VARIABLES[::-1]
        raise ValueError(f"Invalid {given}: basic auth needs {missing} too")
    if user is not None and password is not None:
        # A password may rightly begin or end with blanks: only the user name is stripped.
        kwargs["auth"] = (user.strip(), password)
    return kwargs


def unknown_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{name: likely meant}`` for ``VLOGS_*`` names that look like typos of ours."""
    env = os.environ if environ is None else environ
    unknown: dict[str, str] = {}
    for name in env:
        if not name.startswith(PREFIX) or name in NAMES or name in _FOREIGN:
            continue
        close = difflib.get_close_matches(name, NAMES, n=1, cutoff=0.8)
        if close:
            unknown[name] = close[0]
    return unknown


_INVALID = re.compile(r"^Invalid (\w+)(.*)$", re.DOTALL)


def resolve_sink_kwargs(
    overrides: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """The environment's arguments with ``overrides`` on top; ``url`` required from either."""
    kwargs = {**sink_kwargs_from_env(environ, only=only), **overrides}
    if "url" not in kwargs:
        raise ValueError(
            "Invalid VLOGS_URL: it is not set and no url was given; set it to the server's "
            "base URL (e.g. VLOGS_URL=http://localhost:9428) or pass url=..."
        )
    return kwargs


def sink_from_env(
    factory: Callable[..., Any],
    overrides: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    only: Collection[str] | None = None,
) -> Any:
    """``factory(**kwargs)`` from the environment and ``overrides`` (explicit arguments win).

    A validation error about an argument that came from the environment is raised again
    under the variable's name: ``Invalid VLOGS_BATCH_SIZE: it should be >= 1, not: 0``.
    ``only``: take just these arguments from the environment.
    """
    env = os.environ if environ is None else environ
    for name, meant in unknown_variables(env).items():
        emit(f"ignoring the unknown environment variable {name} (did you mean {meant}?)")
    kwargs = resolve_sink_kwargs(overrides, env, only=only)
    from_env = {
        a: v
        for a, v in env_arguments(env).items()
        if a not in overrides and (only is None or a in only)
    }
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:
        match = _INVALID.match(str(exc))
        if match is None or match.group(1) not in from_env:
            raise
        raise type(exc)(f"Invalid {from_env[match.group(1)]}{match.group(2)}") from None
