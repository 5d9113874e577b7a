"""The disk spool across processes: concurrent writers, SIGKILL, takeover, live owners, fork.

Each process is an "agent" (a fresh interpreter) driven line by line over stdin/stdout, so a
test decides exactly when it appends, drains, closes, exits or gets killed. Every batch is
identified by ``(writer, i)`` and must be read exactly once.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loguru_vlogs import _spool
from loguru_vlogs._spool import Spool

pytestmark = pytest.mark.subprocess

# The agents import the spool module alone (the package itself loads nothing else), from the
# same checkout as the tests.
SPOOL_PY = _spool.__file__
ROOT = str(Path(SPOOL_PY).resolve().parents[1])

AGENT = r"""
import importlib.util, json, os, sys, time
sys.path.insert(0, sys.argv[1])
from loguru_vlogs import _spool as mod
directory, who = sys.argv[2], sys.argv[3]
spool = None

def reply(obj):
    print(json.dumps(obj), flush=True)

def lines(i, pad):
    return [json.dumps({"w": who, "i": i, "j": j, "p": "x" * pad}).encode() for j in range(3)]

reply("ready")
for command in sys.stdin:
    cmd, *args = command.split()
    if cmd == "open":  # open FSYNC
        spool = mod.Spool(directory, segment_bytes=4096, fsync=args[0])
        reply("opened")
    elif cmd == "append":  # append START COUNT PAD
        start, count, pad = map(int, args)
        for i in range(start, start + count):
            spool.append(lines(i, pad))
        reply(count)
    elif cmd == "stream":  # stream PAD: append until killed, reporting each append that returned
        pad, i = int(args[0]), 0
        while True:
            spool.append(lines(i, pad))
            reply(i)
            i += 1
    elif cmd in ("drain", "ack"):  # drain | ack COUNT
        got = []
        while cmd == "drain" or len(got) < int(args[0]):
            entry = spool.peek()
            if entry is None:
                break
            first = json.loads(entry.lines[0])
            got.append([first["w"], first["i"]])
            spool.ack(entry)
        reply({"got": got, "dropped": spool.dropped, "unknown": spool.corrupt_unknown})
    elif cmd == "fork":  # fork SECONDS: a child that lives on, holding copies of our files
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            # os.fork() returns here only after the at-fork hooks ran: say so.
            os.write(ready_w, b"x")
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            time.sleep(float(args[0]))
            os._exit(0)
        os.read(ready_r, 1)
        reply(pid)
    elif cmd == "close":
        spool.close()
        reply("closed")
    elif cmd == "exit":  # without close(): the kernel releases the locks
        os._exit(0)
