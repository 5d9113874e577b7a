"""The retry policy: which outcomes retry, backoff bounds, Retry-After parsing."""

from __future__ import annotations

import random

import pytest

from loguru_vlogs._retry import Backoff, Verdict, classify, parse_retry_after


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "ok"),
        (204, "ok"),
        (None, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (408, "retry"),
        (400, "reject"),
        (401, "reject"),
        (403, "reject"),
        (404, "retry"),
        (405, "retry"),
        (413, "reject"),
        (302, "retry"),
    ],
)
def test_statuses_are_classified(status: int | None, verdict: str) -> None:
    """2xx accepted; 429, 5xx and no answer retried; config/auth errors rejected."""
    assert verdict == classify(status).value


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """The ceiling doubles per failure from base and never passes cap."""
    b = Backoff(base=0.5, cap=4.0)
    ceilings = []
    for _ in range(6):
        b = b.next()
        ceilings.append(b.ceiling())
    assert [0.5, 1.0, 2.0, 4.0, 4.0, 4.0] == ceilings
    assert b.reset().ceiling() == 0.0


def test_backoff_survives_huge_attempt_counts() -> None:
    """A long outage does not overflow the float."""
    assert Backoff(base=1.0, cap=30.0, attempt=5000).ceiling() == 30.0


def test_full_jitter_spreads_delays_over_zero_to_the_ceiling() -> None:
    """Delays are spread over [0, ceiling]."""
    rng = random.Random(7)
    b = Backoff(base=1.0, cap=8.0, attempt=4)
    delays = [b.delay(rng=rng) for _ in range(500)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert min(delays) < 0.5
    assert max(delays) > 7.5


def test_retry_after_is_a_floor() -> None:
    """The server's Retry-After is never undercut by jitter."""
    rng = random.Random(1)
    assert all(Backoff(attempt=1).delay(3.0, rng=rng) >= 3.0 for _ in range(50))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("99999", 300.0),  # the README's cap: Retry-After is honoured up to 5 minutes
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_retry_after_parses_seconds_and_http_dates(
    header: str | None, expected: float | None
) -> None:
    """Seconds or an HTTP date; past dates mean now; absurd values are capped."""
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert expected == parse_retry_after(header, now=now)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, "unsupported path requested: /vlogs/insert/jsonline"),
        (400, "Client sent an HTTP request to an HTTPS server.\n"),
        (200, "<!DOCTYPE html><html><body>Welcome to nginx!</body></html>"),
        (502, "<html><head><title>502 Bad Gateway</title></head></html>"),
    ],
)
def test_answers_that_show_a_wrong_url_are_retried_not_dropped(status: int, body: str) -> None:
    """A wrong path, TLS on the other side, or a web page (even with 200: VictoriaLogs stored
    nothing): a configuration mistake, so the batch is kept and retried."""
    assert Verdict.RETRY is classify(status, body)


def test_a_bad_batch_is_still_rejected() -> None:
    """VictoriaLogs' own 400 for a bad request stays a rejection."""
    assert Verdict.REJECT is classify(400, "cannot parse JSON line: unexpected end")
