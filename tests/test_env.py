"""``VLOGS_*`` environment variables become sink arguments; bad values name the variable."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from loguru_vlogs import VLogsSink
from loguru_vlogs._env import (
    NAMES,
    VARIABLES,
    resolve_sink_kwargs,
    sink_from_env,
    sink_kwargs_from_env,
    unknown_variables,
)

ROOT = Path(__file__).resolve().parents[1]
URL = "http://127.0.0.1:9"


def test_an_empty_environment_gives_no_arguments() -> None:
    """Nothing set: nothing passed, so VLogsSink's own defaults apply."""
    assert {} == sink_kwargs_from_env({})


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping, os.environ is read."""
    monkeypatch.setenv("VLOGS_URL", URL)
    monkeypatch.setenv("VLOGS_SERVICE", "billing")
    assert {"url": URL, "service": "billing"} == sink_kwargs_from_env()


@pytest.mark.parametrize(
    ("variable", "text", "argument", "value"),
    [
        ("VLOGS_URL", " http://a:9428 ", "url", "http://a:9428"),
        ("VLOGS_URL", "http://a:9428,http://b:9428", "url", ["http://a:9428", "http://b:9428"]),
        ("VLOGS_STREAM_FIELDS", "service, host,env", "stream_fields", ("service", "host", "env")),
        ("VLOGS_FIELDS", "env=prod, team=core", "fields", {"env": "prod", "team": "core"}),
        ("VLOGS_FIELDS", "query=a=b", "fields", {"query": "a=b"}),
        ("VLOGS_SERVICE", "billing", "service", "billing"),
        ("VLOGS_HOST", "web-1", "host", "web-1"),
        ("VLOGS_BATCH_SIZE", "500", "batch_size", 500),
        ("VLOGS_BATCH_SIZE", "1_000", "batch_size", 1000),
        ("VLOGS_BATCH_BYTES", "524288", "batch_bytes", 524288),
        ("VLOGS_BATCH_BYTES", "512KiB", "batch_bytes", 524288),
        ("VLOGS_BATCH_BYTES", "2 MiB", "batch_bytes", 2 * 1024 * 1024),
        ("VLOGS_BATCH_BYTES", "1MB", "batch_bytes", 1_000_000),
        ("VLOGS_FLUSH_INTERVAL", "0.5", "flush_interval", 0.5),
        ("VLOGS_FLUSH_INTERVAL", "250ms", "flush_interval", 0.25),
        ("VLOGS_FLUSH_INTERVAL", "2s", "flush_interval", 2.0),
        ("VLOGS_FLUSH_INTERVAL", "1m", "flush_interval", 60.0),
        ("VLOGS_BUFFER_SIZE", "20000", "buffer_size", 20000),
        ("VLOGS_BUFFER_BYTES", "64MiB", "buffer_bytes", 64 * 1024 * 1024),
        ("VLOGS_OVERFLOW", "block", "overflow", "block"),
        ("VLOGS_BLOCK_TIMEOUT", "0.1", "block_timeout", 0.1),
        ("VLOGS_COMPRESSION", "none", "compression", "none"),
        ("VLOGS_COMPRESSION_LEVEL", "6", "compression_level", 6),
        ("VLOGS_TIMEOUT", "3", "timeout", 3.0),
        ("VLOGS_SHUTDOWN_TIMEOUT", "1.5", "shutdown_timeout", 1.5),
        ("VLOGS_ACCOUNT_ID", "12", "account_id", 12),
        ("VLOGS_PROJECT_ID", "0", "project_id", 0),
        ("VLOGS_HEADERS", "X-Team=core", "headers", {"X-Team": "core"}),
        ("VLOGS_BEARER_TOKEN", "s3cret", "bearer_token", "s3cret"),
        ("VLOGS_VERIFY", "false", "verify", False),
        ("VLOGS_VERIFY", "YES", "verify", True),
        ("VLOGS_VERIFY", "0", "verify", False),
        ("VLOGS_CA_CERTS", "/etc/ssl/ca.pem", "ca_certs", "/etc/ssl/ca.pem"),
        ("VLOGS_CLIENT_CERT", "/c.pem", "client_cert", "/c.pem"),
        ("VLOGS_CLIENT_KEY", "/k.pem", "client_key", "/k.pem"),
        ("VLOGS_BACKOFF_BASE", "0.2", "backoff_base", 0.2),
        ("VLOGS_BACKOFF_MAX", "1m", "backoff_max", 60.0),
        ("VLOGS_RETRY_MAX_ELAPSED", "10m", "retry_max_elapsed", 600.0),
        ("VLOGS_WARN_INTERVAL", "0", "warn_interval", 0.0),
    ],
)
def test_each_variable_sets_its_argument(
    variable: str, text: str, argument: str, value: object
) -> None:
    """Every variable is read with its type's parser into the matching argument."""
    assert {argument: value} == sink_kwargs_from_env({variable: text})