"""


class Agent:
    """One spool process, driven over stdin; its replies are JSON lines read by a thread."""

    def __init__(self, directory: Path, who: str, log_dir: Path) -> None:
        self.who = who
        self.stderr_path = log_dir / f"agent-{who}.stderr"
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", "-c", AGENT, ROOT, str(directory), who],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.replies: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read_all, daemon=True)
        self._reader.start()
        assert "ready" == self.read()

    def _read_all(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.replies.put(json.loads(line))
        self.replies.put(EOFError)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 10.0) -> Any:
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"agent {self.who}: no reply; stderr: {self.stderr()}") from None
        if reply is EOFError:
            raise AssertionError(f"agent {self.who} ended; stderr: {self.stderr()}")
        return reply

    def call(self, command: str, timeout: float = 10.0) -> Any:
        self.send(command)
        return self.read(timeout)

    def rest(self, timeout: float = 10.0) -> list[Any]:
        """Every reply still to come until the process's stdout closes."""
        out: list[Any] = []
        while True:
            reply = self.replies.get(timeout=timeout)
            if reply is EOFError:
                return out
            out.append(reply)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def kill(self) -> None:
        """SIGKILL, then reap."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def exit(self) -> None:
        self.send("exit")
        assert 0 == self.proc.wait(timeout=10), self.stderr()

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Any]:
    """Start agents on ``tmp_path/spool``; all are killed at the end of the test."""
    started: list[Agent] = []
    directory = tmp_path / "spool"

    def start(who: str) -> Agent:
        agent = Agent(directory, who, tmp_path)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.cleanup()


def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def ids(reply: dict[str, Any]) -> list[tuple[str, int]]:
    return [(w, i) for w, i in reply["got"]]


def test_concurrent_writers_then_one_reader_gets_every_entry_once(
    agents: Any, tmp_path: Path
) -> None:
    """Two processes append at the same time; a third reads each batch exactly once, in order."""
    a, b = agents("a"), agents("b")
    for agent in (a, b):
        assert "opened" == agent.call("open batch")
    for agent in (a, b):
        agent.send("append 0 200 40")  # both write before either is waited for
    assert [200, 200] == [a.read(), b.read()]
    assert "closed" == a.call("close")
    b.exit()  # b's locks go with its process
    reader = agents("reader")
    assert "opened" == reader.call("open never")
    reply = reader.call("drain")
    got = ids(reply)
    assert Counter({("a", i): 1 for i in range(200)} | {("b", i): 1 for i in range(200)}) == (
        Counter(got)
    )
    for who in ("a", "b"):
        assert list(range(200)) == [i for w, i in got if w == who]
    assert ({}, 0) == (reply["dropped"], reply["unknown"])
    assert [] == sorted(spool_dir(tmp_path).glob("*.seg"))


def test_writer_killed_after_appending_loses_nothing_and_resends_no_acked_entry(
    agents: Any,
) -> None:
    """SIGKILL right after N appends: a new process reads every unacked one, nothing acked."""
    writer = agents("w")
    assert "opened" == writer.call("open batch")
    assert 50 == writer.call("append 0 50 10")
    assert [("w", i) for i in range(10)] == ids(writer.call("ack 10"))
    writer.kill()
    reader = agents("reader")
    assert "opened" == reader.call("open batch")
    reply = reader.call("drain")
    assert [("w", i) for i in range(10, 50)] == ids(reply)
    assert ({}, 0) == (reply["dropped"], reply["unknown"])


def test_sigkill_during_appends_keeps_every_append_that_returned(agents: Any) -> None:
    """Killed mid-stream: every append that returned survives; at most the one in flight is torn."""
    writer = agents("w")
    assert "opened" == writer.call("open batch")
    writer.send("stream 500")
    for expected in range(40):
        assert expected == writer.read()
    writer.kill()
    returned = 40 + len(writer.rest())
    reader = agents("reader")
    assert "opened" == reader.call("open never")
    reply = reader.call("drain")
    got = ids(reply)
    assert [("w", i) for i in range(len(got))] == got
    # The append in progress at the kill may have reached the file whole (read), torn
    # (counted as damage), or not at all.
    assert returned <= len(got) <= returned + 1
    torn = sum(reply["dropped"].values()) // 3 + reply["unknown"]
    assert len(got) + torn <= returned + 1


def test_live_owners_segments_are_never_taken_over(agents: Any, tmp_path: Path) -> None:
    """While the writer lives, another process sees its bytes but reads none of its entries."""
    owner = agents("owner")
    assert "opened" == owner.call("open batch")
    assert 20 == owner.call("append 0 20 200")
    with Spool(spool_dir(tmp_path)) as other:
        other.rescan()
        assert other.peek() is None
        assert (0, 0) == other.pending()
        on_disk = sum(p.stat().st_size for p in spool_dir(tmp_path).glob("*.seg"))
        assert on_disk == other.stats()["foreign_bytes"]
        assert [("owner", i) for i in range(5)] == ids(owner.call("ack 5"))
        assert "closed" == owner.call("close")
        other.rescan()
        got = []
        while (entry := other.peek()) is not None:
            got.append(json.loads(entry.lines[0])["i"])
            other.ack(entry)
        assert list(range(5, 20)) == got


def test_dead_writers_segments_are_taken_over_exactly_once_by_competing_survivors(
    agents: Any, tmp_path: Path
) -> None:
    """Two processes rescan for the same dead segments at once: each batch goes to exactly one."""
    writer = agents("w")
    assert "opened" == writer.call("open never")
    assert 400 == writer.call("append 0 400 60")
    assert len(list(spool_dir(tmp_path).glob("*.seg"))) >= 20
    writer.exit()
    first, second = agents("r1"), agents("r2")
    for reader in (first, second):
        reader.send("open never")
    assert ["opened", "opened"] == [first.read(), second.read()]
    for reader in (first, second):
        reader.send("drain")
    one, two = first.read(), second.read()
    assert Counter({("w", i): 1 for i in range(400)}) == Counter(ids(one) + ids(two))
    assert set() == set(ids(one)) & set(ids(two))
    assert [] == sorted(spool_dir(tmp_path).glob("*.seg"))


def test_forked_child_does_not_keep_the_dead_parents_segments_locked(
    agents: Any, tmp_path: Path
) -> None:
    """A child forked by the writer lets go of the inherited locks, so takeover still works."""
    writer = agents("w")
    assert "opened" == writer.call("open batch")
    assert 20 == writer.call("append 0 20 10")
    child = writer.call("fork 30")
    try:
        writer.kill()
        assert _alive(child)
        with Spool(spool_dir(tmp_path)) as survivor:
            got = []
            while (entry := survivor.peek()) is not None:
                got.append(json.loads(entry.lines[0])["i"])
                survivor.ack(entry)
            assert list(range(20)) == got
            assert _alive(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


EXIT_APPEND = r"""
import atexit, importlib.util, sys, weakref
sys.path.insert(0, sys.argv[1])
from loguru_vlogs import _spool as mod
# Registered before the first weakref.finalize exists, so it runs after finalizers' exit hook.
assert not weakref.finalize._registered_with_atexit
atexit.register(lambda: spool.append([b'{"at":"exit"}']))
spool = mod.Spool(sys.argv[2])
"""


def test_spool_still_takes_batches_from_exit_handlers(tmp_path: Path) -> None:
    """The spool's files stay open through interpreter exit, for the sink's last spooling."""
    run = subprocess.run(
        [sys.executable, "-c", EXIT_APPEND, ROOT, str(spool_dir(tmp_path))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (0, "") == (run.returncode, run.stderr)
    with Spool(spool_dir(tmp_path)) as reader:
        entry = reader.peek()
        assert entry is not None
        assert [b'{"at":"exit"}'] == entry.lines
