"""Receivers for the benchmark, each in its own process (so it never shares our GIL).

- ``real``: a ``victoria-logs`` binary (``$VLOGS_BINARY`` or ``PATH``), via ``RealVictoriaLogs``.
- ``fake``: the package's ``FakeVictoriaLogs`` (``loguru_vlogs.testing.serve``): parses every
  line like the server and stores it, in pure Python, so its ingest rate is a ceiling.
- ``null``: this file run as a script: HTTP/1.1 keep-alive, decompresses each body (gzip, zstd
  or none), checks every line is a JSON object and counts it. It stores nothing, so a shipper
  measured against it shows its own limit, closer to what a real (Go) server lets through.

Run ``python benchmarks/_receivers.py`` to start a null receiver; it prints ``READY <url>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
_STARTUP_TIMEOUT = 30.0


# -- the null receiver (server side) -------------------------------------------------------------


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        #: bodies received and not yet checked: (Content-Encoding, body)
        self.pending: list[tuple[str, bytes]] = []
        self.rows = 0
        self.invalid = 0
        self.requests = 0
        self.bytes_wire = 0
        self.bytes_raw = 0

    def settle(self) -> None:
        """Decompress, check and count the pending bodies (call with ``lock`` held)."""
        pending, self.pending = self.pending, []
        for encoding, wire in pending:
            try:
                raw = _decode(wire, encoding)
            except Exception:
                self.invalid += 1
                continue
            self.bytes_raw += len(raw)
            for line in raw.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    ok = type(orjson.loads(line)) is dict
                except orjson.JSONDecodeError:
                    ok = False
                if ok:
                    self.rows += 1
                else:
                    self.invalid += 1


_COUNTS = _Counts()


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return zlib.decompress(body, 47)  # 32 + 15: gzip or zlib framing
    if encoding == "zstd":
        import zstandard

        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(body))
    return body


class _NullHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        wire = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path == "/reset":
            with _COUNTS.lock:
                _COUNTS.reset()
            self._reply(200)
            return
        if path != "/insert/jsonline":
            self._reply(404)
            return
        # Checked and counted when asked (GET /stats), not here: while a shipper runs, the
        # receiver costs it only the reading of each body (on 2 cores its CPU would be taken
        # from the shipper's process; a real server runs on another machine).
        with _COUNTS.lock:
            _COUNTS.pending.append((self.headers.get("Content-Encoding", "").strip().lower(), wire))
            _COUNTS.requests += 1
            _COUNTS.bytes_wire += len(wire)
        self._reply(200)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/health":
            self._reply(200, b"OK")
            return
        with _COUNTS.lock:
            _COUNTS.settle()
            stats = {
                "rows": _COUNTS.rows,
                "invalid": _COUNTS.invalid,
                "requests": _COUNTS.requests,
                "bytes_wire": _COUNTS.bytes_wire,
                "bytes_raw": _COUNTS.bytes_raw,
            }
        self._reply(200, json.dumps(stats).encode())


def serve_null(port: int = 0) -> None:
    """Serve the null receiver on 127.0.0.1 until killed; print ``READY <url>`` once listening."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _NullHandler)
    server.daemon_threads = True
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)


# -- the client side -------------------------------------------------------------------------------

_FAKE_CODE = (
    "from loguru_vlogs.testing import serve\n"
    "serve(0, on_ready=lambda url: print('READY', url, flush=True))\n"
)

DESCRIPTIONS = {
    "real": "VictoriaLogs (victoria-logs binary) in its own process",
    "fake": "loguru_vlogs.testing.FakeVictoriaLogs (pure Python, stores every row) in its own process",
    "null": "benchmarks/_receivers.py null receiver (decompress + JSON-check + count, no storage) in its own process",
}


def _http(url: str, method: str = "GET", timeout: float = 10.0) -> bytes:
    import urllib.request

    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return bytes(response.read())


class Receiver:
    """One receiver process; ``begin_run()`` starts a run whose rows ``count()`` counts."""

    def __init__(self, kind: str) -> None:
        if kind not in DESCRIPTIONS:
            raise ValueError(
                f"Invalid receiver, it should be one of {sorted(DESCRIPTIONS)}, not: {kind!r}"
            )
        self.kind = kind
        self.description = DESCRIPTIONS[kind]
        self.url = ""
        self.run_id = ""
        self._process: subprocess.Popen[str] | None = None
        self._real: Any = None
        self._client: Any = None

    # lifecycle
    def start(self) -> Receiver:
        if self.kind == "real":
            from loguru_vlogs.testing import RealVictoriaLogs

            self._real = RealVictoriaLogs().start()
            self.url = self._real.url
            self._client = self._real
            return self
        if self.kind == "fake":
            command = [sys.executable, "-c", _FAKE_CODE]
        else:
            command = [sys.executable, str(Path(__file__).resolve())]
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # start fast: compile the package only once
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)]))
        self._process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self._wait_ready(self._process)
        if self.kind == "fake":
            from loguru_vlogs.testing import VLogsClient

            self._client = VLogsClient(self.url, timeout=30.0)
        return self

    @staticmethod
    def _wait_ready(process: subprocess.Popen[str]) -> str:
        found: list[str] = []

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith("READY "):
                    found.append(line.split()[1])
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(_STARTUP_TIMEOUT)
        if not found:
            process.kill()
            process.wait(5)
            raise RuntimeError(f"receiver did not start within {_STARTUP_TIMEOUT:g} s")
        return found[0]

    def stop(self) -> None:
        if self._real is not None:
            self._real.stop(remove_data=True)
            self._real = None
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # runs
    def begin_run(self) -> str:
        """Start counting afresh; returns the run id to put in every record (field ``bench_run``)."""
        self.run_id = uuid.uuid4().hex[:12]
        if self.kind == "fake":
            # Its queries scan every stored row: a fresh process keeps counting cheap.
            self.stop()
            self.start()
        elif self.kind == "null":
            _http(self.url + "/reset", "POST")
        return self.run_id

    def count(self) -> int:
        """Rows of the current run the receiver holds."""
        if self.kind == "null":
            return int(json.loads(_http(self.url + "/stats"))["rows"])
        if self.kind == "real":
            self._client.force_flush()
            # victorialogs-handler as a loguru sink ships loguru's extras as one object
            # ("extra": {...}), which the server flattens to extra.bench_run.
            run = self.run_id
            return int(self._client.count(f'bench_run:="{run}" OR extra.bench_run:="{run}"'))
        return int(self._client.count("*"))

    def stats(self) -> dict[str, int]:
        """The null receiver's counters (rows, invalid, requests, bytes_wire, bytes_raw)."""
        if self.kind != "null":
            raise ValueError("only the null receiver keeps wire statistics")
        return dict(json.loads(_http(self.url + "/stats")))

    def wait_for(self, n: int, timeout: float, interval: float) -> tuple[int, float]:
        """Poll until ``n`` rows of this run are stored; ``(count, monotonic time seen)``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.count()
            now = time.monotonic()
            if found >= n or now >= deadline:
                return found, now
            time.sleep(interval)


if __name__ == "__main__":
    serve_null(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
