"""SIGTERM and friends: what a process stopped by `docker stop`, Kubernetes, systemd or
`Pool.terminate()` delivers, how it dies, and how long it takes.

Each scenario runs in a fresh interpreter (``tests/proc_scripts/signals.py``) against
``vlogs_server`` (a real VictoriaLogs when one is on PATH); its records carry a ``run_id``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from .helpers import closed_port_url, subprocess_env

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

ROOT = Path(__file__).resolve().parents[1]
#: The issue's bound: the process is gone within shutdown_timeout + 1 s of SIGTERM.
SLACK = 1.0
#: Longest a scenario may take to log and say READY (interpreter start included).
START_TIMEOUT = 30.0


@dataclass
class Ended:
    """How a signalled scenario ended: return code, seconds from the signal, its output."""

    returncode: int
    elapsed: float
    stdout: str
    stderr: str


def _read_line(stream: IO[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            return stream.readline().decode()
    return ""


@pytest.fixture
def scenario() -> Iterator[Any]:
    """``scenario(name, url, **params)`` starts one; every process it left is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        name: str, url: str, *, command: list[str] | None = None, **params: Any
    ) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "tests.proc_scripts.signals", name, url, json.dumps(params)]
        proc = subprocess.Popen(
            [*(command or []), *argv],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its children (and grandchildren) are killed together
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        kill_group(proc)
        proc.communicate(timeout=10)  # closes its pipes


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def signal_when_ready(
    proc: subprocess.Popen[bytes], signum: int, timeout: float, *, after: float = 0.0
) -> Ended:
    """Wait for READY (then ``after`` seconds more), send ``signum``, wait for the exit."""
    assert proc.stdout is not None
    line = _read_line(proc.stdout, START_TIMEOUT)
    assert "READY\n" == line, line
    if after:
        time.sleep(after)  # what the scenario does meanwhile is the point, not a synchronisation
    sent = time.monotonic()
    os.kill(proc.pid, signum)
    try:
        returncode = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        pytest.fail(f"still running {timeout}s after {signal.Signals(signum).name}")
    elapsed = time.monotonic() - sent
    kill_group(proc)  # what it started (glibc system()'s shell) holds its pipes open
    out, err = proc.communicate(timeout=10)
    return Ended(returncode, elapsed, out.decode(), err.decode())


def run_to_end(proc: subprocess.Popen[bytes], timeout: float = 90.0) -> dict[str, Any]:
    """Wait for a scenario that ends by itself; its JSON result."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        pytest.fail(f"still running after {timeout}s (hang)")
    assert 0 == proc.returncode, err.decode()
    result: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    return result


def query(run_id: str) -> str:
    return f'run_id:="{run_id}"'


def stored(server: Any, run_id: str, n: int, timeout: float = 15.0) -> int:
    """How many records of ``run_id`` the server has, once ``n`` are there (or at ``timeout``)."""
    return int(server.wait_for_count(query(run_id), n, timeout=timeout))


def stored_now(server: Any, run_id: str) -> int:
    """What the server has of ``run_id`` now (for a process that is gone: all it will ever get)."""
    server.force_flush()
    return int(server.count(query(run_id)))


def arrived(server: Any, run_id: str, limit: int) -> Counter[tuple[str, int]]:
    rows = server.rows(query(run_id), limit=limit)
    return Counter((row["who"], int(row["i"])) for row in rows)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex


# -- SIGTERM: flush, then die by SIGTERM --------------------------------------------------------


def test_sigterm_delivers_every_record_and_the_process_dies_by_sigterm(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """999 records, then SIGTERM: all 999 stored, killed by SIGTERM within shutdown_timeout + 1 s."""
    proc = scenario("wait_for_signal", vlogs_server.url, run_id=run_id, n=999)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert -signal.SIGTERM == ended.returncode, ended.stderr
    assert ended.elapsed < 5.0 + SLACK
    assert "" == ended.stderr
    assert 999 == stored(vlogs_server, run_id, 999)


def test_the_stdlib_handler_flushes_on_sigterm_too(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """VLogsHandler runs on the same engine: 999 records, SIGTERM, 999 stored, death by SIGTERM."""
    proc = scenario("stdlib_handler", vlogs_server.url, run_id=run_id, n=999)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert -signal.SIGTERM == ended.returncode, ended.stderr
    assert ended.elapsed < 5.0 + SLACK
    assert 999 == stored(vlogs_server, run_id, 999)


def test_with_the_option_off_sigterm_kills_at_once_and_nothing_is_sent(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """handle_sigterm=False: today's default action, the process is killed and sends nothing."""
    options = {"handle_sigterm": False}
    proc = scenario("wait_for_signal", vlogs_server.url, run_id=run_id, n=999, options=options)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert (-signal.SIGTERM, "") == (ended.returncode, ended.stderr)
    assert 0 == stored_now(vlogs_server, run_id)


def test_the_variable_turns_the_handler_off() -> None:
    """VLOGS_HANDLE_SIGTERM=false leaves SIGTERM's default action to a sink made by from_env()."""
    code = (
        "import signal; from loguru_vlogs import VLogsSink; VLogsSink.from_env(); "
        "print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)"
    )
    answers = []
    for value in ("false", "true"):
        env = subprocess_env(VLOGS_URL="http://127.0.0.1:9", VLOGS_HANDLE_SIGTERM=value)
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        answers.append(result.stdout.strip())
    assert ["True", "False"] == answers


def test_an_application_handler_installed_first_is_kept(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """The application's SIGTERM handler calls sys.exit(0): exit status 0, the exit hook sends 999."""
    proc = scenario("app_handler_first", vlogs_server.url, run_id=run_id, n=999)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert (0, "") == (ended.returncode, ended.stderr)
    assert 999 == stored(vlogs_server, run_id, 999)


@pytest.mark.slow
def test_a_framework_handler_installed_later_wins_and_its_re_raise_still_flushes(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """uvicorn's pattern: its handler runs the graceful shutdown (which logs), then it restores
    ours and raises SIGTERM again: everything is delivered and the process dies by SIGTERM."""
    proc = scenario("framework_later", vlogs_server.url, run_id=run_id, n=500)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert (-signal.SIGTERM, "") == (ended.returncode, ended.stderr)
    assert 1000 == stored(vlogs_server, run_id, 1000)
    assert {"serving": 500, "shutting-down": 500} == Counter(
        who for who, _ in arrived(vlogs_server, run_id, 2000)
    )


@pytest.mark.slow
def test_a_sink_made_outside_the_main_thread_leaves_sigterm_alone(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """signal.signal works in the main thread only: no handler, today's behaviour."""
    proc = scenario("sink_in_a_thread", vlogs_server.url, run_id=run_id, n=10)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert (-signal.SIGTERM, "") == (ended.returncode, ended.stderr)
    assert 0 == stored_now(vlogs_server, run_id)


@pytest.mark.slow
def test_an_event_loop_holding_the_wakeup_fd_keeps_it_and_sigterm_still_flushes(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """asyncio's add_signal_handler set the wakeup fd first: the sink leaves it (no watchdog
    for a main thread stuck in C then) and its handler still delivers everything."""
    proc = scenario("event_loop_first", vlogs_server.url, run_id=run_id, n=999)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert (-signal.SIGTERM, "") == (ended.returncode, ended.stderr)
    assert 999 == stored(vlogs_server, run_id, 999)


@pytest.mark.slow
def test_sigterm_with_the_server_down_reports_the_loss_and_dies_in_time(
    scenario: Any, run_id: str
) -> None:
    """Server down: stderr says how many records were lost; still dead by SIGTERM in time."""
    options = {"shutdown_timeout": 1.0}
    proc = scenario("wait_for_signal", closed_port_url(), run_id=run_id, n=999, options=options)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert -signal.SIGTERM == ended.returncode
    assert ended.elapsed < 1.0 + SLACK
    assert "loguru-vlogs: 999 records could not be delivered to " in ended.stderr


@pytest.mark.slow
def test_sigterm_with_the_server_down_spools_and_a_later_process_delivers(
    vlogs_server: Any, scenario: Any, run_id: str, tmp_path: Path
) -> None:
    """With spool_dir, the 999 records go to the spool (below spool_threshold, at SIGTERM) and
    the next process using the spool delivers them."""
    spool = str(tmp_path / "spool")
    options = {"shutdown_timeout": 1.0, "spool_dir": spool}
    proc = scenario("wait_for_signal", closed_port_url(), run_id=run_id, n=999, options=options)
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert -signal.SIGTERM == ended.returncode
    assert ended.elapsed < 1.0 + SLACK
    assert f"loguru-vlogs: 999 records wait in the spool {spool}" in ended.stderr
    later = scenario("wait_for_signal", vlogs_server.url, run_id=run_id, n=0, options=options)
    assert -signal.SIGTERM == signal_when_ready(later, signal.SIGTERM, timeout=30).returncode
    assert 999 == stored(vlogs_server, run_id, 999)


@pytest.mark.slow
def test_a_main_thread_stuck_in_c_code_is_flushed_by_the_watchdog(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """The main thread waits in C code that retries on EINTR (glibc system()): the Python
    handler cannot run; the watchdog thread flushes and the process still dies by SIGTERM."""
    proc = scenario("wait_for_signal", vlogs_server.url, run_id=run_id, n=999, how="c")
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30)
    assert (-signal.SIGTERM, "") == (ended.returncode, ended.stderr)
    assert ended.elapsed < 5.0 + SLACK
    assert 999 == stored(vlogs_server, run_id, 999)


@pytest.mark.slow
def test_sigterm_while_the_main_thread_logs_flat_out(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """The signal lands in the middle of logging calls (inside the sink's locks at times):
    no deadlock, every record logged before the death is stored once, death by SIGTERM."""
    options = {"flush_interval": 0.05}
    proc = scenario(
        "wait_for_signal", vlogs_server.url, run_id=run_id, n=1, how="log", options=options
    )
    ended = signal_when_ready(proc, signal.SIGTERM, timeout=30, after=0.2)
    assert (-signal.SIGTERM, "") == (ended.returncode, ended.stderr)
    assert ended.elapsed < 5.0 + SLACK
    found = stored_now(vlogs_server, run_id)
    busy = arrived(vlogs_server, run_id, found + 10)
    assert {1} == set(busy.values())
    numbers = sorted(i for who, i in busy if who == "busy")
    assert list(range(len(numbers))) == numbers  # no gap: nothing logged before it was lost


@pytest.mark.slow
def test_a_second_sigterm_during_the_flush_ends_the_process_at_once(scenario: Any) -> None:
    """The flush waits for a dead server; a second SIGTERM does not wait for it."""
    options = {"shutdown_timeout": 30.0}
    proc = scenario("wait_for_signal", closed_port_url(), run_id="x", n=10, options=options)
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert "READY\n" == _read_line(proc.stdout, START_TIMEOUT)
    os.kill(proc.pid, signal.SIGTERM)
    # The flush is under way once its first attempt failed.
    assert "sending failed, will retry" in _read_line(proc.stderr, 10)
    assert proc.poll() is None
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert -signal.SIGTERM == proc.wait(10)
    assert time.monotonic() - sent < SLACK


@pytest.mark.slow
def test_sigint_raises_keyboard_interrupt_and_the_exit_hook_flushes(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """SIGINT is Python's (KeyboardInterrupt): the exit hook sends everything after the
    traceback (the sink leaves SIGINT alone)."""
    proc = scenario("wait_for_signal", vlogs_server.url, run_id=run_id, n=999)
    ended = signal_when_ready(proc, signal.SIGINT, timeout=30)
    assert 1 == ended.returncode  # `python -m` reports the uncaught KeyboardInterrupt so
    assert ended.stderr.rstrip().endswith("KeyboardInterrupt")
    assert 999 == stored(vlogs_server, run_id, 999)


@pytest.mark.slow
def test_the_sighup_recipe_flushes_through_the_exit_hook(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """The sink leaves SIGHUP alone; docs/production.md's one-line handler makes it flush."""
    proc = scenario("sighup_recipe", vlogs_server.url, run_id=run_id, n=999)
    ended = signal_when_ready(proc, signal.SIGHUP, timeout=30)
    assert (128 + signal.SIGHUP, "") == (ended.returncode, ended.stderr)
    assert 999 == stored(vlogs_server, run_id, 999)


def _can_unshare_pid() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--pid", "--fork", "--kill-child", "true"]
    return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare_pid(), reason="needs `unshare --pid` (root)")
def test_python_as_pid_1_flushes_and_exits_on_sigterm(
    vlogs_server: Any, scenario: Any, run_id: str
) -> None:
    """As PID 1 of a namespace (a container without an init) the kernel ignores SIGTERM's
    default action: the handler flushes, then exits with 143 (128 + SIGTERM), like tini."""
    command = ["unshare", "--pid", "--fork", "--kill-child"]
    proc = scenario("wait_for_signal", vlogs_server.url, run_id=run_id, n=999, command=command)
    assert proc.stdout is not None
    line = _read_line(proc.stdout, START_TIMEOUT)
    assert "READY\n" == line
    (python,) = _children(proc.pid)  # unshare's child: PID 1 inside
    sent = time.monotonic()
    os.kill(python, signal.SIGTERM)
    assert 128 + signal.SIGTERM == proc.wait(5.0 + SLACK)  # unshare passes the status on
    assert time.monotonic() - sent < 5.0 + SLACK
    assert 999 == stored(vlogs_server, run_id, 999)


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


# -- pools --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("kind", ["pool", "executor"])
def test_pool_workers_terminated_on_exit_deliver_what_they_logged(
    vlogs_server: Any, scenario: Any, run_id: str, method: str, kind: str
) -> None:
    """`with Pool(3) as p: p.map(task, range(30))` terminates its workers (SIGTERM) on exit;
    ProcessPoolExecutor lets them exit: either way, 30 tasks of 50 records, each stored once.
    The parent exits 0: its workers' signals never reach its own watchdog."""
    proc = scenario("pool", vlogs_server.url, run_id=run_id, method=method, kind=kind)
    run_to_end(proc)
    assert 1500 == stored(vlogs_server, run_id, 1500)
    expected = Counter({(f"task-{k}", i): 1 for k in range(30) for i in range(50)})
    assert expected == arrived(vlogs_server, run_id, 2000)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_billiard_pool_workers_deliver_what_they_logged(
    vlogs_server: Any, scenario: Any, run_id: str, method: str
) -> None:
    """billiard (Celery's multiprocessing), when installed: the same `with Pool` block."""
    pytest.importorskip("billiard")
    proc = scenario("pool", vlogs_server.url, run_id=run_id, method=method, kind="billiard")
    run_to_end(proc)
    assert 1500 == stored(vlogs_server, run_id, 1500)


# -- loguru-vlogs ship --------------------------------------------------------------------------


def _unread_bytes(pipe: IO[bytes]) -> int:
    """Bytes written to the pipe that its reader has not taken yet (Linux FIONREAD)."""
    import fcntl
    import struct
    import termios

    raw = fcntl.ioctl(pipe.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGTERM, id="SIGTERM"),
        pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow),
    ],
)
def test_ship_stopped_while_its_input_is_open_sends_what_it_read_and_exits_0(
    vlogs_server: Any, run_id: str, signum: signal.Signals
) -> None:
    """`(seq 500; sleep 5) | loguru-vlogs ship ...`, then SIGTERM (or SIGINT): 500 stored,
    exit status 0, the summary, and no fatal error from a thread blocked on stdin."""
    command = [sys.executable, "-m", "loguru_vlogs", "ship", "--url", vlogs_server.url]
    command += ["--field", f"run_id={run_id}"]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(VLOGS_FLUSH_INTERVAL="60"),
    ) as proc:
        assert proc.stdin is not None
        assert proc.stderr is not None
        try:
            proc.stdin.write(b"".join(b"%d\n" % i for i in range(1, 501)))
            proc.stdin.flush()
            deadline = time.monotonic() + START_TIMEOUT
            while _unread_bytes(proc.stdin) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert 0 == _unread_bytes(proc.stdin)
            proc.send_signal(signum)
            returncode = proc.wait(10)  # stdin still open
            err = proc.stderr.read().decode()
        finally:
            proc.kill()
    assert 0 == returncode, err
    lines = err.splitlines()
    assert [
        f"loguru-vlogs ship: {signum.name}: sending what was read (up to 5 s)",
        "loguru-vlogs ship: 500 lines read, 500 records sent in 1 requests",
    ] == lines
    assert 500 == stored(vlogs_server, run_id, 500)
