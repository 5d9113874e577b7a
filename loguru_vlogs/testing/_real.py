"""Run a real ``victoria-logs`` binary for tests: free port, temporary data dir, 100y retention."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ._client import VLogsClient

#: Environment variable naming the binary (wins over ``PATH``).
BINARY_ENV = "VLOGS_BINARY"
#: Names looked up on ``PATH`` (release archives ship ``victoria-logs-prod``).
BINARY_NAMES = ("victoria-logs", "victoria-logs-prod")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may take it before you do)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary() -> str | None:
    """``$VLOGS_BINARY`` if set, else ``victoria-logs`` (or ``-prod``) on ``PATH``, else None."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        return configured
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class RealVictoriaLogs(VLogsClient):
    """A ``victoria-logs`` process on loopback, with the :class:`VLogsClient` query methods.

    Data lives in ``data_dir`` (a temporary directory removed on :meth:`stop` unless given).
    :meth:`stop` then :meth:`start` restarts the process on the same port with the same data,
    which delivery tests use to simulate a server restart.
    """

    kind = "real"

    def __init__(
        self,
        binary: str | None = None,
        *,
        port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        retention: str = "100y",
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        found = binary or find_binary()
        if found is None:
            raise FileNotFoundError(
                f"no victoria-logs binary: set {BINARY_ENV} or put victoria-logs on PATH"
            )
        self.binary = found
        self.port = port or free_port()
        self.retention = retention
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="vlogs-"))
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path = self.data_dir.parent / f"{self.data_dir.name}.log"
        super().__init__(f"http://127.0.0.1:{self.port}")

    def command(self) -> list[str]:
        """The command line started by :meth:`start`."""
        return [
            self.binary,
            f"-storageDataPath={self.data_dir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-retentionPeriod={self.retention}",
            *self.extra_args,
        ]

    def start(self) -> RealVictoriaLogs:
        """Start the process and wait until ``/health`` answers ``OK``."""
        if self._process is not None and self._process.poll() is None:
            return self
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - the binary is the caller's choice
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self.startup_timeout
        while not self.healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
                raise RuntimeError(
                    f"victoria-logs did not become healthy: {self.command()}\n{tail}"
                )
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0, *, remove_data: bool = False) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout``)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if remove_data:
            self.remove_data()

    def remove_data(self) -> None:
        """Delete the data directory (only one this object created)."""
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                self._log.unlink()

    def force_merge(self, timeout: float = 60.0) -> None:
        """Flush, then merge every part now and wait for the merge to finish.

        The server drops rows while merging too (a merged block of one stream may hold at most
        2,000 distinct field names), so a test that wants the final state calls this.
        """
        marker = "forced merge for partition_prefix"
        done = self._log_text().count(marker) if self._log.exists() else 0
        self.force_flush()
        status, body = self._request("/internal/force_merge")
        if status != 200:
            raise RuntimeError(f"/internal/force_merge answered {status}: {body[:200]!r}")
        deadline = time.monotonic() + timeout
        # The merge runs in the background; the server logs its start and its end.
        while self._log_text().count(marker) < done + 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the forced merge did not finish within {timeout}s")
            time.sleep(0.05)

    def _log_text(self) -> str:
        return self._log.read_text(errors="replace")

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> RealVictoriaLogs:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(remove_data=True)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RealVictoriaLogs({self.url!r}, {state}, binary={self.binary!r})"