def test_username_and_password_become_basic_auth() -> None:
    """VLOGS_USERNAME + VLOGS_PASSWORD -> auth=(user, password); the password is kept as is."""
    env = {"VLOGS_USERNAME": " ops ", "VLOGS_PASSWORD": " pa ss "}
    assert {"auth": ("ops", " pa ss ")} == sink_kwargs_from_env(env)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        (
            {"VLOGS_BATCH_SIZE": "abc"},
            r"^Invalid VLOGS_BATCH_SIZE: it should be an integer, not: 'abc'$",
        ),
        (
            {"VLOGS_ACCOUNT_ID": "1.5"},
            r"^Invalid VLOGS_ACCOUNT_ID: it should be an integer, not: '1\.5'$",
        ),
        (
            {"VLOGS_BATCH_BYTES": "1 lot"},
            r"^Invalid VLOGS_BATCH_BYTES: it should be a number of bytes such as 1048576, "
            r"512KiB or 1MiB \(KB/MB/GB: powers of 1000\), not: '1 lot'$",
        ),
        (
            {"VLOGS_FLUSH_INTERVAL": "soon"},
            r"^Invalid VLOGS_FLUSH_INTERVAL: it should be a number of seconds such as 1\.5 "
            r"\(or 1500ms, 2s, 1m, 2h, 7d\), not: 'soon'$",
        ),
        (
            {"VLOGS_TIMEOUT": "1e"},
            r"^Invalid VLOGS_TIMEOUT: it should be a number of seconds",
        ),
        (
            {"VLOGS_VERIFY": "maybe"},
            r"^Invalid VLOGS_VERIFY: it should be one of 1/true/yes/on or 0/false/no/off, "
            r"not: 'maybe'$",
        ),
        (
            {"VLOGS_STREAM_FIELDS": "service,,host"},
            r"^Invalid VLOGS_STREAM_FIELDS: it should be comma-separated names such as "
            r"'service,host', with no empty name, not: 'service,,host'$",
        ),
        (
            {"VLOGS_FIELDS": "env=prod,team"},
            r"^Invalid VLOGS_FIELDS: it should be comma-separated key=value pairs such as "
            r"'env=prod,team=core', not: 'team' in 'env=prod,team'$",
        ),
        (
            {"VLOGS_FIELDS": "env=a,env=b"},
            r"^Invalid VLOGS_FIELDS: 'env' is given twice$",
        ),
        (
            {"VLOGS_URL": "http://a,,http://b"},
            r"^Invalid VLOGS_URL: it should be a URL or comma-separated URLs with no empty "
            r"entry, got 3 entries of which 1 empty$",
        ),
        (
            {"VLOGS_USERNAME": "ops"},
            r"^Invalid VLOGS_USERNAME: basic auth needs VLOGS_PASSWORD too$",
        ),
        (
            {"VLOGS_PASSWORD": "pw"},
            r"^Invalid VLOGS_PASSWORD: basic auth needs VLOGS_USERNAME too$",
        ),
    ],
)
def test_an_unreadable_value_names_the_variable(env: dict[str, str], match: str) -> None:
    """Each parser's error names the variable, the expected form and the text found."""
    with pytest.raises(ValueError, match=match):
        sink_kwargs_from_env(env)


def test_a_bad_header_never_shows_its_value() -> None:
    """Headers may carry secrets: the error says where, not what."""
    with pytest.raises(ValueError) as caught:
        sink_kwargs_from_env({"VLOGS_HEADERS": "X-Api-Key:topsecret"})
    assert re.match(
        r"^Invalid VLOGS_HEADERS: it should be comma-separated key=value pairs such as "
        r"'env=prod,team=core', not: entry 1 in <hidden>$",
        str(caught.value),
    )
    assert "topsecret" not in str(caught.value)


