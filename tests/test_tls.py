"""TLS in a real handshake: an HTTPS front with a private CA (trustme) before the fake receiver.

``TLSFront`` terminates TLS on 127.0.0.1 and forwards the plain bytes to a FakeVictoriaLogs,
recording each handshake (and the client certificate it got) or why it failed.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import trustme
from loguru import logger

from loguru_vlogs import VLogsSink
from loguru_vlogs.testing import FakeVictoriaLogs

from .helpers import fast_sink, wait_for

CLIENT_NAME = "client.example"


class TLSFront:
    """HTTPS on 127.0.0.1 (free port) before a plain-HTTP receiver: terminates TLS, forwards bytes."""

    def __init__(self, target_port: int, context: ssl.SSLContext) -> None:
        self._target = target_port
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        #: the client certificate of each completed handshake ({} when none was asked for)
        self.handshakes: list[dict[str, Any]] = []
        #: why each failed handshake failed, as the server saw it
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> TLSFront:
        self._accepter.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._accepter.join(5)
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def seen(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(handshakes, failures) so far."""
        with self._lock:
            return list(self.handshakes), list(self.failures)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            with self._lock:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            return
        with self._lock:
            self.handshakes.append(tls.getpeercert() or {})
        try:
            upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5.0)
        except OSError:
            tls.close()
            return
        try:
            self._pump(tls, upstream)
        finally:
            for s in (tls, upstream):
                with contextlib.suppress(OSError):
                    s.close()

    def _pump(self, tls: ssl.SSLSocket, upstream: socket.socket) -> None:
        while not self._stop.is_set():
            # Bytes already decrypted inside the SSL object do not make the socket readable.
            if tls.pending():
                readable: list[Any] = [tls]
            else:
                readable, _, _ = select.select([tls, upstream], [], [], 0.05)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:  # ssl.SSLError included
                    return
                if not data:
                    return
                (upstream if sock is tls else tls).sendall(data)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The private CA that signs the server's (and the client's) certificate."""
    return trustme.CA()


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    """A CA that signed nothing of this server's."""
    return trustme.CA()


def pem(blob: trustme.Blob, path: Path) -> str:
    blob.write_to_path(str(path))
    return str(path)


@contextlib.contextmanager
def https_front(
    fake: FakeVictoriaLogs, cert: trustme.LeafCert, client_ca: trustme.CA | None = None
) -> Iterator[TLSFront]:
    """An HTTPS front serving ``cert``; with ``client_ca``, it requires a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(context)
    with TLSFront(fake.port, context) as front:
        yield front


def log_three() -> None:
    for i in range(3):
        logger.bind(i=i).info("over tls {}", i)


def assert_delivered(sink: VLogsSink, fake: FakeVictoriaLogs) -> None:
    log_three()
    logger.complete()
    assert [0, 1, 2] == sorted(int(row["i"]) for row in fake.rows()), sink.stats()
    stats = sink.stats()
    assert (3, 0, 0) == (stats["sent"], stats["failed_requests"], stats["dropped_total"])
    assert sink.close(timeout=5) is True


def assert_refused_and_retried(sink: VLogsSink, fake: FakeVictoriaLogs) -> dict[str, Any]:
    """Nothing stored, the records kept for retry (not dropped), retried; returns the stats."""
    log_three()
    assert wait_for(lambda: sink.stats()["failed_requests"] >= 2), sink.stats()
    stats = sink.stats()
    assert 0 == fake.count()
    assert {} == stats["dropped"]
    assert 3 == stats["buffered"] + stats["in_flight"]
    return stats


def diag_lines(err: str, needle: str) -> list[str]:
    return [
        line for line in err.splitlines() if line.startswith("loguru-vlogs:") and needle in line
    ]


def test_records_arrive_over_https_with_the_servers_ca(
    fake_vlogs: FakeVictoriaLogs, ca: trustme.CA, tmp_path: Path
) -> None:
    """ca_certs naming the server's CA: the handshake succeeds and every record is stored."""
    with https_front(fake_vlogs, ca.issue_cert("127.0.0.1")) as front:
        sink = fast_sink(front.url, ca_certs=pem(ca.cert_pem, tmp_path / "ca.pem"))
        logger.add(sink)
        assert_delivered(sink, fake_vlogs)
        handshakes, failures = front.seen()
        assert handshakes
        assert [] == failures


