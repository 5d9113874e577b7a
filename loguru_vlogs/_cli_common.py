"""What the ``loguru-vlogs`` commands share: exit codes, usage errors, options -> sink.

The connection options of ``check``, ``ship`` and ``spool send`` become ``VLogsSink``
arguments here, so every command reads the ``VLOGS_*`` environment the same way.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import IO, Any

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


def connection_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Sink arguments given by the shared connection options (unset options left out)."""
    overrides: dict[str, Any] = {}
    if args.url is not None:
        urls = [u.strip() for u in args.url.split(",") if u.strip()]
        overrides["url"] = urls[0] if len(urls) == 1 else urls
    for name in ("account_id", "project_id", "bearer_token", "ca_certs", "timeout"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.insecure:
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
    from ._env import VARIABLES, sink_from_env
    from ._sink import VLogsSink

    if "auth" in overrides:
        # --user replaces VLOGS_USERNAME/VLOGS_PASSWORD: do not insist on the pair there.
        names = only if only is not None else [v.argument for v in VARIABLES]
        only = [name for name in names if name != "auth"]
    try:
        return sink_from_env(VLogsSink, overrides, only=only)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def isatty(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal; a closed or replaced stream (no ``isatty``) is not."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
