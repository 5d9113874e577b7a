"""``VLOGS_*`` environment variables -> ``VLogsSink`` keyword arguments (twelve-factor setup).

Which variable sets which argument, and how its text is read, comes from the one table of
options (:mod:`._options`, parsers in :mod:`._parse`). Range and consistency checks stay in
``_config``, and :func:`sink_from_env` names the variable in their errors.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ._config import naming
from ._diag import emit
from ._options import OPTIONS
from ._parse import Parser

__all__ = [
    "NAMES",
    "PREFIX",
    "VARIABLES",
    "Variable",
    "env_arguments",
    "resolve_sink_kwargs",
    "sink_from_env",
    "sink_kwargs_from_env",
    "unknown_variables",
]

PREFIX = "VLOGS_"
#: ``VLOGS_*`` names other parts of the package read (the pytest plugin), never typos.
_FOREIGN = frozenset({"VLOGS_BINARY"})


@dataclass(frozen=True)
class Variable:
    """One environment variable: the sink argument it sets and how its text is read."""

    name: str
    argument: str
    parse: Parser


#: Every variable, in the order of :data:`._options.OPTIONS` (and of the table in
#: docs/configuration.md). ``VLOGS_USERNAME``/``VLOGS_PASSWORD`` are read together into
#: ``auth`` (see :func:`sink_kwargs_from_env`).
VARIABLES: tuple[Variable, ...] = tuple(
    Variable(option.variable, option.name, option.parse)
    for option in OPTIONS
    if option.parse is not None
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
    shown: Mapping[str, str] | None = None,
) -> Any:
    """``factory(**kwargs)`` from the environment and ``overrides`` (explicit arguments win).

    A validation error about an argument that came from the environment names the variable:
    ``Invalid VLOGS_BATCH_SIZE: it should be >= 1, not: 0``. ``only``: take just these
    arguments from the environment. ``shown``: how errors name some overrides (a command
    line's flags).
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
    # Validation names an argument that came from the environment after its variable.
    with naming({**from_env, **(shown or {})}):
        return factory(**kwargs)