def test_blank_variables_count_as_unset() -> None:
    """VAR= (empty or spaces) is ignored rather than rejected."""
    assert {} == sink_kwargs_from_env({"VLOGS_BATCH_SIZE": "", "VLOGS_SERVICE": "  "})


def test_explicit_arguments_win_over_the_environment() -> None:
    """from_env(**overrides): an override replaces the variable's value."""
    env = {"VLOGS_URL": URL, "VLOGS_BATCH_SIZE": "10", "VLOGS_SERVICE": "env-svc"}
    expected = {"url": URL, "batch_size": 99, "service": "env-svc"}
    assert expected == resolve_sink_kwargs({"batch_size": 99}, env)


def test_a_missing_url_is_a_clear_error() -> None:
    """Neither VLOGS_URL nor url=: the error says what to set."""
    with pytest.raises(
        ValueError,
        match=r"^Invalid VLOGS_URL: it is not set and no url was given; set it to the server's "
        r"base URL \(e\.g\. VLOGS_URL=http://localhost:9428\) or pass url=\.\.\.$",
    ):
        resolve_sink_kwargs({}, {})


def test_an_url_override_makes_vlogs_url_optional() -> None:
    """url= given explicitly: VLOGS_URL is not needed."""
    assert {"url": URL} == resolve_sink_kwargs({"url": URL}, {})


def test_sink_from_env_builds_a_configured_sink() -> None:
    """The environment configures the sink without code changes."""
    env = {
        "VLOGS_URL": URL,
        "VLOGS_SERVICE": "billing",
        "VLOGS_STREAM_FIELDS": "service",
        "VLOGS_ACCOUNT_ID": "3",
        "VLOGS_FIELDS": "env=prod",
    }
    sink = sink_from_env(VLogsSink, {"batch_size": 7}, env)
    s = sink.settings
    assert ("billing", ("service",), 3, {"env": "prod"}, 7) == (
        s.service,
        s.stream_fields,
        s.account_id,
        dict(s.fields),
        s.batch_size,
    )


@pytest.mark.parametrize(
    ("env", "error", "match"),
    [
        (
            {"VLOGS_BATCH_SIZE": "0"},
            ValueError,
            r"^Invalid VLOGS_BATCH_SIZE: it should be >= 1, not: 0$",
        ),
        (
            {"VLOGS_OVERFLOW": "explode"},
            ValueError,
            r"^Invalid VLOGS_OVERFLOW: it should be one of \['drop_oldest', 'drop_newest', "
            r"'block'\], not: 'explode'$",
        ),
        (
            {"VLOGS_FLUSH_INTERVAL": "-1"},
            ValueError,
            r"^Invalid VLOGS_FLUSH_INTERVAL: it should be > 0, not: -1\.0$",
        ),
        (
            {"VLOGS_ACCOUNT_ID": "4294967296"},
            ValueError,
            r"^Invalid VLOGS_ACCOUNT_ID: it should be in 0\.\.4294967295, not: 4294967296$",
        ),
        (
            {"VLOGS_STREAM_FIELDS": "_msg"},
            ValueError,
            r"^Invalid VLOGS_STREAM_FIELDS: '_msg' is reserved by VictoriaLogs",
        ),
        (
            {"VLOGS_USERNAME": "u", "VLOGS_PASSWORD": "p", "VLOGS_BEARER_TOKEN": "t"},
            ValueError,
            r"^Invalid VLOGS_BEARER_TOKEN: give either auth or bearer_token, not both$",
        ),
    ],
)
def test_a_rejected_value_from_the_environment_names_the_variable(
    env: dict[str, str], error: type[Exception], match: str
) -> None:
    """The sink's own validation errors are renamed after the variable that supplied it."""
    with pytest.raises(error, match=match):
        sink_from_env(VLogsSink, {}, {"VLOGS_URL": URL, **env})


def test_a_rejected_override_keeps_the_argument_name() -> None:
    """An explicit argument's error names the argument, not a variable."""
    with pytest.raises(ValueError, match=r"^Invalid batch_size: it should be >= 1, not: 0$"):
        sink_from_env(VLogsSink, {"batch_size": 0}, {"VLOGS_URL": URL, "VLOGS_BATCH_SIZE": "5"})


