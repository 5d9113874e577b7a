"""What the ``loguru-vlogs`` commands share: exit codes, usage errors, options -> sink.

A command-line flag is an option of the table (:mod:`._options`): :func:`add_flag` declares
it with the table's variable and default in its help, :func:`flag_overrides` reads it with
the table's parser. The connection options of ``check``, ``ship`` and ``spool send`` become
``VLogsSink`` arguments here, so every command reads the ``VLOGS_*`` environment the same way.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A configuration problem reported as ``loguru-vlogs CMD: error: ...`` with exit code 2."""


#: What ``check`` needs of the sink's configuration (never the spool: checking has no side effects).
CHECK_ARGUMENTS = (
    "url",
    "account_id",
    "project_id",
    "headers",
    "auth",
    "bearer_token",
    "verify",
    "ca_certs",
    "client_cert",
    "client_key",
    "timeout",
)


def add_flag(group: Any, name: str, text: str, **argparse_options: Any) -> None:
    """Declare option ``name``'s flag (the table's) on ``group``: its help is ``text`` plus the
    option's variable and default, from the table. The value stays text until
    :func:`flag_overrides` reads it."""
    from ._options import BY_NAME

    option = BY_NAME[name]
    if option.flag is None:
        raise ValueError(f"{name} has no flag in the table of options")
    default = option.default_text.replace("`", "")
    argparse_options.setdefault("dest", name)
    group.add_argument(
        option.flag,
        help=f"{text} (env {option.variable}, default {default})",
        **argparse_options,
    )


def flag_overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """Sink arguments of the flags ``names`` that were given, each read by the table's parser
    (errors name the flag)."""
    from ._options import BY_NAME

    overrides: dict[str, Any] = {}
    for name in names:
        text = getattr(args, name, None)
        if text is None:
            continue
        option = BY_NAME[name]
        assert option.parse is not None
        assert option.flag is not None
        try:
            overrides[name] = option.parse(option.flag, text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return overrides


def connection_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Sink arguments given by the shared connection options (unset options left out)."""
    overrides = flag_overrides(
        args, ("url", "account_id", "project_id", "bearer_token", "ca_certs", "timeout")
    )
    if args.verify is False:  # --insecure
        overrides["verify"] = False
    if args.user is not None:
        # The password may come from the environment: command lines are visible to others.
        password = args.password if args.password is not None else os.environ.get("VLOGS_PASSWORD")
        if password is None:
            raise UsageError("--user needs --password or VLOGS_PASSWORD")
        overrides["auth"] = (args.user, password)
    elif args.password is not None:
        raise UsageError("--password needs --user")
    return overrides


def build_sink(overrides: dict[str, Any], only: Sequence[str] | None = None) -> Any:
    """A ``VLogsSink`` from the environment and ``overrides``; bad values -> :class:`UsageError`."""
    from ._sink import VLogsSink

    return _from_env(VLogsSink, overrides, only)


def build_settings(overrides: dict[str, Any], only: Sequence[str] | None = None) -> Settings:
    """The settings a sink would have (no sink made): environment, then ``overrides``."""
    from ._options import build_settings as settings_of

    settings: Settings = _from_env(settings_of, overrides, only)
    return settings


def _from_env(factory: Any, overrides: dict[str, Any], only: Sequence[str] | None) -> Any:
    from ._env import VARIABLES, sink_from_env
    from ._options import BY_NAME

    # What a command puts in overrides comes from its flags: errors name the flag.
    flags = {name: BY_NAME[name].flag for name in overrides if name in BY_NAME}
    shown = {name: flag for name, flag in flags.items() if flag is not None}

    if "auth" in overrides:
        # --user replaces VLOGS_USERNAME/VLOGS_PASSWORD: do not insist on the pair there.
        names = only if only is not None else [v.argument for v in VARIABLES]
        only = [name for name in names if name != "auth"]
    try:
        return sink_from_env(factory, overrides, only=only, shown=shown)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def isatty(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal; a closed or replaced stream (no ``isatty``) is not."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
