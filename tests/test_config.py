"""Every public option is validated at construction with a message naming it."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from loguru_vlogs import VLogsSink
from loguru_vlogs._config import parse_endpoint

URL = "http://127.0.0.1:9"


def make(**kwargs: Any) -> VLogsSink:
    kwargs.setdefault("url", URL)
    return VLogsSink(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"url": 9428}, TypeError, r"^Invalid url: it should be a string, not int: 9428$"),
        ({"url": "localhost:9428"}, ValueError, r"^Invalid url: it should start with 'http://'"),
        ({"url": "http://"}, ValueError, r"^Invalid url: it has no host name"),
        ({"url": "http://h:99999"}, ValueError, r"^Invalid url: its port is not a number"),
        (
            {"url": "http://h:9428/?x=1"},
            ValueError,
            r"^Invalid url: it should be the server's base",
        ),
        (
            {"url": "http://h/insert/jsonline"},
            ValueError,
            r"^Invalid url: give the server's base URL",
        ),
        ({"url": []}, ValueError, r"^Invalid url: the list of URLs is empty$"),
        (
            {"url": ["http://a", "http://a/"]},
            ValueError,
            r"^Invalid url: the same URL is listed twice$",
        ),
        ({"stream_fields": 3}, TypeError, r"^Invalid stream_fields: it should be a sequence"),
        ({"stream_fields": ["_msg"]}, ValueError, r"^Invalid stream_fields: '_msg' is reserved"),
        (
            {"stream_fields": [""]},
            ValueError,
            r"^Invalid stream_fields: field names should not be empty$",
        ),
        (
            {"stream_fields": ["x" * 129]},
            ValueError,
            r"^Invalid stream_fields: field name longer than 128",
        ),
        (
            {"stream_fields": ["a=b"]},
            ValueError,
            r"^Invalid stream_fields: a name cannot contain ',', '=' or '}': 'a=b'$",
        ),
        (
            {"stream_fields": ("ok", "x}")},
            ValueError,
            r"^Invalid stream_fields: a name cannot contain ',', '=' or '}': 'x}'$",
        ),
        ({"fields": ["a"]}, TypeError, r"^Invalid fields: it should be a mapping"),
        (
            {"fields": {"a": object()}},
            TypeError,
            r"^Invalid fields: value of 'a' should be str, int",
        ),
        ({"fields": {"_time": "x"}}, ValueError, r"^Invalid fields: '_time' is reserved"),
        ({"service": ""}, ValueError, r"^Invalid service: it should not be empty$"),
        ({"host": 5}, TypeError, r"^Invalid host: it should be a string, not int: 5$"),
        ({"batch_size": 0}, ValueError, r"^Invalid batch_size: it should be >= 1, not: 0$"),
        (
            {"batch_size": 1.5},
            TypeError,
            r"^Invalid batch_size: it should be an integer, not float",
        ),
        (
            {"batch_size": True},
            TypeError,
            r"^Invalid batch_size: it should be an integer, not bool",
        ),
        (
            {"batch_size": 10, "buffer_size": 5},
            ValueError,
            r"^Invalid batch_size: it should not exceed",
        ),
        (
            {"batch_bytes": 100},
            ValueError,
            r"^Invalid batch_bytes: it should be >= 1024, not: 100$",
        ),
        ({"flush_interval": 0}, ValueError, r"^Invalid flush_interval: it should be > 0, not: 0$"),
        (
            {"flush_interval": float("nan")},
            ValueError,
            r"^Invalid flush_interval: it should be a finite",
        ),
        (
            {"flush_interval": "1"},
            TypeError,
            r"^Invalid flush_interval: it should be a number, not str",
        ),
        ({"buffer_size": -1}, ValueError, r"^Invalid buffer_size: it should be >= 1, not: -1$"),
        (
            {"buffer_bytes": 1000},
            ValueError,
            r"^Invalid buffer_bytes: it should be >= 1048576, not: 1000$",
        ),
        (
            {"overflow": "drop"},
            ValueError,
            r"^Invalid overflow: it should be one of \['drop_oldest'",
        ),
        ({"block_timeout": -1}, ValueError, r"^Invalid block_timeout: it should be >= 0, not: -1$"),
        ({"compression": "br"}, ValueError, r"^Invalid compression: it should be one of \['gzip'"),
        (
            {"compression_level": 10},
            ValueError,
            r"^Invalid compression_level: for 'gzip' it should be in 0..9",
        ),
        (
            {"compression_level": "1"},
            TypeError,
            r"^Invalid compression_level: it should be an integer",
        ),
        ({"timeout": 0}, ValueError, r"^Invalid timeout: it should be > 0, not: 0$"),
        (
            {"shutdown_timeout": -0.5},
            ValueError,
            r"^Invalid shutdown_timeout: it should be >= 0, not: -0.5$",
        ),
        ({"account_id": -1}, ValueError, r"^Invalid account_id: it should be in 0..4294967295"),
        ({"account_id": 2**32}, ValueError, r"^Invalid account_id: it should be in 0..4294967295"),
        (
            {"project_id": "abc"},
            TypeError,
            r"^Invalid project_id: it should be an integer 0..4294967295",
        ),
        (
            {"headers": {"Content-Type": "x"}},
            ValueError,
            r"^Invalid headers: 'Content-Type' is set by",
        ),
        (
            {"headers": {"X-A": "a\nb"}},
            ValueError,
            r"^Invalid headers: 'X-A' contains a line break",
        ),
        (
            {"headers": {"X-A": 1}},
            TypeError,
            r"^Invalid headers: names and values should be strings",
        ),
        (
            {"auth": "user:pw"},
            TypeError,
            r"^Invalid auth: it should be a \(username, password\) tuple",
        ),
        (
            {"bearer_token": ""},
            TypeError,
            r"^Invalid bearer_token: it should be a non-empty string$",
        ),
        (
            {"auth": ("u", "p"), "bearer_token": "t"},
            ValueError,
            r"^Invalid bearer_token: give either auth or bearer_token, not both$",
        ),
        (
            {"url": "http://u:p@h", "bearer_token": "t"},
            ValueError,
            r"^Invalid url: it carries credentials and auth/bearer_token is given too",
        ),
        ({"verify": "yes"}, TypeError, r"^Invalid verify: it should be True or False, not str$"),
        ({"ca_certs": "/nonexistent.pem"}, ValueError, r"^Invalid ca_certs: no such file"),
        ({"client_key": __file__}, ValueError, r"^Invalid client_key: it needs client_cert too$"),
        (
            {"backoff_base": 2.0, "backoff_max": 1.0},
            ValueError,
            r"^Invalid backoff_max: it should be >= backoff_base \(2\), not: 1$",
        ),
        ({"warn_interval": -1}, ValueError, r"^Invalid warn_interval: it should be >= 0"),
        (
            {"fields": {"line": 1}},
            ValueError,
            r"^Invalid fields: the key 'line' names a built-in field$",
        ),
        (
            {"time_window": (1,)},
            ValueError,
            r"^Invalid time_window: it should be None or a \(max_age",
        ),
        (
            {"max_message_bytes": 10},
            ValueError,
            r"^Invalid max_message_bytes: it should be between 256",
        ),
        (
            {"spool_dir": 5},
            TypeError,
            r"^Invalid spool_dir: it should be a directory path, not int$",
        ),
        (
            {"spool_max_bytes": 10},
            ValueError,
            r"^Invalid spool_max_bytes: it should be >= 65536, not: 10$",
        ),
        (
            {"spool_fsync": "sometimes"},
            ValueError,
            r"^Invalid spool_fsync: it should be one of \['never'",
        ),
        (
            {"spool_threshold": 0},
            ValueError,
            r"^Invalid spool_threshold: it should be >= 1, not: 0$",
        ),
        (
            {"retry_max_elapsed": 0},
            ValueError,
            r"^Invalid retry_max_elapsed: it should be > 0, not: 0$",
        ),
    ],
)
def test_invalid_argument_is_refused_with_a_clear_message(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Bad input names the argument, what is allowed and what was given."""
    with pytest.raises(error, match=match):
        make(**kwargs)