def test_only_limits_what_is_read() -> None:
    """only=(...) ignores every other variable, even an invalid one."""
    env = {"VLOGS_URL": URL, "VLOGS_BATCH_SIZE": "abc", "VLOGS_USERNAME": "lonely"}
    assert {"url": URL} == sink_kwargs_from_env(env, only=("url",))


def test_the_spool_variables_pass_through_when_the_sink_has_a_spool() -> None:
    """VLOGS_SPOOL_DIR/_MAX_BYTES/_FSYNC/_THRESHOLD -> spool_dir/_max_bytes/_fsync/_threshold."""
    env = {
        "VLOGS_SPOOL_DIR": "/var/spool/app",
        "VLOGS_SPOOL_MAX_BYTES": "1GiB",
        "VLOGS_SPOOL_FSYNC": "always",
        "VLOGS_SPOOL_THRESHOLD": "5000",
    }
    expected = {
        "spool_dir": "/var/spool/app",
        "spool_max_bytes": 1024**3,
        "spool_fsync": "always",
        "spool_threshold": 5000,
    }
    assert expected == sink_kwargs_from_env(env)


def test_a_misspelt_variable_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    """VLOGS_BATCHSIZE is a likely typo of VLOGS_BATCH_SIZE: stderr says so, the sink builds."""
    sink_from_env(VLogsSink, {}, {"VLOGS_URL": URL, "VLOGS_BATCHSIZE": "5", "VLOGS_BINARY": "x"})
    assert (
        "loguru-vlogs: ignoring the unknown environment variable VLOGS_BATCHSIZE "
        "(did you mean VLOGS_BATCH_SIZE?)\n"
    ) == capfd.readouterr().err


def test_unrelated_vlogs_names_are_not_reported() -> None:
    """Only near misses of our names count as typos (VLOGS_BINARY is the test plugin's)."""
    env = {"VLOGS_BINARY": "/bin/victoria-logs", "VLOGS_DASHBOARD": "x", "VLOGS_URLS": "x"}
    assert {"VLOGS_URLS": "VLOGS_URL"} == unknown_variables(env)


def test_every_variable_targets_a_sink_argument() -> None:
    """The table only names arguments VLogsSink has."""
    params = set(inspect.signature(VLogsSink).parameters)
    assert set() == {v.argument for v in VARIABLES} - params


def test_the_configuration_page_documents_every_variable() -> None:
    """docs/configuration.md lists exactly the variables the code reads."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(VLOGS_[A-Z_]+)`", text, flags=re.MULTILINE))
    assert set(NAMES) == documented


def test_from_env_arguments_reach_the_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    """sink_from_env reads os.environ when no mapping is given."""
    monkeypatch.setenv("VLOGS_URL", URL)
    monkeypatch.setenv("VLOGS_COMPRESSION", "none")
    sink: Any = sink_from_env(VLogsSink, {})
    assert "none" == sink.settings.compression


def test_vlogs_sink_from_env_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """VLogsSink.from_env(**overrides): the environment configures, overrides win."""
    monkeypatch.setenv("VLOGS_URL", URL)
    monkeypatch.setenv("VLOGS_SERVICE", "env-svc")
    monkeypatch.setenv("VLOGS_BATCH_SIZE", "5")
    sink = VLogsSink.from_env(batch_size=7)
    assert ("env-svc", 7) == (sink.settings.service, sink.settings.batch_size)


def test_vlogs_sink_from_env_names_the_variable_in_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """VLogsSink.from_env() raises errors about VLOGS_* values under the variable's name."""
    monkeypatch.setenv("VLOGS_URL", URL)
    monkeypatch.setenv("VLOGS_BATCH_SIZE", "abc")
    with pytest.raises(
        ValueError, match=r"^Invalid VLOGS_BATCH_SIZE: it should be an integer, not: 'abc'$"
    ):
        VLogsSink.from_env()


def test_the_spool_settings_reach_a_real_sink(tmp_path: Path) -> None:
    """With the sink's own spool options, the variables configure its spool."""
    env = {
        "VLOGS_URL": URL,
        "VLOGS_SPOOL_DIR": str(tmp_path / "spool"),
        "VLOGS_SPOOL_FSYNC": "never",
        "VLOGS_SPOOL_MAX_BYTES": "1MiB",
    }
    s = sink_from_env(VLogsSink, {}, env).settings
    expected = (str(tmp_path / "spool"), "never", 1024 * 1024)
    assert expected == (s.spool_dir, s.spool_fsync, s.spool_max_bytes)


