"""Schedule arithmetic: run k is due at receipt + start + k·delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks_app.schedule import due_time, due_times, run_count, seconds_until

RECEIVED = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def test_seed_example_is_due_at_1_3_5_seconds() -> None:
    due = due_times(RECEIVED, start=1, delay=2, repeats=3)
    assert [(d - RECEIVED).total_seconds() for d in due] == [1, 3, 5]


@pytest.mark.parametrize("repeats", [0, 1])
def test_zero_or_one_repeat_means_one_run(repeats: int) -> None:
    assert run_count(repeats) == 1
    assert due_times(RECEIVED, start=4, delay=9, repeats=repeats) == [
        RECEIVED + timedelta(seconds=4)
    ]


def test_negative_repeats_and_index_are_refused() -> None:
    with pytest.raises(ValueError):
        run_count(-1)
    with pytest.raises(ValueError):
        due_time(RECEIVED, start=0, delay=1, index=-1)


def test_fractional_seconds_are_kept() -> None:
    assert due_time(RECEIVED, start=0.25, delay=0.5, index=3) == RECEIVED + timedelta(seconds=1.75)


@given(
    start=st.floats(min_value=0, max_value=1e6),
    delay=st.floats(min_value=0, max_value=1e5),
    repeats=st.integers(min_value=0, max_value=50),
)
def test_runs_are_independent_and_evenly_spaced(start: float, delay: float, repeats: int) -> None:
    due = due_times(RECEIVED, start=start, delay=delay, repeats=repeats)
    assert len(due) == max(repeats, 1)
    for k, d in enumerate(due):
        assert d == due_time(RECEIVED, start=start, delay=delay, index=k)
    assert due == sorted(due)


def test_seconds_until_is_never_negative() -> None:
    assert seconds_until(RECEIVED, RECEIVED + timedelta(seconds=5)) == 0
    assert seconds_until(RECEIVED + timedelta(seconds=2.5), RECEIVED) == 2.5
