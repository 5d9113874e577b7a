"""Shared test helpers: a deadline-bound wait and an in-memory transport."""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru_vlogs import VLogsSink
from loguru_vlogs._buffer import Buffer
from loguru_vlogs._config import Endpoint, Settings
from loguru_vlogs._diag import RateLimited
from loguru_vlogs._options import build_settings
from loguru_vlogs._transport import Outcome
from loguru_vlogs._worker import Worker


def wait_for(
    predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.005
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its last truth."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


def fast_sink(url: str, **kwargs: Any) -> VLogsSink:
    """A sink that sends at once and retries fast, so each failure shows within milliseconds."""
    options: dict[str, Any] = {
        "flush_interval": 0.01,
        "backoff_base": 0.02,
        "backoff_max": 0.05,
        "timeout": 2.0,
        "shutdown_timeout": 0.3,
    }
    options.update(kwargs)
    return VLogsSink(url, **options)


def settings(url: object = "http://127.0.0.1:9", **overrides: Any) -> Settings:
    """Settings with the table's defaults (VLogsSink's), overridden by ``overrides``."""
    return build_settings(url, **overrides)


class FakeTransport:
    """Records every request; answers from a script (default: 200); can be held by a gate."""

    def __init__(self, script: list[Outcome] | None = None) -> None:
        self.script = list(script or [])
        self.sent: list[tuple[str, list[bytes]]] = []
        self.attempts = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def send(
        self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timeout: float
    ) -> Outcome:
        self.entered.set()
        self.gate.wait(timeout)
        with self.lock:
            self.attempts += 1
            outcome = self.script.pop(0) if self.script else Outcome(status=200)
            if outcome.status is not None and 200 <= outcome.status < 300:
                raw = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
                self.sent.append((endpoint.base_url, raw.split(b"\n")))
        return outcome

    def close(self) -> None:
        pass

    def lines(self) -> list[bytes]:
        with self.lock:
            return [line for _, batch in self.sent for line in batch]


def make_worker(transport: FakeTransport, **overrides: Any) -> tuple[Worker, Buffer]:
    """A worker over ``transport`` with a buffer sized by ``overrides``."""
    s = settings(**overrides)
    buffer = Buffer(
        max_records=s.buffer_size,
        max_bytes=s.buffer_bytes,
        overflow=s.overflow,
        block_timeout=s.block_timeout,
        batch_size=s.batch_size,
        batch_bytes=s.batch_bytes,
    )
    return Worker(s, buffer, lambda: transport, RateLimited(3600)), buffer


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this checkout importable, no VLOGS_* of ours."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLOGS_")}
    return {**env, "PYTHONPATH": str(root), **extra}


def closed_port_url() -> str:
    """A loopback URL nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
