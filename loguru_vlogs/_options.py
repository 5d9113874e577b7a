"""Every option of the sink, once: name, default, unit, meaning, check, ``VLOGS_*`` variable
and its form, command-line flag.

``VLogsSink.__init__`` and ``VLogsHandler.__init__`` spell the same names and defaults out
(for type checkers and readers); ``tests/test_options.py`` holds both to this table, and the option tables of
docs/options.md and docs/configuration.md are rendered from it (:func:`options_table`,
:func:`variables_table`; ``python -m loguru_vlogs._options`` prints both). Validation
is the table's ``check`` column (functions of ``_config``) and :func:`build_settings` applies
it; the environment is read in ``_env``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._config import (
    OVERFLOW_POLICIES,
    Check,
    Settings,
    check_auth,
    check_bool,
    check_callback,
    check_compression,
    check_directory,
    check_fields,
    check_file,
    check_headers,
    check_level,
    check_stream_fields,
    check_tenant,
    check_token,
    check_urls,
    default_host,
    default_service,
    integer,
    label,
    number,
    one_of,
    optional,
    settle,
    text_or,
)
from ._limits import check_max_message_bytes, check_time_window
from ._parse import (
    Parser,
    parse_boolean,
    parse_bytes,
    parse_integer,
    parse_names,
    parse_optional_bytes,
    parse_pairs,
    parse_seconds,
    parse_secret_pairs,
    parse_text,
    parse_time_window,
    parse_urls,
)
from ._spool import FSYNC_POLICIES

#: ``PREFIX + NAME`` is an option's variable.
PREFIX = "VLOGS_"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of an option the caller must give (``url``).
REQUIRED = _Required()


@dataclass(frozen=True)
class Option:
    """One keyword argument of ``VLogsSink``."""

    name: str
    #: the keyword's default, as in the signature (:data:`REQUIRED` for ``url``)
    default: object
    #: how the docs show the default
    default_text: str
    #: the unit or kind of value
    unit: str
    #: what it does (Markdown, one paragraph)
    meaning: str
    #: ``check(shown, value) -> value kept``: the option's own validation (the checks that
    #: involve several options are in :func:`._config.settle`)
    check: Check
    #: reads the text of its ``VLOGS_*`` variable; None for ``auth`` (two variables) and
    #: ``on_drop`` (a callable: no variable)
    parse: Parser | None = None
    #: the form of that text, for docs/configuration.md
    form: str = ""
    #: the command-line flag that sets it, where one does (``check``/``ship``/``spool``)
    flag: str | None = None

    @property
    def variable(self) -> str:
        """Its ``VLOGS_*`` variable (``auth``: ``VLOGS_USERNAME`` and ``VLOGS_PASSWORD``)."""
        return PREFIX + self.name.upper()


#: Every option, in the signature's order.
OPTIONS: tuple[Option, ...] = (
    Option(
        "url",
        check=check_urls,
        default=REQUIRED,
        default_text="required",
        unit="URL or list of URLs",
        parse=parse_urls,
        form="URL, or several separated by commas",
        flag="--url",
        meaning=(
            "Server base URL (`http://host:9428`, or with a path prefix such as "
            "`https://proxy/vlogs`). The sink adds `/insert/jsonline`. `user:password@` in the URL "
            "becomes basic auth and never appears in any repr, message or stats. A list spreads "
            "batches over several endpoints (see [Several "
            "endpoints](delivery.md#several-endpoints))."
        ),
    ),
    Option(
        "stream_fields",
        check=check_stream_fields,
        default=("service", "host"),
        default_text='`("service", "host")`',
        unit="field names",
        parse=parse_names,
        form="names",
        flag="--stream-fields",
        meaning=(
            "Fields that make the VictoriaLogs stream (`_stream_fields`). Use only fields constant "
            "for an application instance. A comma-separated string is accepted."
        ),
    ),
    Option(
        "fields",
        check=check_fields,
        default=None,
        default_text="`None`",
        unit="mapping",
        parse=parse_pairs,
        form="`k=v,k2=v2` (string values)",
        flag="--field",
        meaning=(
            'Static fields added to every record (`{"env": "prod"}`); values str/int/float/bool.'
        ),
    ),
    Option(
        "service",
        check=text_or(default_service),
        default=None,
        default_text="program name",
        unit="string",
        parse=parse_text,
        form="text",
        flag="--service",
        meaning=("The `service` field: the script's name, or the module run with `python -m`."),
    ),
    Option(
        "host",
        check=text_or(default_host),
        default=None,
        default_text="`socket.gethostname()`",
        unit="string",
        parse=parse_text,
        form="text",
        meaning=("The `host` field."),
    ),
    Option(
        "batch_size",
        check=integer(minimum=1),
        default=2000,
        default_text="`2000`",
        unit="records",
        parse=parse_integer,
        form="records",
        meaning=("Send when this many records wait."),
    ),
    Option(
        "batch_bytes",
        check=integer(minimum=1024),
        default=1048576,
        default_text="`1048576` (1 MiB)",
        unit="bytes (uncompressed)",
        parse=parse_bytes,
        form="bytes",
        meaning=("Send when this many bytes wait; also the most a request carries."),
    ),
    Option(
        "flush_interval",
        check=number(positive=True),
        default=1.0,
        default_text="`1.0`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        meaning=("Send at the latest this long after the oldest unsent record arrived."),
    ),
    Option(
        "buffer_size",
        check=integer(minimum=1),
        default=100000,
        default_text="`100000`",
        unit="records",
        parse=parse_integer,
        form="records",
        meaning=("Most records held in memory (while the server is slow or away)."),
    ),
    Option(
        "buffer_bytes",
        check=integer(minimum=1024 * 1024),
        default=67108864,
        default_text="`67108864` (64 MiB)",
        unit="bytes",
        parse=parse_bytes,
        form="bytes",
        meaning=("Most bytes of encoded records held in memory."),
    ),
    Option(
        "overflow",
        check=one_of(OVERFLOW_POLICIES),
        default="drop_oldest",
        default_text='`"drop_oldest"`',
        unit="—",
        parse=parse_text,
        form="`drop_oldest`, `drop_newest`, `block`",
        meaning=(
            'When the buffer is full: `"drop_oldest"` (make room by dropping the oldest), '
            '`"drop_newest"` (drop the new record), `"block"` (the logging call waits up to '
            "`block_timeout`, then drops the new record). Every drop is counted in `stats()` with "
            "its reason and reported on stderr (rate-limited)."
        ),
    ),
    Option(
        "block_timeout",
        check=number(positive=False),
        default=1.0,
        default_text="`1.0`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        meaning=('Longest a logging call waits with `overflow="block"`.'),
    ),
    Option(
        "compression",
        check=check_compression,
        default="gzip",
        default_text='`"gzip"`',
        unit="—",
        parse=parse_text,
        form="`gzip`, `zstd`, `none`",
        meaning=('`"gzip"`, `"zstd"` (needs the `zstd` extra) or `"none"` (`None` too).'),
    ),
    Option(
        "compression_level",
        check=check_level,
        default=None,
        default_text="gzip `1`, zstd `3`",
        unit="level",
        parse=parse_integer,
        form="level",
        meaning=(
            "gzip 0–9, zstd 1–22. Level 1 already gives ~20× on log lines; higher levels cost the "
            "worker CPU that competes with your threads for the GIL."
        ),
    ),
    Option(
        "timeout",
        check=number(positive=True),
        default=5.0,
        default_text="`5.0`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        flag="--timeout",
        meaning=(
            "Longest time one request may take, from connecting to the last byte of the answer "
            "(a slower one fails and is retried, on another endpoint when there is one); also "
            "how long `logger.complete()` waits without progress."
        ),
    ),
    Option(
        "shutdown_timeout",
        check=number(positive=False),
        default=5.0,
        default_text="`5.0`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        meaning=(
            "Most time `logger.remove()`, `close()` and interpreter exit spend sending what is "
            "left."
        ),
    ),
    Option(
        "account_id",
        check=check_tenant,
        default=None,
        default_text="`None`",
        unit="uint32",
        parse=parse_integer,
        form="uint32",
        flag="--account-id",
        meaning=("VictoriaLogs tenant: sent as the `AccountID` header."),
    ),
    Option(
        "project_id",
        check=check_tenant,
        default=None,
        default_text="`None`",
        unit="uint32",
        parse=parse_integer,
        form="uint32",
        flag="--project-id",
        meaning=("VictoriaLogs tenant: sent as the `ProjectID` header."),
    ),
    Option(
        "headers",
        check=check_headers,
        default=None,
        default_text="`None`",
        unit="mapping str→str",
        parse=parse_secret_pairs,
        form="`k=v,k2=v2`",
        meaning=(
            "Extra request headers (not `Content-Type`, `Content-Encoding`, `Content-Length`, "
            "`Host`)."
        ),
    ),
    Option(
        "auth",
        check=check_auth,
        default=None,
        default_text="`None`",
        unit="`(user, password)`",
        flag="--user/--password",
        meaning=("Basic auth."),
    ),
    Option(
        "bearer_token",
        check=check_token,
        default=None,
        default_text="`None`",
        unit="string",
        parse=parse_text,
        form="text",
        flag="--bearer-token",
        meaning=("`Authorization: Bearer …` (not together with `auth`)."),
    ),
    Option(
        "verify",
        check=check_bool,
        default=True,
        default_text="`True`",
        unit="bool",
        parse=parse_boolean,
        form="boolean",
        flag="--insecure",
        meaning=("Verify the server's TLS certificate."),
    ),
    Option(
        "ca_certs",
        check=check_file,
        default=None,
        default_text="`None`",
        unit="file path",
        parse=parse_text,
        form="file path",
        flag="--ca-certs",
        meaning=("CA bundle for TLS verification."),
    ),
    Option(
        "client_cert",
        check=check_file,
        default=None,
        default_text="`None`",
        unit="file path",
        parse=parse_text,
        form="file path",
        meaning=("Client certificate (mutual TLS)."),
    ),
    Option(
        "client_key",
        check=check_file,
        default=None,
        default_text="`None`",
        unit="file path",
        parse=parse_text,
        form="file path; needs `VLOGS_CLIENT_CERT`",
        meaning=("Client key (needs `client_cert`)."),
    ),
    Option(
        "backoff_base",
        check=number(positive=True),
        default=0.5,
        default_text="`0.5`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        meaning=(
            "Exponential backoff with full jitter: the n-th retry waits a random time in [0, "
            "`backoff_base` × 2ⁿ⁻¹], capped by `backoff_max`. With several endpoints, a failed "
            "endpoint stays out of rotation at least `backoff_base`."
        ),
    ),
    Option(
        "backoff_max",
        check=number(positive=True),
        default=30.0,
        default_text="`30.0`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        meaning=("Longest wait between retries. `Retry-After` is honoured (up to 300 s)."),
    ),
    Option(
        "retry_max_elapsed",
        check=optional(number(positive=True)),
        default=None,
        default_text="`None`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        meaning=(
            "Give a failing batch up after retrying this long: it goes to the spool when there is "
            "one, else it is dropped and counted (`retry_exhausted`). `None`: retry until delivered "
            "(the buffer bounds memory meanwhile)."
        ),
    ),
    Option(
        "warn_interval",
        check=number(positive=False),
        default=10.0,
        default_text="`10.0`",
        unit="seconds",
        parse=parse_seconds,
        form="seconds",
        meaning=("At most one stderr warning of each kind per interval."),
    ),
    Option(
        "spool_dir",
        check=check_directory,
        default=None,
        default_text="`None`",
        unit="directory",
        parse=parse_text,
        form="directory",
        flag="--spool-dir",
        meaning=(
            "Durable disk spool for batches the server cannot take now (see [the disk "
            "spool](spool.md)). Created with mode 0700; POSIX only."
        ),
    ),
    Option(
        "spool_max_bytes",
        check=integer(minimum=64 * 1024),
        default=1073741824,
        default_text="`1073741824` (1 GiB)",
        unit="bytes",
        parse=parse_bytes,
        form="bytes",
        meaning=(
            "Bound of the spool; at the bound the oldest segments are dropped and counted "
            "(`spool_full`). At least 65536."
        ),
    ),
    Option(
        "spool_fsync",
        check=one_of(FSYNC_POLICIES),
        default="batch",
        default_text='`"batch"`',
        unit="—",
        parse=parse_text,
        form="`never`, `batch`, `always`",
        meaning=(
            '`"never"` (survives a process crash), `"batch"` (fsync per batch: survives power '
            'loss), `"always"` (acknowledgements fsynced too).'
        ),
    ),
    Option(
        "spool_threshold",
        check=optional(integer(minimum=1)),
        default=None,
        default_text="`batch_size`",
        unit="records",
        parse=parse_integer,
        form="records",
        meaning=(
            "While retries are pending, once this many records wait in memory (in flight included) "
            "they go to the spool. `1`: spool at the first failure (smallest crash window)."
        ),
    ),
    Option(
        "max_message_bytes",
        check=check_max_message_bytes,
        default=None,
        default_text="`None`",
        unit="bytes",
        parse=parse_optional_bytes,
        form="bytes, or `none`",
        flag="--max-message-bytes",
        meaning=(
            "Cut `_msg` at this many UTF-8 bytes (marker included; 256 … 261120). `None`: only the "
            "line limit applies."
        ),
    ),
    Option(
        "time_window",
        check=check_time_window,
        default=(604800.0, 172800.0),
        default_text="`(604800.0, 172800.0)`",
        unit="seconds",
        parse=parse_time_window,
        form="`MAX_AGE,MAX_FUTURE` durations (`30d,2d`), or `none`",
        flag="--time-window",
        meaning=(
            "`(max_age, max_future)`: a record time older than 7 days or later than now + 2 days "
            "(outside what the server stores by default) is sent with `_time` = now and the "
            "original in `original_time`. `None` sends every time as it is (a server with a longer "
            "`-retentionPeriod`)."
        ),
    ),
    Option(
        "handle_sigterm",
        check=check_bool,
        default=True,
        default_text="`True`",
        unit="bool",
        parse=parse_boolean,
        form="boolean",
        meaning=(
            "On SIGTERM (`docker stop`, Kubernetes, systemd, `Pool.terminate()`), send what every "
            "sink holds within its `shutdown_timeout` (spilling to the spool), report losses on "
            "stderr, then end by SIGTERM as the process would have without the sink. Installed by "
            "the first sink made in the main thread while SIGTERM has its default action: a "
            "handler of the application or its framework wins (see "
            "[production](production.md)). `False`: leave SIGTERM alone."
        ),
    ),
    Option(
        "trace_context",
        check=check_bool,
        default=True,
        default_text="`True`",
        unit="bool",
        parse=parse_boolean,
        form="boolean",
        meaning=(
            "With `opentelemetry-api` installed and a span active where the record is logged, "
            "add `trace_id` (32 hex digits), `span_id` (16) and `trace_flags` (`1`: sampled), "
            "unless the record has its own. Taken in the logging thread, asyncio task included; "
            "loguru's `enqueue=True` needs `logger.configure(patcher=trace_patcher)` (see "
            "[tracing.md](tracing.md)). `False`: never look."
        ),
    ),
    Option(
        "on_drop",
        check=check_callback,
        default=None,
        default_text="`None`",
        unit="callable",
        meaning=(
            "`on_drop(reason, count)`: told about dropped records, by reason (the keys of "
            '`stats()["dropped"]`), added up and at most once a second, from the worker thread '
            "(and once more at close), never from a logging call; what it raises is said on "
            "stderr. For your own metrics (see [stats() and metrics](delivery.md#stats-and-metrics))."
        ),
    ),
)

BY_NAME = {option.name: option for option in OPTIONS}


def build_settings(url: object = REQUIRED, **kwargs: object) -> Settings:
    """Check every option (each by the table's check, then those that involve several) and
    return the frozen settings; an option not given takes the table's default."""
    if url is REQUIRED:
        raise TypeError("Invalid url: it is required (the server's base URL)")
    unknown = set(kwargs) - BY_NAME.keys()
    if unknown:
        raise TypeError(f"unknown options: {sorted(unknown)}")
    given = {"url": url, **kwargs}
    values = {o.name: o.check(label(o.name), given.get(o.name, o.default)) for o in OPTIONS}
    return settle(values)


def options_table() -> str:
    """The table of docs/options.md."""
    rows = ["| option | default | unit | meaning |", "|---|---|---|---|"]
    rows += [f"| `{o.name}` | {o.default_text} | {o.unit} | {o.meaning} |" for o in OPTIONS]
    return "\n".join(rows) + "\n"


def variables_table() -> str:
    """The table of docs/configuration.md."""
    rows = ["| variable | argument | form |", "|---|---|---|"]
    for option in OPTIONS:
        if option.parse is None and option.name != "auth":
            continue  # a callable (on_drop): code only
        if option.name == "auth":
            rows.append("| `VLOGS_USERNAME` | `auth` | text; needs `VLOGS_PASSWORD` |")
            rows.append(
                "| `VLOGS_PASSWORD` | `auth` | text, kept as is (blanks included); needs "
                "`VLOGS_USERNAME` |"
            )
        else:
            rows.append(f"| `{option.variable}` | `{option.name}` | {option.form} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    print(options_table())
    print(variables_table())
