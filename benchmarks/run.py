"""Benchmarks of loguru-vlogs: every figure of issue 6 in one run, printed as a table and saved as JSON.

    python benchmarks/run.py [--quick] [--out benchmarks/results/latest.json]
                             [--chart benchmarks/results/chart.png] [--receiver auto|real|fake|null]

Figures (medians of several repetitions; ratios are measured in the same run):

1. caller overhead: µs per logger call with VLogsSink ÷ with a no-op callable sink
2. end-to-end throughput: records/s from the first logger call until the receiver holds them all,
   VLogsSink vs victorialogs-handler (stdlib logging) vs loguru ``serialize=True`` to a file
3. memory: resident bytes per buffered record (server down, 100 000 records) ÷ JSON line size
4. wire size: bytes per record on the wire for gzip (default), zstd and none
5. exit latency: a script logging 1 000 records, minus the same script with a no-op sink
6. import time of loguru_vlogs on top of loguru
7. scaling: caller overhead and throughput at 1, 2, 4, 8 threads and with ``enqueue=True``
8. stdlib logging: VLogsHandler vs victorialogs-handler (and a no-op handler), caller overhead
   and end-to-end throughput, ratios in the same run

See benchmarks/README.md for what each figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import importlib.util
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# An installed (or PYTHONPATH) loguru_vlogs wins, which is how a prototype is measured;
# without one, the checkout this folder is in.
if importlib.util.find_spec("loguru_vlogs") is None:
    sys.path.insert(0, str(ROOT))

from _receivers import Receiver  # noqa: E402
from _workload import LoguruMix, StdlibMix  # noqa: E402
from loguru import logger  # noqa: E402

import loguru_vlogs  # noqa: E402
from loguru_vlogs import VLogsHandler, VLogsSink  # noqa: E402

#: Targets of issue 6.
# Issue 16's targets (the earlier 1.25x overhead and 1.5x-vs-stdlib targets are retired: below
# what any loguru sink can reach under the GIL, see benchmarks/README.md).
#: end to end (log N + complete()): VLogsSink's time / loguru's default text file sink's
TARGET_VS_TEXT_FILE = 1.0
TARGET_OVERHEAD = 1.40
TARGET_THROUGHPUT = 1.5
#: at 4 and 8 threads: VLogsSink's ratio minus the control sink's
TARGET_THREADS_EXCESS = 0.1
TARGET_IMPORT_MS = 15.0
TARGET_MEMORY = 1.2
TARGET_WIRE = 15.0
TARGET_EXIT_UP_MS = 100.0
EXIT_DOWN_TIMEOUT = 1.0
EXIT_DOWN_SLACK_MS = 500.0
THREADS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Sizes:
    caller_records: int
    caller_pairs: int
    scaling_records: int
    scaling_pairs: int
    throughput_records: int
    throughput_reps: int
    memory_records: int
    wire_records: int
    exit_records: int
    exit_reps: int
    import_reps: int


FULL = Sizes(
    caller_records=4_000,
    caller_pairs=25,
    scaling_records=4_000,
    scaling_pairs=9,
    throughput_records=20_000,
    throughput_reps=5,
    memory_records=100_000,
    wire_records=10_000,
    exit_records=1_000,
    exit_reps=7,
    import_reps=7,
)
QUICK = Sizes(
    caller_records=400,
    caller_pairs=2,
    scaling_records=200,
    scaling_pairs=1,
    throughput_records=400,
    throughput_reps=1,
    memory_records=2_000,
    wire_records=300,
    exit_records=100,
    exit_reps=1,
    import_reps=2,
)

#: How VLogsSink is added in figure 2, as README.md recommends: the sink reads the record,
#: never loguru's formatted text, so a format that costs loguru nothing (victorialogs-handler
#: added to loguru gets the same). Figure 2 also runs it with loguru's default format.
SINK_FORMAT = "{message}"
_QUIET = {"warn_interval": 3600.0}  # the server-down figures would print retry warnings
# Every handler gets backtrace=False, diagnose=False: loguru's own traceback formatting then
# costs the same whatever the sink.


def log(text: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine shows in the timings."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform()}


def versions() -> dict[str, str | None]:
    return {
        "python": platform.python_version(),
        "loguru": _version("loguru"),
        "orjson": _version("orjson"),
        "urllib3": _version("urllib3"),
        "loguru_vlogs": _version("loguru-vlogs"),
        "loguru_vlogs_path": str(Path(loguru_vlogs.__file__).parent),
        "zstandard": _version("zstandard"),
        "victorialogs_handler": _version("victorialogs-handler"),
    }


def child_env() -> dict[str, str]:
    """The environment of every child interpreter: the package importable, bytecode cached.

    With PYTHONDONTWRITEBYTECODE set (as in some CI images) an editable install recompiles the
    package in every new interpreter, which installed wheels never do.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # After PYTHONPATH: the children import the same loguru_vlogs as this process.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)]))
    return env


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# -- running bursts -------------------------------------------------------------------------------


def timed_burst(burst: Callable[[int, int], None], n: int, threads: int) -> tuple[float, float]:
    """Run ``n`` records over ``threads`` threads; (wall s, process CPU s) of the calls."""
    if threads == 1:
        wall, cpu = time.perf_counter(), time.process_time()
        burst(0, n)
        return time.perf_counter() - wall, time.process_time() - cpu
    per = n // threads
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        barrier.wait()
        burst(k * per, (k + 1) * per)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    return time.perf_counter() - wall, time.process_time() - cpu


# -- 1 and 7: caller overhead ----------------------------------------------------------------------


