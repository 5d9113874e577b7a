"""One table of options (loguru_vlogs._options): the signature, the environment, the command
line and the docs' option tables all agree with it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pytest

from loguru_vlogs import VLogsSink
from loguru_vlogs._env import VARIABLES
from loguru_vlogs._options import OPTIONS, REQUIRED, options_table, variables_table
from loguru_vlogs.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_the_signature_has_the_tables_names_order_and_defaults() -> None:
    """VLogsSink(url, *, ...) spells out exactly the table's options and defaults."""
    params = inspect.signature(VLogsSink).parameters.values()
    signature = [
        (p.name, REQUIRED if p.default is inspect.Parameter.empty else p.default) for p in params
    ]
    assert [(o.name, o.default) for o in OPTIONS] == signature


def test_every_option_but_auth_has_its_own_variable() -> None:
    """VLOGS_ + NAME, read by the table's parser (auth: VLOGS_USERNAME/VLOGS_PASSWORD)."""
    expected = [(o.variable, o.name) for o in OPTIONS if o.name != "auth"]
    assert expected == [(v.name, v.argument) for v in VARIABLES]


@pytest.mark.parametrize(
    ("page", "table"),
    [("options.md", options_table), ("configuration.md", variables_table)],
)
def test_the_docs_option_tables_are_the_tables_rendering(
    page: str, table: Callable[[], str]
) -> None:
    """docs/options.md and docs/configuration.md hold the tables rendered from OPTIONS
    (refresh them with `python -m loguru_vlogs._options`)."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert table() in text


def test_every_flag_of_the_table_is_a_flag_of_the_command_line() -> None:
    """Each option's flag is offered by the command that ships (ship) or checks (check)."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    offered = {
        flag
        for name in ("check", "ship", "spool")
        for action in commands[name]._actions
        for flag in action.option_strings
    }
    for sub in commands["spool"]._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        offered |= {flag for action in sub._actions for flag in action.option_strings}
    flags = {part for o in OPTIONS if o.flag for part in o.flag.split("/")}
    assert set() == flags - offered