def test_credentials_in_the_url_become_basic_auth_and_never_show() -> None:
    """User info in the URL turns into an Authorization header and is redacted everywhere."""
    sink = make(url="https://alice:s3cr%40t@logs.example.com:9428/vlogs/")
    endpoint = sink.settings.endpoints[0]
    assert endpoint.insert_url == "https://logs.example.com:9428/vlogs/insert/jsonline"
    header = sink.settings.request_headers(endpoint)["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")) == b"alice:s3cr@t"
    for text in (repr(sink), repr(sink.settings), str(sink.stats())):
        assert "s3cr" not in text
        assert "alice" not in text


def test_a_bad_url_error_does_not_leak_the_password() -> None:
    """Even the validation error hides the credentials."""
    with pytest.raises(ValueError, match="Invalid url") as info:
        make(url="ftp://bob:hunter2@host")
    assert "hunter2" not in str(info.value)


def test_tenant_and_auth_headers_are_built_from_options() -> None:
    """account_id/project_id become AccountID/ProjectID; bearer_token an Authorization header."""
    sink = make(account_id=12, project_id="3", bearer_token="tok", headers={"X-Env": "prod"})
    headers = sink.settings.request_headers(sink.settings.endpoints[0])
    assert {
        "Content-Type": "application/stream+json",
        "X-Env": "prod",
        "AccountID": "12",
        "ProjectID": "3",
        "Authorization": "Bearer tok",
    } == headers
    assert "tok" not in repr(sink)


def test_defaults_are_the_documented_ones() -> None:
    """The defaults match the README's option table."""
    s = make().settings
    assert (s.batch_size, s.batch_bytes, s.flush_interval) == (2000, 1024 * 1024, 1.0)
    assert (s.buffer_size, s.buffer_bytes, s.overflow) == (100_000, 64 * 1024 * 1024, "drop_oldest")
    assert (s.compression, s.compression_level, s.timeout, s.shutdown_timeout) == (
        "gzip",
        1,
        5.0,
        5.0,
    )
    assert s.stream_fields == ("service", "host")
    assert s.service
    assert s.host


def test_stream_fields_accept_a_comma_separated_string() -> None:
    """'service, env' is the same as ('service', 'env')."""
    assert make(stream_fields="service, env").settings.stream_fields == ("service", "env")


def test_several_urls_are_several_endpoints() -> None:
    """A list of URLs gives one endpoint each, in order."""
    sink = make(url=["http://a:9428", "http://b:9428/p"])
    assert [e.insert_url for e in sink.settings.endpoints] == [
        "http://a:9428/insert/jsonline",
        "http://b:9428/p/insert/jsonline",
    ]


def test_ipv6_literal_urls_keep_their_brackets() -> None:
    """http://[::1]:9428 is a valid base URL."""
    assert parse_endpoint("http://[::1]:9428").insert_url == "http://[::1]:9428/insert/jsonline"


def test_the_sink_has_no_flush_attribute() -> None:
    """Loguru would call flush() after every record; the sink must not have one."""
    assert not hasattr(make(), "flush")


def test_repr_is_useful() -> None:
    """The repr names the URL and service."""
    text = repr(make(service="api"))
    assert re.fullmatch(
        r"VLogsSink\(url='http://127\.0\.0\.1:9', service='api', stream_fields=\['service', 'host'\]\)",
        text,
    )
