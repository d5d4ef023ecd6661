"""The scheduler's decisions as plain functions: examples and hypothesis
properties, no processes, no database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tasks_app import policy

attempts = st.integers(min_value=1, max_value=1000)


def test_retry_delay_first_at_once_then_doubling_to_the_cap() -> None:
    assert [policy.retry_delay(n) for n in range(1, 9)] == [0, 1, 2, 4, 8, 16, 30, 30]


@given(attempts)
def test_retry_delay_never_shrinks_and_stays_capped(n: int) -> None:
    assert 0 <= policy.retry_delay(n) <= policy.RETRY_DELAY_MAX
    assert policy.retry_delay(n) <= policy.retry_delay(n + 1)


@given(attempts, st.integers(min_value=1, max_value=20), st.booleans())
def test_a_lost_attempt_fails_its_run_exactly_when_attempts_are_spent(
    number: int, max_attempts: int, cancelled: bool
) -> None:
    state = policy.after_loss(number=number, max_attempts=max_attempts, cancelled=cancelled)
    if cancelled:
        assert state == "cancelled"
    else:
        assert state == ("pending" if number < max_attempts else "failed")


@given(
    st.sampled_from(["succeeded", "failed", "timed_out", "cancelled"]),
    attempts,
    st.integers(min_value=0, max_value=10),
    st.booleans(),
)
def test_only_traps_and_timeouts_within_retries_of_live_tasks_are_retried(
    state: str, number: int, retries: int, cancelled: bool
) -> None:
    retried = policy.retry_after_ending(
        state=state, number=number, retries=retries, cancelled=cancelled
    )
    assert retried == (state in ("failed", "timed_out") and number <= retries and not cancelled)


def test_retries_zero_never_retries() -> None:
    assert not policy.retry_after_ending(state="failed", number=1, retries=0, cancelled=False)
    assert policy.retry_after_ending(state="failed", number=1, retries=1, cancelled=False)


@given(st.floats(min_value=1e-7, max_value=10), st.floats(min_value=1e-4, max_value=1))
def test_a_call_carries_about_batch_time_of_runs(typical: float, batch_time: float) -> None:
    room = policy.batch_room(typical, batch_time=batch_time)
    assert room >= 0
    assert room * typical <= batch_time * (1 + 1e-9) + 1e-6


def test_unknown_runs_travel_alone_and_never_wait_on_a_worker() -> None:
    assert policy.batch_room(None, batch_time=0.005) == 1
    assert policy.queue_room(None, short_run=0.05, max_queue=64) == 0


@given(
    st.floats(min_value=1e-7, max_value=10),
    st.floats(min_value=1e-3, max_value=1),
    st.integers(min_value=0, max_value=256),
)
def test_only_short_runs_wait_on_a_worker_and_never_more_than_max_queue(
    typical: float, short_run: float, max_queue: int
) -> None:
    room = policy.queue_room(typical, short_run=short_run, max_queue=max_queue)
    assert 0 <= room <= max_queue
    if typical >= short_run:
        assert room == 0


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=1000))
def test_a_fair_share_covers_the_queue(queued: int, workers: int) -> None:
    share = policy.fair_share(queued, workers)
    assert share * max(workers, 1) >= queued
    assert (share - 1) * max(workers, 1) < queued or share == 0


@given(
    st.lists(st.floats(min_value=0.001, max_value=3600), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=64),
)
def test_a_call_waits_for_each_slots_share_of_its_runs(
    durations: list[float], concurrency: int
) -> None:
    timeout = policy.call_timeout(durations, concurrency=concurrency, grace=30, lead=0.02)
    assert timeout >= max(durations) + 30
    # Never less than the runs laid out one slot's share after another.
    assert timeout * concurrency >= sum(durations) * (1 - 1e-9)