@pytest.mark.parametrize("trust", ["another-ca", "system-cas", "cert-for-another-host"])
def test_an_untrusted_server_certificate_is_refused_retried_and_named_on_stderr(
    fake_vlogs: FakeVictoriaLogs,
    ca: trustme.CA,
    other_ca: trustme.CA,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    trust: str,
) -> None:
    """A certificate the sink cannot verify: nothing sent, records kept and retried, stderr says why."""
    identity = "vlogs.example" if trust == "cert-for-another-host" else "127.0.0.1"
    options: dict[str, Any] = {}
    if trust == "another-ca":
        options["ca_certs"] = pem(other_ca.cert_pem, tmp_path / "other.pem")
    elif trust == "cert-for-another-host":
        options["ca_certs"] = pem(ca.cert_pem, tmp_path / "ca.pem")
    with https_front(fake_vlogs, ca.issue_cert(identity)) as front:
        sink = fast_sink(front.url, **options)
        logger.add(sink)
        stats = assert_refused_and_retried(sink, fake_vlogs)
        assert "CERTIFICATE_VERIFY_FAILED" in stats["last_error"]
        handshakes, _ = front.seen()
        assert [] == handshakes
        assert sink.close(timeout=0.3) is False
    lines = diag_lines(capfd.readouterr().err, "sending failed")
    assert lines
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0]


def test_verify_false_sends_to_a_server_whose_certificate_is_not_trusted(
    fake_vlogs: FakeVictoriaLogs, ca: trustme.CA
) -> None:
    """verify=False: a certificate from an unknown CA is accepted and the records are stored."""
    with https_front(fake_vlogs, ca.issue_cert("127.0.0.1")) as front:
        sink = fast_sink(front.url, verify=False)
        logger.add(sink)
        assert_delivered(sink, fake_vlogs)


@pytest.mark.filterwarnings("error::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_keeps_delivering_when_warnings_are_errors(
    fake_vlogs: FakeVictoriaLogs, ca: trustme.CA
) -> None:
    """verify=False under `-W error` (as in many test suites): the records are still stored."""
    with https_front(fake_vlogs, ca.issue_cert("127.0.0.1")) as front:
        sink = fast_sink(front.url, verify=False)
        logger.add(sink)
        log_three()
        assert sink.drain(timeout=1)
        assert 3 == fake_vlogs.count()


@pytest.mark.parametrize("key", ["separate-key-file", "key-in-cert-file"])
def test_a_client_certificate_is_presented_when_the_server_requires_one(
    fake_vlogs: FakeVictoriaLogs, ca: trustme.CA, tmp_path: Path, key: str
) -> None:
    """Mutual TLS: client_cert (and client_key) are presented in the handshake; records are stored."""
    client = ca.issue_cert(CLIENT_NAME)
    if key == "separate-key-file":
        files = {
            "client_cert": pem(client.cert_chain_pems[0], tmp_path / "client.pem"),
            "client_key": pem(client.private_key_pem, tmp_path / "client.key"),
        }
    else:
        files = {"client_cert": pem(client.private_key_and_cert_chain_pem, tmp_path / "c.pem")}
    with https_front(fake_vlogs, ca.issue_cert("127.0.0.1"), client_ca=ca) as front:
        sink = fast_sink(front.url, ca_certs=pem(ca.cert_pem, tmp_path / "ca.pem"), **files)
        logger.add(sink)
        assert_delivered(sink, fake_vlogs)
        handshakes, failures = front.seen()
    assert [] == failures
    assert handshakes
    for peer in handshakes:
        assert (("DNS", CLIENT_NAME),) == peer["subjectAltName"]


@pytest.mark.parametrize("client", ["no-certificate", "certificate-from-another-ca"])
def test_a_server_requiring_a_client_certificate_refuses_a_sink_without_a_valid_one(
    fake_vlogs: FakeVictoriaLogs,
    ca: trustme.CA,
    other_ca: trustme.CA,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    client: str,
) -> None:
    """Mutual TLS without a certificate the server trusts: nothing stored, records kept and retried."""
    options: dict[str, Any] = {"ca_certs": pem(ca.cert_pem, tmp_path / "ca.pem")}
    if client == "certificate-from-another-ca":
        stranger = other_ca.issue_cert(CLIENT_NAME)
        options["client_cert"] = pem(stranger.private_key_and_cert_chain_pem, tmp_path / "c.pem")
    with https_front(fake_vlogs, ca.issue_cert("127.0.0.1"), client_ca=ca) as front:
        sink = fast_sink(front.url, **options)
        logger.add(sink)
        assert_refused_and_retried(sink, fake_vlogs)
        handshakes, failures = front.seen()
        assert sink.close(timeout=0.3) is False
    assert [] == handshakes
    expected = (
        "PEER_DID_NOT_RETURN_A_CERTIFICATE" if client == "no-certificate" else "CERTIFICATE_VERIFY"
    )
    assert failures
    assert all(expected in failure for failure in failures), failures
    assert diag_lines(capfd.readouterr().err, "sending failed")
