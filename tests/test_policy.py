"""The delivery policy and endpoint health, without threads or sockets (docs/delivery.md)."""

from __future__ import annotations

import pytest

from loguru_vlogs._policy import Action, Decision, DeliveryPolicy, Endpoints, Situation

POLICY = DeliveryPolicy(timeout=5.0, retry_max_elapsed=60.0, spool_threshold=100)


def situation(**changes: object) -> Situation:
    """A memory batch of 10 records, first tried at t=0, endpoint 0 healthy, no spool."""
    base: dict[str, object] = {
        "now": 1.0,
        "started": 0.0,
        "failed": False,
        "from_spool": False,
        "batch_records": 10,
        "buffered": 0,
        "endpoint": 0,
        "endpoint_wait": 0.0,
    }
    base.update(changes)
    return Situation(**base)  # type: ignore[arg-type]


def test_a_healthy_endpoint_gets_the_batch_with_the_full_timeout() -> None:
    """Nothing wrong: send to the picked endpoint with `timeout`."""
    assert Decision(Action.SEND, endpoint=2, seconds=5.0) == POLICY.decide(situation(endpoint=2))


def test_a_failing_endpoint_means_waiting_out_its_backoff() -> None:
    """Every endpoint backing off: wait until the first is healthy again."""
    assert Decision(Action.WAIT, seconds=3.0) == POLICY.decide(
        situation(endpoint_wait=3.0, failed=True)
    )


def test_the_wait_never_overshoots_retry_max_elapsed() -> None:
    """A 30 s backoff with 4 s left of retry_max_elapsed: wait those 4 s (+1 ms), not 30."""
    decision = POLICY.decide(situation(now=56.0, endpoint_wait=30.0, failed=True))
    assert Action.WAIT == decision.action
    assert 4.001 == pytest.approx(decision.seconds)


def test_past_retry_max_elapsed_the_batch_is_given_up_without_a_spool() -> None:
    """Failing for longer than retry_max_elapsed: dropped (retry_exhausted)."""
    assert Decision(Action.GIVE_UP) == POLICY.decide(situation(now=61.0, failed=True))


def test_past_retry_max_elapsed_the_batch_goes_to_the_spool() -> None:
    """With a spool, a batch that gave up is kept on disk instead."""
    assert Decision(Action.SPILL_BATCH) == POLICY.decide(
        situation(now=61.0, failed=True, spool=True)
    )


def test_retry_max_elapsed_counts_only_after_a_failure() -> None:
    """A batch that waited in memory for a long time but never failed is still sent."""
    assert Action.SEND == POLICY.decide(situation(now=1000.0)).action


def test_no_retry_max_elapsed_means_retrying_for_ever() -> None:
    """retry_max_elapsed=None: wait, however long it has failed."""
    policy = DeliveryPolicy(timeout=5.0)
    decision = policy.decide(situation(now=1e6, failed=True, endpoint_wait=30.0))
    assert Decision(Action.WAIT, seconds=30.0) == decision


@pytest.mark.parametrize(("buffered", "expected"), [(89, Action.WAIT), (90, Action.SPILL_BATCH)])
def test_memory_spills_to_the_spool_at_spool_threshold(buffered: int, expected: Action) -> None:
    """Backing off with a spool: batch + buffered >= spool_threshold (100) spills the batch."""
    decision = POLICY.decide(situation(buffered=buffered, endpoint_wait=2.0, spool=True))
    assert expected == decision.action


def test_a_spooled_batch_makes_room_by_spilling_memory() -> None:
    """Sending from the spool while memory piles up past the threshold: spill a memory batch."""
    assert Decision(Action.SPILL_MEMORY) == POLICY.decide(
        situation(from_spool=True, buffered=100, endpoint_wait=2.0, spool=True)
    )


def test_a_spooled_batch_is_never_given_up_on_time() -> None:
    """retry_max_elapsed is for memory batches: a spooled one is already safe on disk."""
    decision = POLICY.decide(
        situation(from_spool=True, now=1000.0, failed=True, endpoint_wait=2.0, spool=True)
    )
    assert Decision(Action.WAIT, seconds=2.0) == decision


def test_stopping_while_the_server_fails_spills_everything() -> None:
    """At close/exit with every endpoint failing: everything to disk now, no retrying."""
    decision = POLICY.decide(
        situation(stopping=True, deadline=5.0, endpoint_wait=1.0, failed=True, spool=True)
    )
    assert Decision(Action.SPILL_ALL) == decision


def test_stopping_without_a_spool_retries_at_least_twice_a_second() -> None:
    """While stopping, a 30 s backoff is cut to 0.5 s: a server that comes back still gets it."""
    decision = POLICY.decide(
        situation(stopping=True, deadline=5.0, endpoint_wait=30.0, failed=True)
    )
    assert Decision(Action.WAIT, seconds=0.5) == decision


def test_the_last_attempt_gets_the_time_left_before_the_deadline() -> None:
    """timeout is cut to what is left of the shutdown budget."""
    decision = POLICY.decide(situation(now=9.0, stopping=True, deadline=10.0))
    assert Decision(Action.SEND, endpoint=0, seconds=1.0) == decision


def test_no_attempt_is_started_in_the_last_50_ms() -> None:
    """Less than 0.05 s before the deadline: abandon (the records are counted or spooled)."""
    assert Decision(Action.ABANDON) == POLICY.decide(
        situation(now=9.96, stopping=True, deadline=10.0)
    )


def test_endpoints_go_round_robin_over_the_healthy_ones() -> None:
    """Three healthy endpoints: 0, 1, 2, 0; one backing off is skipped."""
    health = Endpoints.healthy(3)
    picks = []
    for _ in range(4):
        index, wait, health = health.pick(now=10.0)
        picks.append((index, wait))
    assert [(0, 0.0), (1, 0.0), (2, 0.0), (0, 0.0)] == picks
    health = health.failed(1, until=20.0)
    seen = []
    for _ in range(3):
        index, _wait, health = health.pick(now=10.0)
        seen.append(index)
    assert [2, 0, 2] == seen


def test_when_every_endpoint_fails_the_first_to_recover_is_picked_with_its_wait() -> None:
    """All backing off: the one healthy soonest, and how long until then."""
    health = Endpoints.healthy(2).failed(0, until=30.0).failed(1, until=12.0)
    index, wait, _ = health.pick(now=10.0)
    assert (1, 2.0) == (index, wait)


def test_a_success_brings_an_endpoint_back_and_a_drain_all_of_them() -> None:
    """succeeded() and all_healthy() put endpoints back into rotation."""
    health = Endpoints.healthy(2).failed(0, until=30.0).failed(1, until=30.0)
    assert (0.0, 30.0) == health.succeeded(0).down_until
    assert (0.0, 0.0) == health.all_healthy().down_until


def test_a_failed_endpoint_stays_out_for_at_least_backoff_base_when_others_exist() -> None:
    """Full jitter may pick ~0 s; with others to carry the load, keep it out backoff_base."""
    assert 0.5 == Endpoints.healthy(2).failover_delay(0.01, backoff_base=0.5)
    assert 0.01 == Endpoints.healthy(1).failover_delay(0.01, backoff_base=0.5)