def paired_bursts(
    sinks: dict[str, Callable[[], Any]], n: int, pairs: int, threads: int, enqueue: bool = False
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU µs per call of each sink, in ``pairs`` rounds of back-to-back bursts.

    Each round times one burst of ``n`` calls with each sink (``sinks`` maps a name to what
    ``logger.add`` gets), the order reversed every other round, so load that drifts over
    seconds on a shared machine hits every sink of a round alike.
    """
    per_call = (n // threads) * threads
    mix = LoguruMix(logger)
    wall: dict[str, list[float]] = {name: [] for name in sinks}
    cpu: dict[str, list[float]] = {name: [] for name in sinks}
    names = list(sinks)
    for pair in range(pairs):
        for name in names if pair % 2 == 0 else names[::-1]:
            logger.remove()
            logger.add(sinks[name](), enqueue=enqueue, backtrace=False, diagnose=False)
            mix.burst(0, min(200, n))  # warm-up: worker started, connection open, caches hot
            logger.complete()
            cpu_start = time.process_time()
            w, _ = timed_burst(mix.burst, n, threads)
            # Outside the wall timing, inside the CPU one: the backlog is encoded, compressed
            # and delivered before the next burst, so work a sink defers past the burst
            # still counts (in the CPU figure) as what each record costs the process.
            logger.complete()
            c = time.process_time() - cpu_start
            wall[name].append(w / per_call * 1e6)
            cpu[name].append(c / per_call * 1e6)
    logger.remove()
    return wall, cpu


def _ratio(samples: dict[str, list[float]], name: str) -> float:
    """Median over the rounds of ``name``'s figure ÷ the no-op sink's."""
    return median([v / o for v, o in zip(samples[name], samples["noop"], strict=True)])


def _noop() -> Callable[[object], None]:
    return lambda _message: None


def caller_overhead(
    url: str, n: int, pairs: int, threads: int = 1, enqueue: bool = False
) -> dict[str, Any]:
    """µs per call with VLogsSink and with a no-op sink (:func:`paired_bursts`); the ratio is
    the median of the rounds' ratios."""
    sink = VLogsSink(url, **_QUIET)
    wall, cpu = paired_bursts({"noop": _noop, "vlogs": lambda: sink}, n, pairs, threads, enqueue)
    stats = sink.stats()
    return {
        "threads": threads,
        "enqueue": enqueue,
        "records": (n // threads) * threads,
        "pairs": pairs,
        "vlogs_us": median(wall["vlogs"]),
        "noop_us": median(wall["noop"]),
        "ratio": _ratio(wall, "vlogs"),
        "vlogs_cpu_us": median(cpu["vlogs"]),
        "noop_cpu_us": median(cpu["noop"]),
        "cpu_ratio": _ratio(cpu, "vlogs"),
        "samples_us": wall,
        "delivered": stats["sent"],
        "dropped": stats["dropped_total"],
    }


# -- 2 and 7: throughput ---------------------------------------------------------------------------


def _wait_timeout(n: int) -> float:
    return 60.0 + n / 2000.0


@contextlib.contextmanager
def gil_yields_off() -> Iterator[None]:
    """VLogsSink with its GIL yields turned off (what it did before they existed): the
    "before" of an A/B in the same run. Private API, benchmark only."""
    from loguru_vlogs import _buffer

    saved = _buffer._gil_enabled
    _buffer._gil_enabled = lambda: False
    try:
        yield
    finally:
        _buffer._gil_enabled = saved


def throughput_vlogs(
    rx: Receiver, n: int, threads: int = 1, enqueue: bool = False, fmt: str | None = None
) -> dict[str, Any]:
    """``fmt``: loguru's ``format=`` for the sink (None: loguru's default format)."""
    n = (n // threads) * threads
    run_id = rx.begin_run()
    logger.remove()
    sink = VLogsSink(rx.url, fields={"bench_run": run_id}, **_QUIET)
    formats = {} if fmt is None else {"format": fmt}
    logger.add(sink, enqueue=enqueue, backtrace=False, diagnose=False, **formats)
    mix = LoguruMix(logger)
    start = time.monotonic()
    timed_burst(mix.burst, n, threads)
    calls_done = time.monotonic()
    sent_while_logging = sink.stats()["sent"]
    logger.complete()  # VLogsSink: returns once the server accepted everything
    completed = time.monotonic()
    found, seen = rx.wait_for(n, _wait_timeout(n), 0.01 if rx.kind == "null" else 0.05)
    logger.remove()
    # tail: from the last logger call until the receiver held everything. Short when the
    # worker kept pace with the callers; long when the backlog was left for complete().
    return {
        "rps": n / (seen - start),
        "stored": found,
        "records": n,
        "tail_ms": (seen - calls_done) * 1e3,
        "sent_while_logging": sent_while_logging / n,
        # log N + logger.complete() (delivered): the end-to-end figure of issue 16
        "e2e_rps": n / (completed - start),
    }


def throughput_handler(rx: Receiver, n: int) -> dict[str, Any]:
    from vlogs_handler import VictoriaLogsHandler

    run_id = rx.begin_run()
    std = logging.getLogger("bench.victorialogs_handler")
    std.propagate = False
    std.setLevel(logging.INFO)
    for old in list(std.handlers):
        std.removeHandler(old)
    # Configured like VLogsSink: same URL, batches of 1000, 1 s flush interval, 100 000 buffer.
    handler = VictoriaLogsHandler(
        url=rx.url, batch_size=1000, chunk_size=1000, buffer_size=100_000, flush_interval=1.0
    )
    std.addHandler(handler)
    mix = StdlibMix(std, static={"bench_run": run_id})
    try:
        start = time.monotonic()
        mix.burst(0, n)
        handler.flush()  # sends what is queued (its worker may hold one chunk in flight)
        found, seen = rx.wait_for(n, _wait_timeout(n), 0.01 if rx.kind == "null" else 0.05)
    finally:
        std.removeHandler(handler)
        handler.close()
    return {"rps": n / (seen - start), "stored": found, "records": n}


def throughput_handler_via_loguru(rx: Receiver, n: int) -> dict[str, Any]:
    """victorialogs-handler as a loguru sink (``logger.add(handler)``): the same front end."""
    from vlogs_handler import VictoriaLogsHandler

    run_id = rx.begin_run()
    logger.remove()
    handler = VictoriaLogsHandler(
        url=rx.url, batch_size=1000, chunk_size=1000, buffer_size=100_000, flush_interval=1.0
    )
    # format="{message}": loguru hands a stdlib handler its formatted text as the message.
    logger.add(handler, format="{message}", backtrace=False, diagnose=False)
    mix = LoguruMix(logger.bind(bench_run=run_id))
    try:
        start = time.monotonic()
        mix.burst(0, n)
        handler.flush()
        found, seen = rx.wait_for(n, _wait_timeout(n), 0.01 if rx.kind == "null" else 0.05)
    finally:
        logger.remove()
        handler.close()
    return {"rps": n / (seen - start), "stored": found, "records": n}


def throughput_file(n: int, directory: Path, *, serialize: bool = True) -> dict[str, Any]:
    """Loguru's own file sink, ``serialize=True`` (JSON) or its default text lines: the time
    from the first call until the file is flushed and closed."""
    path = directory / ("serialize.jsonl" if serialize else "app.log")
    path.unlink(missing_ok=True)
    logger.remove()
    handler = logger.add(str(path), serialize=serialize, backtrace=False, diagnose=False)
    mix = LoguruMix(logger)
    start = time.monotonic()
    mix.burst(0, n)
    logger.remove(handler)  # flushes and closes the file
    elapsed = time.monotonic() - start
    with path.open("rb") as stored:
        lines = sum(1 for _ in stored)
    return {"rps": n / elapsed, "stored": lines, "records": n}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["rps"] for r in runs]
    out = {
        "rps": median(rates),
        "samples_rps": rates,
        "records": runs[0]["records"],
        "complete": all(r["stored"] >= r["records"] for r in runs),
    }
    for key in ("tail_ms", "sent_while_logging", "e2e_rps"):
        if key in runs[0]:
            out[key] = median([r[key] for r in runs])
    return out


def throughput_figure(
    rx: Receiver, sizes: Sizes, directory: Path, *, with_file: bool = True
) -> dict[str, Any]:
    """VLogsSink vs victorialogs-handler (from stdlib logging, and as a loguru sink) vs loguru
    ``serialize=True`` to a file; repetitions interleaved."""
    n, reps = sizes.throughput_records, sizes.throughput_reps
    handler_ok = _have("vlogs_handler")
    names = ["vlogs", "vlogs_default_format", "vlogs_gil_yields_off", "file", "text_file"]
    if handler_ok:
        names += ["victorialogs_handler", "victorialogs_handler_via_loguru"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(reps):
        runs["vlogs"].append(throughput_vlogs(rx, n, fmt=SINK_FORMAT))
        runs["vlogs_default_format"].append(throughput_vlogs(rx, n))
        with gil_yields_off():
            runs["vlogs_gil_yields_off"].append(throughput_vlogs(rx, n, fmt=SINK_FORMAT))
        if handler_ok:
            runs["victorialogs_handler"].append(throughput_handler(rx, n))
            runs["victorialogs_handler_via_loguru"].append(throughput_handler_via_loguru(rx, n))
        if with_file:
            runs["file"].append(throughput_file(n, directory))
            runs["text_file"].append(throughput_file(n, directory, serialize=False))
    result: dict[str, Any] = {
        "receiver": rx.kind,
        "receiver_description": rx.description,
        "vlogs": _median_run(runs["vlogs"]),
        "sink_format": SINK_FORMAT,
        "vlogs_default_format": _median_run(runs["vlogs_default_format"]),
        "vlogs_gil_yields_off": _median_run(runs["vlogs_gil_yields_off"]),
        "loguru_serialize_file": _median_run(runs["file"]) if with_file else None,
        "loguru_text_file": _median_run(runs["text_file"]) if with_file else None,
        # end to end, log N + complete(): VLogsSink's time / the text file sink's (<= 1: no
        # dearer than writing the records to a local file)
        "time_ratio_vs_text_file": (
            _median_run(runs["text_file"])["rps"] / _median_run(runs["vlogs"])["e2e_rps"]
            if with_file
            else None
        ),
        # the same with the sink added with loguru's default format (what it costs a user
        # who does not pass format=)
        "time_ratio_vs_text_file_default_format": (
            _median_run(runs["text_file"])["rps"]
            / _median_run(runs["vlogs_default_format"])["e2e_rps"]
            if with_file
            else None
        ),
        "victorialogs_handler": None,
        "victorialogs_handler_via_loguru": None,
        "ratio_vs_handler": None,
        "ratio_vs_handler_via_loguru": None,
    }
    if handler_ok:
        vl = result["vlogs"]["rps"]
        for name in ("victorialogs_handler", "victorialogs_handler_via_loguru"):
            result[name] = _median_run(runs[name])
            result[name.replace("victorialogs_handler", "ratio_vs_handler")] = (
                vl / result[name]["rps"]
            )
    else:
        result["skipped"] = (
            "victorialogs-handler is not installed (pip install victorialogs-handler)"
        )
    return result


# -- 8: stdlib logging: VLogsHandler vs victorialogs-handler ---------------------------------------


class _NoopHandler(logging.Handler):
    """The stdlib control: ``logging.Handler``'s own cost (filter, lock), no work."""

    def emit(self, record: logging.LogRecord) -> None:
        pass


def _stdlib_logger() -> logging.Logger:
    std = logging.getLogger("bench.stdlib")
    std.propagate = False
    std.setLevel(logging.INFO)
    for old in list(std.handlers):
        std.removeHandler(old)
    return std


def _victorialogs_handler(url: str) -> logging.Handler:
    from vlogs_handler import VictoriaLogsHandler

    # Configured like VLogsSink: same URL, batches of 1000, 1 s flush interval, 100 000 buffer.
    handler: logging.Handler = VictoriaLogsHandler(
        url=url, batch_size=1000, chunk_size=1000, buffer_size=100_000, flush_interval=1.0
    )
    return handler


def stdlib_paired_bursts(
    handlers: dict[str, Callable[[], logging.Handler]], n: int, pairs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """:func:`paired_bursts` for stdlib ``logging``: wall and process-CPU µs per call of each
    handler, rounds of back-to-back bursts, the order reversed every other round; each
    handler's ``flush()`` delivers the backlog outside the wall timing, inside the CPU one."""
    std = _stdlib_logger()
    mix = StdlibMix(std)
    wall: dict[str, list[float]] = {name: [] for name in handlers}
    cpu: dict[str, list[float]] = {name: [] for name in handlers}
    names = list(handlers)
    made = {name: make() for name, make in handlers.items()}
    try:
        for pair in range(pairs):
            for name in names if pair % 2 == 0 else names[::-1]:
                handler = made[name]
                std.addHandler(handler)
                mix.burst(0, min(200, n))  # warm-up: worker started, connection open
                handler.flush()
                cpu_start = time.process_time()
                w, _ = timed_burst(mix.burst, n, 1)
                handler.flush()
                c = time.process_time() - cpu_start
                std.removeHandler(handler)
                wall[name].append(w / n * 1e6)
                cpu[name].append(c / n * 1e6)
    finally:
        for handler in made.values():
            handler.close()
    return wall, cpu


def throughput_vlogs_handler(rx: Receiver, n: int) -> dict[str, Any]:
    run_id = rx.begin_run()
    std = _stdlib_logger()
    handler = VLogsHandler(rx.url, **_QUIET)
    std.addHandler(handler)
    # bench_run as an extra, as victorialogs-handler gets it: the same records for both.
    mix = StdlibMix(std, static={"bench_run": run_id})
    try:
        start = time.monotonic()
        mix.burst(0, n)
        handler.flush()  # VLogsHandler: returns once the server accepted everything
        found, seen = rx.wait_for(n, _wait_timeout(n), 0.01 if rx.kind == "null" else 0.05)
    finally:
        std.removeHandler(handler)
        handler.close()
    return {"rps": n / (seen - start), "stored": found, "records": n}


def stdlib_figure(rx: Receiver, sizes: Sizes) -> dict[str, Any]:
    """VLogsHandler vs victorialogs-handler (vs a no-op handler) on stdlib ``logging``: µs per
    call (paired bursts) and records/s until stored (repetitions interleaved), one run."""
    handler_ok = _have("vlogs_handler")
    handlers: dict[str, Callable[[], logging.Handler]] = {
        "noop": _NoopHandler,
        "vlogs": lambda: VLogsHandler(rx.url, **_QUIET),
    }
    if handler_ok:
        handlers["victorialogs_handler"] = lambda: _victorialogs_handler(rx.url)
    wall, cpu = stdlib_paired_bursts(handlers, sizes.caller_records, sizes.caller_pairs)
    n, reps = sizes.throughput_records, sizes.throughput_reps
    runs: dict[str, list[dict[str, Any]]] = {"vlogs": [], "victorialogs_handler": []}
    for _ in range(reps):
        runs["vlogs"].append(throughput_vlogs_handler(rx, n))
        if handler_ok:
            runs["victorialogs_handler"].append(throughput_handler(rx, n))
    result: dict[str, Any] = {
        "receiver": rx.kind,
        "records": sizes.caller_records,
        "pairs": sizes.caller_pairs,
        "vlogs_us": median(wall["vlogs"]),
        "noop_us": median(wall["noop"]),
        "vlogs_cpu_us": median(cpu["vlogs"]),
        "noop_cpu_us": median(cpu["noop"]),
        "ratio_vs_noop": _ratio(wall, "vlogs"),
        "samples_us": wall,
        "vlogs_throughput": _median_run(runs["vlogs"]),
        "victorialogs_handler_us": None,
        "victorialogs_handler_cpu_us": None,
        "victorialogs_handler_throughput": None,
        "caller_ratio_vs_handler": None,
        "cpu_ratio_vs_handler": None,
        "throughput_ratio_vs_handler": None,
    }
    if handler_ok:
        theirs = _median_run(runs["victorialogs_handler"])
        result.update(
            {
                "victorialogs_handler_us": median(wall["victorialogs_handler"]),
                "victorialogs_handler_cpu_us": median(cpu["victorialogs_handler"]),
                "victorialogs_handler_throughput": theirs,
                # Per round, like figure 1: drift over seconds hits both sides of a pair alike.
                "caller_ratio_vs_handler": median(
                    [
                        v / h
                        for v, h in zip(wall["vlogs"], wall["victorialogs_handler"], strict=True)
                    ]
                ),
                "cpu_ratio_vs_handler": median(
                    [v / h for v, h in zip(cpu["vlogs"], cpu["victorialogs_handler"], strict=True)]
                ),
                "throughput_ratio_vs_handler": result["vlogs_throughput"]["rps"] / theirs["rps"],
            }
        )
    else:
        result["skipped"] = (
            "victorialogs-handler is not installed (pip install victorialogs-handler)"
        )
    return result


def sustained_figure(rx: Receiver, n: int) -> dict[str, Any]:
    """One thread logs ``n`` records flat out (1.5x the default 100 000-record buffer), with
    the sink's GIL yields on and off: how much was sent while logging, how much dropped."""
    out: dict[str, Any] = {"records": n, "receiver": rx.kind}
    for label in ("yields_on", "yields_off"):
        logger.remove()
        sink = VLogsSink(rx.url, **_QUIET)
        logger.add(sink, backtrace=False, diagnose=False)
        mix = LoguruMix(logger)
        with contextlib.ExitStack() as stack:
            if label == "yields_off":
                stack.enter_context(gil_yields_off())
            mix.burst(0, n)
            while_logging = sink.stats()
            logger.complete()
        stats = sink.stats()
        logger.remove()
        out[label] = {
            "sent_while_logging": while_logging["sent"],
            "dropped": stats["dropped_total"],
            "sent": stats["sent"],
        }
    return out


# -- 3: memory -------------------------------------------------------------------------------------


def _child(
    mode: str, args: dict[str, Any], timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    env = child_env()
    return subprocess.run(
        [sys.executable, str(HERE / "_child.py"), mode, json.dumps(args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _closed_url() -> str:
    from loguru_vlogs.testing import free_port

    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused


def memory_figure(n: int) -> dict[str, Any]:
    done = _child("memory", {"url": _closed_url(), "n": n})
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed: {done.stderr[-2000:]}")
    m = json.loads(done.stdout.strip().splitlines()[-1])
    per_record = (m["rss_after"] - m["rss_before"]) / m["records"]
    return {
        "records": m["records"],
        "rss_bytes_per_record": per_record,
        "line_bytes": m["line_bytes"],
        "ratio": per_record / m["line_bytes"],
        # A bytes object costs its length + 33 bytes, plus 8 for its slot in the deque.
        "object_floor_bytes": m["line_bytes"] + sys.getsizeof(b"") + 8,
        "rss_before": m["rss_before"],
        "rss_after": m["rss_after"],
        "dropped": m["dropped"],
    }


# -- 4: wire size -----------------------------------------------------------------------------------


def wire_figure(rx: Receiver, n: int) -> dict[str, Any]:
    settings = ["gzip", "zstd", "none"] if _have("zstandard") else ["gzip", "none"]
    mix = LoguruMix(logger)
    result: dict[str, Any] = {}
    for compression in settings:
        logger.remove()
        sink = VLogsSink(rx.url, compression=compression, **_QUIET)
        logger.add(sink, backtrace=False, diagnose=False)
        mix.burst(0, n)
        logger.complete()
        stats = sink.stats()
        logger.remove()
        sent = max(stats["sent"], 1)
        result[compression] = {
            "bytes_per_record": stats["bytes_sent"] / sent,
            "raw_bytes_per_record": stats["bytes_raw"] / sent,
            "records_per_request": stats["sent"] / max(stats["requests"], 1),
        }
    default = result["gzip"]["bytes_per_record"]
    result["ratio_none_over_default"] = result["none"]["bytes_per_record"] / default
    result["levels"] = compression_levels(mix)
    return result


def compression_levels(mix: LoguruMix) -> dict[str, Any]:
    """Ratio and µs per record of each codec level on one 1000-record batch of the mix."""
    try:
        from loguru_vlogs._record import RecordEncoder  # private: a sweep, not a figure
    except ImportError:
        return {}
    encoder = RecordEncoder(static_fields={"service": "run", "host": platform.node()})
    lines: list[bytes] = []
    logger.remove()
    logger.add(
        lambda message: lines.append(encoder.encode(message.record, message)),
        backtrace=False,
        diagnose=False,
    )
    mix.burst(0, 1000)
    logger.remove()
    body = b"\n".join(lines)
    codecs: dict[str, Callable[[bytes], bytes]] = {}
    for level in (1, 6, 9):
        codecs[f"gzip-{level}"] = functools.partial(_gzip, level=level)
    if _have("zstandard"):
        import zstandard

        for level in (1, 3, 9):
            codecs[f"zstd-{level}"] = zstandard.ZstdCompressor(level=level).compress
    out = {}
    for name, compress in codecs.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            size = len(compress(body))
            times.append(time.perf_counter() - started)
        out[name] = {"ratio": len(body) / size, "us_per_record": median(times) / len(lines) * 1e6}
    return out


def _gzip(data: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


# -- 5: exit latency -----------------------------------------------------------------------------


def _time_script(args: dict[str, Any]) -> float:
    env = child_env()
    command = [sys.executable, str(HERE / "_child.py"), "exit", json.dumps(args)]
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return (time.perf_counter() - started) * 1000.0


def _hyperfine(commands: dict[str, dict[str, Any]], reps: int) -> dict[str, float] | None:
    """Median ms of each script with hyperfine when it is installed, else None."""
    exe = shutil.which("hyperfine")
    if exe is None:
        return None
    names = list(commands)
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "hyperfine.json"
        argv = [
            exe,
            "-N",
            "--warmup",
            "1",
            "--runs",
            str(max(reps, 2)),
            "--export-json",
            str(export),
        ]
        for name in names:
            args = json.dumps(commands[name], separators=(",", ":"))
            argv.append(f"{sys.executable} {HERE / '_child.py'} exit {args}")
        env = child_env()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return None
        results = json.loads(export.read_text())["results"]
    return {name: r["median"] * 1000.0 for name, r in zip(names, results, strict=True)}


def exit_figure(primary: Receiver, extra: Receiver | None, sizes: Sizes) -> dict[str, Any]:
    n, reps = sizes.exit_records, sizes.exit_reps
    base = {"n": n, "shutdown_timeout": 5.0}
    scripts = {
        "noop": {**base, "sink": "noop", "url": primary.url},
        "up": {**base, "sink": "vlogs", "url": primary.url},
        "down": {
            **base,
            "sink": "vlogs",
            "url": _closed_url(),
            "shutdown_timeout": EXIT_DOWN_TIMEOUT,
        },
    }
    if extra is not None:
        scripts[f"up_{extra.kind}"] = {**base, "sink": "vlogs", "url": extra.url}
    tool = "hyperfine"
    medians = _hyperfine(scripts, reps)
    if medians is None:
        tool = "python (subprocess wall time)"
        samples: dict[str, list[float]] = {name: [] for name in scripts}
        _time_script(scripts["noop"])  # warm the OS caches once
        for _ in range(reps):
            for name, args in scripts.items():
                samples[name].append(_time_script(args))
        medians = {name: median(values) for name, values in samples.items()}
    result: dict[str, Any] = {
        "records": n,
        "tool": tool,
        "noop_ms": medians["noop"],
        "up_ms": medians["up"],
        "up_overhead_ms": medians["up"] - medians["noop"],
        "up_receiver": primary.kind,
        "down_ms": medians["down"],
        "down_overhead_ms": medians["down"] - medians["noop"],
        "down_shutdown_timeout_s": EXIT_DOWN_TIMEOUT,
    }
    if extra is not None:
        result[f"up_{extra.kind}_overhead_ms"] = medians[f"up_{extra.kind}"] - medians["noop"]
    return result


# -- 6: import time -----------------------------------------------------------------------------


def _importtime(code: str, module: str) -> float:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=HERE,  # not ROOT: "-c" puts the working directory first on sys.path
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000.0  # cumulative µs -> ms
    raise RuntimeError(f"{module} not found in -X importtime output")


def import_figure(reps: int) -> dict[str, Any]:
    ours, theirs = [], []
    _importtime("import loguru; import loguru_vlogs", "loguru_vlogs")  # writes the bytecode cache
    for _ in range(reps):
        # loguru first: loguru_vlogs's cumulative time then excludes loguru's own.
        ours.append(_importtime("import loguru; import loguru_vlogs", "loguru_vlogs"))
        theirs.append(_importtime("import loguru", "loguru"))
    return {"loguru_vlogs_ms": median(ours), "loguru_ms": median(theirs), "samples_ms": ours}


# -- the run --------------------------------------------------------------------------------------


@contextlib.contextmanager
def receivers(choice: str) -> Iterator[tuple[Receiver, Receiver | None]]:
    """(primary, null-or-None): the issue's receiver, plus the null one beside the fake or a
    real server (end-to-end figures against both)."""
    from loguru_vlogs.testing import find_binary

    kind = choice if choice != "auto" else ("real" if find_binary() else "fake")
    with Receiver(kind) as primary:
        if kind in ("fake", "real"):
            with Receiver("null") as null:
                yield primary, null
        else:
            yield primary, None


def run(sizes: Sizes, receiver_choice: str, quick: bool) -> dict[str, Any]:
    started = time.monotonic()
    figures: dict[str, Any] = {}
    load_start = load_average()
    with receivers(receiver_choice) as (primary, null), tempfile.TemporaryDirectory() as tmp:
        # ``fast``: the receiver that lets a shipper go as fast as it can (a real server, or the
        # null one): with the fake, its own CPU (about 60 µs per row) would be what is measured.
        fast = primary if primary.kind == "real" or null is None else null
        log(f"receiver: {primary.kind} ({primary.url}); fast receiver: {fast.kind}")
        log("6 import time")
        figures["import"] = import_figure(sizes.import_reps)
        log("1 caller overhead")
        figures["caller_overhead"] = caller_overhead(
            fast.url, sizes.caller_records, sizes.caller_pairs
        )
        figures["caller_overhead"]["receiver"] = fast.kind
        log(f"2 throughput ({primary.kind} receiver)")
        figures["throughput"] = throughput_figure(primary, sizes, Path(tmp))
        if null is not None:
            log("2 throughput (null receiver)")
            figures["throughput_null_receiver"] = throughput_figure(null, sizes, Path(tmp))
        log("2 sustained logging, GIL yields on and off")
        figures["sustained"] = sustained_figure(fast, sizes.memory_records * 3 // 2)
        log("3 memory")
        figures["memory"] = memory_figure(sizes.memory_records)
        log("4 wire size")
        figures["wire"] = wire_figure(fast, sizes.wire_records)
        log("5 exit latency")
        figures["exit"] = exit_figure(primary, null, sizes)
        log("7 scaling")
        figures["scaling"] = scaling_figure(fast, sizes)
        log(f"8 stdlib logging: VLogsHandler vs victorialogs-handler ({fast.kind} receiver)")
        figures["stdlib"] = stdlib_figure(fast, sizes)
    machine = {
        **machine_info(),
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine,
        "versions": versions(),
        "receiver": {"kind": primary.kind, "description": primary.description},
        "sizes": asdict(sizes),
        "figures": figures,
        "targets": targets(figures),
    }


def _burn(microseconds: float) -> Callable[[object], None]:
    """A control sink: spins ``microseconds`` per record, no lock, no I/O, no allocation."""
    seconds = microseconds * 1e-6
    clock = time.perf_counter

    def sink(_message: object) -> None:
        end = clock() + seconds
        while clock() < end:
            pass

    return sink


def write_time_us(url: str, n: int, reps: int) -> float:
    """Median µs spent inside ``VLogsSink.write`` per record (one thread): the time loguru's
    handler lock is held for it. The worker's share of the GIL is not in it."""
    sink = VLogsSink(url, **_QUIET)
    clock = time.perf_counter
    spent = [0.0]

    class Timed:
        def write(self, message: object) -> None:
            start = clock()
            sink.write(message)  # type: ignore[arg-type]
            spent[0] += clock() - start

    mix = LoguruMix(logger)
    samples = []
    for _ in range(reps):
        logger.remove()
        logger.add(Timed(), backtrace=False, diagnose=False)
        mix.burst(0, min(200, n))
        logger.complete()
        spent[0] = 0.0
        mix.burst(0, n)
        samples.append(spent[0] / n * 1e6)
        sink.drain(30.0)
    logger.remove()
    sink.close()
    return median(samples)


def control_overhead(n: int, pairs: int, threads: int, burn_us: float) -> dict[str, Any]:
    """Caller overhead of a sink that only burns ``burn_us`` µs of CPU, vs the no-op sink.

    ``burn_us`` is the time VLogsSink spends inside write() (under loguru's per-handler
    lock); at 4-8 threads the control shows what that lock does to any sink holding it that
    long.
    """
    wall, _ = paired_bursts({"noop": _noop, "burn": lambda: _burn(burn_us)}, n, pairs, threads)
    return {
        "burn_us": burn_us,
        "control_us": median(wall["burn"]),
        "control_ratio": _ratio(wall, "burn"),
    }


def scaling_figure(rx: Receiver, sizes: Sizes) -> dict[str, Any]:
    n, reps = sizes.scaling_records, sizes.scaling_pairs
    rows: list[dict[str, Any]] = []
    configs = [(t, False) for t in THREADS] + [(1, True)]
    burn_us = write_time_us(rx.url, n, reps)
    for threads, enqueue in configs:
        overhead = caller_overhead(rx.url, n, reps, threads=threads, enqueue=enqueue)
        control: dict[str, Any] = {}
        if not enqueue:
            control = control_overhead(n, reps, threads, burn_us)
        rates = [
            throughput_vlogs(rx, sizes.throughput_records, threads=threads, enqueue=enqueue)
            for _ in range(sizes.throughput_reps)
        ]
        rows.append(
            {
                "threads": threads,
                "enqueue": enqueue,
                "vlogs_us": overhead["vlogs_us"],
                "noop_us": overhead["noop_us"],
                "ratio": overhead["ratio"],
                "cpu_ratio": overhead["cpu_ratio"],
                "throughput_rps": _median_run(rates)["rps"],
                "control_ratio": control.get("control_ratio"),
            }
        )
    return {"receiver": rx.kind, "rows": rows, "control_burn_us": burn_us}


def targets(f: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 16 with the measured value and whether it is met."""
    exit_ = f["exit"]
    rows: list[tuple[str, float | None, str, float]] = []
    for key in ("throughput", "throughput_null_receiver"):
        if key in f:
            t = f[key]
            rx = t["receiver"]
            rows += [
                (
                    f"end to end vs loguru's text file sink, time ({rx})",
                    t.get("time_ratio_vs_text_file"),
                    "<=",
                    TARGET_VS_TEXT_FILE,
                ),
                (
                    f"throughput vs victorialogs-handler, loguru sink ({rx})",
                    t["ratio_vs_handler_via_loguru"],
                    ">=",
                    TARGET_THROUGHPUT,
                ),
            ]
    rows.append(("caller overhead (wall)", f["caller_overhead"]["ratio"], "<=", TARGET_OVERHEAD))
    for row in f["scaling"]["rows"]:
        if row["threads"] in (4, 8) and not row["enqueue"] and row.get("control_ratio"):
            rows.append(
                (
                    f"{row['threads']} threads: ratio above the control sink's",
                    row["ratio"] - row["control_ratio"],
                    "<=",
                    TARGET_THREADS_EXCESS,
                )
            )
    rows += [
        (
            "import loguru_vlogs after loguru (ms)",
            f["import"]["loguru_vlogs_ms"],
            "<=",
            TARGET_IMPORT_MS,
        ),
        ("memory per buffered record / line", f["memory"]["ratio"], "<=", TARGET_MEMORY),
        ("wire: uncompressed / default", f["wire"]["ratio_none_over_default"], ">=", TARGET_WIRE),
        ("exit latency, server up (ms)", exit_["up_overhead_ms"], "<=", TARGET_EXIT_UP_MS),
        (
            "exit latency, server down (ms)",
            exit_["down_overhead_ms"],
            "<=",
            EXIT_DOWN_TIMEOUT * 1000 + EXIT_DOWN_SLACK_MS,
        ),
    ]
    out = []
    for name, value, op, target in rows:
        met = None if value is None else (value <= target if op == "<=" else value >= target)
        out.append({"name": name, "value": value, "op": op, "target": target, "met": met})
    return out


# -- output ---------------------------------------------------------------------------------------


def _n(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _rps(run: dict[str, Any] | None) -> float | None:
    return None if run is None else float(run["rps"])


def table(result: dict[str, Any]) -> str:
    """The figures as a plain-text table (what ``run.py`` prints)."""
    f = result["figures"]
    m, v = result["machine"], result["versions"]
    lines = [
        f"loguru-vlogs benchmarks · {result['date']} · {m['cpu']}, {m['cores']} cores · "
        f"load {m['load_average_start']} → {m['load_average_end']}",
        f"Python {v['python']}, loguru {v['loguru']}, orjson {v['orjson']}, urllib3 {v['urllib3']}, "
        f"loguru-vlogs {v['loguru_vlogs']}, victorialogs-handler {v['victorialogs_handler']}"
        + ("  ·  QUICK: tiny sizes, the numbers mean nothing" if result["quick"] else ""),
        f"receiver: {result['receiver']['kind']} — {result['receiver']['description']}",
        "",
    ]
    rows: list[tuple[str, ...]] = [("figure", "loguru-vlogs", "compared with", "ratio")]
    co = f["caller_overhead"]
    rows += [
        (
            f"1 caller overhead, µs/call, wall ({co['receiver']} receiver)",
            _n(co["vlogs_us"], 2),
            f"no-op sink {_n(co['noop_us'], 2)}",
            _x(co["ratio"]),
        ),
        (
            "  process CPU µs/record, delivery included",
            _n(co["vlogs_cpu_us"], 2),
            f"no-op sink {_n(co['noop_cpu_us'], 2)}",
            _x(co["cpu_ratio"]),
        ),
    ]
    for key in ("throughput", "throughput_null_receiver"):
        if key not in f:
            continue
        t = f[key]
        vl = _n(t["vlogs"]["rps"], 0)
        rows += [
            (
                f"2 throughput, records/s ({t['receiver']} receiver)",
                vl,
                f"victorialogs-handler (stdlib) {_n(_rps(t['victorialogs_handler']), 0)}",
                _x(t["ratio_vs_handler"]),
            ),
            (
                "  tail: last call → all stored, ms",
                _n(t["vlogs"].get("tail_ms"), 0),
                f"GIL yields off: {_n(t['vlogs_gil_yields_off'].get('tail_ms'), 0)}",
                "",
            ),
            (
                "  sent while logging, %",
                _n(100 * t["vlogs"]["sent_while_logging"], 0),
                f"GIL yields off: {_n(100 * t['vlogs_gil_yields_off']['sent_while_logging'], 0)}"
                f" (records/s {_n(_rps(t['vlogs_gil_yields_off']), 0)})",
                "",
            ),
            (
                "",
                "",
                f"victorialogs-handler (loguru sink) {_n(_rps(t['victorialogs_handler_via_loguru']), 0)}",
                _x(t["ratio_vs_handler_via_loguru"]),
            ),
        ]
        if t["loguru_serialize_file"] is not None:
            serialize_rps = _rps(t["loguru_serialize_file"])
            rows.append(
                (
                    "",
                    "",
                    f"loguru serialize=True → file {_n(serialize_rps, 0)}",
                    _x(t["vlogs"]["rps"] / serialize_rps if serialize_rps else None),
                )
            )
        if t.get("loguru_text_file") is not None:
            rows += [
                (
                    "  end to end, time vs loguru's text file sink",
                    f'format="{t["sink_format"]}"',
                    f"loguru default text → file {_n(_rps(t['loguru_text_file']), 0)}",
                    _x(t["time_ratio_vs_text_file"]),
                ),
                (
                    "  same, the sink with loguru's default format",
                    _n(t["vlogs_default_format"]["rps"], 0),
                    "",
                    _x(t.get("time_ratio_vs_text_file_default_format")),
                ),
            ]
    su = f.get("sustained")
    if su is not None:
        on, off = su["yields_on"], su["yields_off"]
        rows.append(
            (
                f"2 {su['records']:,} flat out: sent while logging / dropped",
                f"{on['sent_while_logging']:,} / {on['dropped']:,}",
                f"GIL yields off: {off['sent_while_logging']:,} / {off['dropped']:,}",
                "",
            )
        )
    mem = f["memory"]
    rows.append(
        (
            f"3 memory, RSS bytes per buffered record ({mem['records']:,})",
            _n(mem["rss_bytes_per_record"], 0),
            f"JSON line {_n(mem['line_bytes'], 0)}",
            _x(mem["ratio"]),
        )
    )
    w = f["wire"]
    codecs = [c for c in ("gzip", "zstd", "none") if c in w]
    rows.append(
        (
            f"4 wire, bytes/record ({' / '.join(codecs)})",
            " / ".join(_n(w[c]["bytes_per_record"], 0) for c in codecs),
            "uncompressed ÷ gzip (default)",
            _x(w["ratio_none_over_default"]),
        )
    )
    e = f["exit"]
    rows.append(
        (
            f"5 exit, +ms vs no-op script, server up ({e['up_receiver']})",
            _n(e["up_overhead_ms"], 0),
            f"{e['records']:,} records; no-op script {_n(e['noop_ms'], 0)} ms",
            "",
        )
    )
    if "up_null_overhead_ms" in e:
        rows.append(("  same, null receiver", _n(e["up_null_overhead_ms"], 0), "", ""))
    rows.append(
        (
            f"  server down, shutdown_timeout={e['down_shutdown_timeout_s']:g} s",
            _n(e["down_overhead_ms"], 0),
            f"measured with {e['tool']}",
            "",
        )
    )
    imp = f["import"]
    rows.append(
        (
            "6 import loguru_vlogs after loguru, ms",
            _n(imp["loguru_vlogs_ms"], 1),
            f"loguru itself {_n(imp['loguru_ms'], 1)}",
            "",
        )
    )
    st = f.get("stdlib")
    if st is not None:
        rows += [
            (
                f"8 stdlib logging: VLogsHandler µs/call, wall ({st['receiver']} receiver)",
                _n(st["vlogs_us"], 2),
                f"victorialogs-handler {_n(st['victorialogs_handler_us'], 2)}; "
                f"no-op handler {_n(st['noop_us'], 2)}",
                _x(st["caller_ratio_vs_handler"]),
            ),
            (
                "  process CPU µs/record, delivery included",
                _n(st["vlogs_cpu_us"], 2),
                f"victorialogs-handler {_n(st['victorialogs_handler_cpu_us'], 2)}; "
                f"no-op handler {_n(st['noop_cpu_us'], 2)}",
                _x(st["cpu_ratio_vs_handler"]),
            ),
            (
                "  throughput, records/s",
                _n(_rps(st["vlogs_throughput"]), 0),
                f"victorialogs-handler {_n(_rps(st['victorialogs_handler_throughput']), 0)}",
                _x(st["throughput_ratio_vs_handler"]),
            ),
        ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[k]) for k, cell in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * widths[k] for k in range(4)))
    sc = f["scaling"]
    lines += [
        "",
        f"7 scaling ({sc['receiver']} receiver)",
        "threads  enqueue  VLogsSink µs/call  no-op µs/call  ratio  CPU ratio  records/s"
        f"  control ({_n(sc.get('control_burn_us'), 1)} µs spin) ratio",
    ]
    for r in sc["rows"]:
        lines.append(
            f"{r['threads']:>7}  {'yes' if r['enqueue'] else 'no':>7}  {r['vlogs_us']:>17.2f}  "
            f"{r['noop_us']:>13.2f}  {_x(r['ratio']):>5}  {_x(r['cpu_ratio']):>9}  "
            f"{r['throughput_rps']:>9,.0f}  {_x(r.get('control_ratio')):>10}"
        )
    lines += ["", "targets"]
    for t in result["targets"]:
        status = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(
            f"  {t['name']:<58} {_n(t['value'], 2):>9} {t['op']} {t['target']:<6g} {status}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"), help="JSON file")
    parser.add_argument("--chart", default=str(HERE / "results" / "chart.png"), help="PNG file")
    parser.add_argument(
        "--receiver",
        choices=("auto", "real", "fake", "null"),
        default="auto",
        help="auto: a victoria-logs binary if found ($VLOGS_BINARY or PATH), else the fake",
    )
    args = parser.parse_args(argv)
    result = run(QUICK if args.quick else FULL, args.receiver, args.quick)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nJSON: {out}")
    from _chart import draw

    chart = draw(result, Path(args.chart))
    print(f"chart: {chart}" if chart else "chart: skipped (matplotlib is not installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
