"""One table of options (loguru_vlogs._options): the signature, the environment, the command
line and the docs' option tables all agree with it."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loguru_vlogs import VLogsHandler, VLogsSink
from loguru_vlogs._config import naming
from loguru_vlogs._env import VARIABLES
from loguru_vlogs._options import (
    OPTIONS,
    REQUIRED,
    Option,
    build_settings,
    options_table,
    variables_table,
)
from loguru_vlogs.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("front", [VLogsSink, VLogsHandler], ids=lambda f: f.__name__)
def test_the_signature_has_the_tables_names_order_and_defaults(front: type) -> None:
    """VLogsSink(url, *, ...) and VLogsHandler(url, *, ..., level) spell out exactly the
    table's options and defaults (the handler's level is logging's own)."""
    params = inspect.signature(front).parameters.values()
    signature = [
        (p.name, REQUIRED if p.default is inspect.Parameter.empty else p.default)
        for p in params
        if p.name != "level" or front is not VLogsHandler
    ]
    assert [(o.name, o.default) for o in OPTIONS] == signature


def test_the_fronts_annotate_every_option_alike() -> None:
    """The same type for each option in both signatures (one table, two fronts)."""
    sink = inspect.signature(VLogsSink).parameters
    handler = inspect.signature(VLogsHandler).parameters
    assert {n: p.annotation for n, p in sink.items()} == {
        n: p.annotation for n, p in handler.items() if n != "level"
    }


def test_every_option_but_auth_has_its_own_variable() -> None:
    """VLOGS_ + NAME, read by the table's parser (auth: VLOGS_USERNAME/VLOGS_PASSWORD; the
    on_drop callable has none)."""
    expected = [(o.variable, o.name) for o in OPTIONS if o.name not in ("auth", "on_drop")]
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


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_every_option_is_checked_by_its_own_check(option: Option) -> None:
    """A value of no acceptable kind fails at construction, naming the option (the check of
    the table's row), whichever option it is."""
    kwargs: dict[str, object] = {"url": "http://127.0.0.1:9", option.name: object()}
    with pytest.raises((TypeError, ValueError), match=rf"^Invalid {option.name}: "):
        build_settings(**kwargs)
    shown = "VLOGS_" + option.name.upper()
    with (
        naming({option.name: shown}),
        pytest.raises((TypeError, ValueError), match=rf"^Invalid {shown}: "),
    ):
        build_settings(**kwargs)


@pytest.mark.parametrize("front", [VLogsSink, VLogsHandler], ids=lambda f: f.__name__)
def test_the_front_keeps_the_settings_the_table_builds(front: Any) -> None:
    """VLogsSink(...), VLogsHandler(...) and build_settings(...) agree on every setting."""
    options = {"batch_size": 10, "time_window": (60, 0), "max_message_bytes": 1024}
    made = front("http://127.0.0.1:9", **options)
    try:
        expected = build_settings("http://127.0.0.1:9", **options)
        assert expected == made.settings
        assert (60.0, 0.0) == made.settings.time_window
    finally:
        made.close()


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_the_handler_checks_every_option_as_the_sink_does(option: Option) -> None:
    """The same wrong value fails both fronts with the same message."""
    kwargs: dict[str, Any] = {option.name: object()}
    url = kwargs.pop("url", "http://127.0.0.1:9")
    with pytest.raises((TypeError, ValueError)) as sink_error:
        VLogsSink(url, **kwargs)
    with pytest.raises(type(sink_error.value), match=f"^{re.escape(str(sink_error.value))}$"):
        VLogsHandler(url, **kwargs)


def test_each_flags_help_gives_the_tables_variable_and_default() -> None:
    """--timeout's help (and every flag's) names its variable and default from the table."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    helps = {
        flag: action.help or ""
        for name in ("check", "ship")
        for action in commands[name]._actions
        for flag in action.option_strings
    }
    for option in OPTIONS:
        if option.flag is None or option.name in ("auth", "fields"):
            continue  # --user/--password and the repeatable --field are spelled out
        default = option.default_text.replace("`", "")
        assert f"(env {option.variable}, default {default})" in helps[option.flag], option.name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--timeout", "0"], "Invalid --timeout: it should be > 0"),
        (["check", "--account-id", "x"], "Invalid --account-id: it should be an integer"),
        (["ship", "--max-message-bytes", "1.5MB"], "Invalid --max-message-bytes: "),
    ],
)
def test_flags_are_read_by_the_tables_parsers(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flag's text is read as its variable's is, and the error names the flag."""
    assert 2 == main([*argv, "--url", "http://127.0.0.1:9"])
    assert message in capsys.readouterr().err
