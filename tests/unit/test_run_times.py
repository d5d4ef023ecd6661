"""Run times per kind: a moving average, bounded to the kinds seen lately."""

from __future__ import annotations

import pytest

from tasks_app.run_times import RunTimes

KIND = ("a" * 64, 1, 2)


def test_the_first_time_is_taken_as_is_then_averaged() -> None:
    times = RunTimes()
    assert times.typical(KIND) is None
    times.learn(KIND, 1.0)
    assert times.typical(KIND) == 1.0
    times.learn(KIND, 0.0)
    assert times.typical(KIND) == pytest.approx(0.7)


def test_the_least_recently_learnt_kind_is_dropped_beyond_capacity() -> None:
    times = RunTimes(capacity=2)
    first, second, third = (("m", k, 0) for k in range(3))
    times.learn(first, 1.0)
    times.learn(second, 1.0)
    times.learn(first, 1.0)  # seen again: now the most recent
    times.learn(third, 1.0)
    assert times.typical(second) is None
    assert times.typical(first) == times.typical(third) == 1.0


def test_a_forgotten_kind_is_unknown() -> None:
    times = RunTimes()
    times.learn(KIND, 0.5)
    times.forget(KIND)
    assert times.typical(KIND) is None