def test_an_invalid_spool_setting_names_the_variable(tmp_path: Path) -> None:
    """The sink's spool validation errors are renamed after the variable too."""
    env = {"VLOGS_URL": URL, "VLOGS_SPOOL_DIR": str(tmp_path), "VLOGS_SPOOL_FSYNC": "often"}
    with pytest.raises(ValueError, match=r"^Invalid VLOGS_SPOOL_FSYNC: it should be one of "):
        sink_from_env(VLogsSink, {}, env)


def test_every_sink_argument_has_a_variable() -> None:
    """Each VLogsSink argument can come from the environment (auth from two variables) but
    the on_drop callable."""
    arguments = set(inspect.signature(VLogsSink).parameters) - {"on_drop"}
    from_variables = {v.argument for v in VARIABLES} | {"auth"}
    assert arguments == from_variables


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"VLOGS_TIME_WINDOW": "30d,2d"}, {"time_window": (30 * 86400.0, 2 * 86400.0)}),
        ({"VLOGS_TIME_WINDOW": "168h, 1.5d"}, {"time_window": (168 * 3600.0, 1.5 * 86400.0)}),
        ({"VLOGS_TIME_WINDOW": "None"}, {"time_window": None}),
        ({"VLOGS_MAX_MESSAGE_BYTES": "64KiB"}, {"max_message_bytes": 65536}),
        ({"VLOGS_MAX_MESSAGE_BYTES": "none"}, {"max_message_bytes": None}),
    ],
)
def test_time_window_and_max_message_bytes_have_variables(
    env: dict[str, str], expected: dict[str, Any]
) -> None:
    """VLOGS_TIME_WINDOW (MAX_AGE,MAX_FUTURE durations or none), VLOGS_MAX_MESSAGE_BYTES."""
    assert expected == sink_kwargs_from_env(env)


def test_a_time_window_that_is_not_a_pair_names_the_variable() -> None:
    """One duration is not a window: the error names the variable and the form."""
    with pytest.raises(
        ValueError,
        match=r"^Invalid VLOGS_TIME_WINDOW: it should be MAX_AGE,MAX_FUTURE durations such as "
        r"7d,2d \(or none\), not: '30d'$",
    ):
        sink_kwargs_from_env({"VLOGS_TIME_WINDOW": "30d"})


def test_the_time_window_from_the_environment_reaches_the_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record 20 days old keeps its time with VLOGS_TIME_WINDOW=30d,2d."""
    import datetime as dt

    from loguru_vlogs._record import RecordEncoder

    monkeypatch.setenv("VLOGS_URL", URL)
    monkeypatch.setenv("VLOGS_TIME_WINDOW", "30d,2d")
    sink = VLogsSink.from_env()
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=20)
    record = {"message": "m", "time": old, "level": None, "extra": {}, "exception": None}
    line = sink._encoder.encode(record)
    assert b"original_time" not in line
    assert b"original_time" in RecordEncoder().encode(record)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"VLOGS_TIME_WINDOW": "-1,2"},
            r"^Invalid VLOGS_TIME_WINDOW: it should be None or a \(max_age, max_future\) tuple",
        ),
        (
            {"VLOGS_FIELDS": "line=7"},
            r"^Invalid VLOGS_FIELDS: the key 'line' names a built-in field$",
        ),
        (
            {"VLOGS_MAX_MESSAGE_BYTES": "10"},
            r"^Invalid VLOGS_MAX_MESSAGE_BYTES: it should be between 256 and 261120, not: 10$",
        ),
    ],
)
def test_the_encoders_checks_name_the_variable_too(env: dict[str, str], message: str) -> None:
    """Values the record encoder checks (fields, time_window, max_message_bytes) are named
    after their variable when they came from the environment."""
    with pytest.raises(ValueError, match=message):
        sink_from_env(VLogsSink, {}, {"VLOGS_URL": URL, **env})


def test_an_explicit_argument_is_named_as_such_beside_the_environment() -> None:
    """Only what came from the environment is named after a variable."""
    with pytest.raises(ValueError, match=r"^Invalid batch_size: it should be >= 1, not: 0$"):
        sink_from_env(VLogsSink, {"batch_size": 0}, {"VLOGS_URL": URL, "VLOGS_BATCH_SIZE": "5"})
