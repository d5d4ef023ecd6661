"""Where the worker runs what it is given (workers/placement.py): pure
decisions, tested without threads or wasm."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workers.placement import (
    INLINE_BELOW,
    INLINE_BUDGET,
    inline_budget,
    kind_of,
    lanes,
    ran_over_budget,
    runs_inline,
)
from workers.runs import RunRequest, time_limit

NOW = 1_800_000_000.0
times = st.floats(min_value=NOW - 10, max_value=NOW + 10, allow_nan=False)
durations = st.floats(min_value=0, max_value=100, allow_nan=False)


BASE = RunRequest(task_id="t", module_hash="m", wasm=b"", input=1, difficulty=2, time_limit=5.0)


def request(**fields: Any) -> RunRequest:
    return replace(BASE, **fields)


# -- inline or pool -------------------------------------------------------------


def test_a_tiny_due_cached_run_runs_inline() -> None:
    assert runs_inline(INLINE_BELOW / 2, not_before=NOW, now=NOW, cached=True)


def test_a_kind_never_seen_goes_to_the_pool() -> None:
    assert not runs_inline(None, not_before=NOW, now=NOW, cached=True)


def test_a_run_of_a_kind_taking_the_threshold_or_more_goes_to_the_pool() -> None:
    assert not runs_inline(INLINE_BELOW, not_before=NOW, now=NOW, cached=True)


def test_a_tiny_run_due_later_waits_on_the_pool() -> None:
    assert not runs_inline(0.0, not_before=NOW + 0.001, now=NOW, cached=True)


def test_a_tiny_run_whose_module_is_not_compiled_goes_to_the_pool() -> None:
    assert not runs_inline(0.0, not_before=NOW, now=NOW, cached=False)


@given(
    typical=st.none() | durations,
    not_before=times,
    now=times,
    cached=st.booleans(),
)
def test_inline_exactly_when_tiny_due_and_cached(
    typical: float | None, not_before: float, now: float, cached: bool
) -> None:
    expected = typical is not None and typical < INLINE_BELOW and not_before <= now and cached
    assert runs_inline(typical, not_before=not_before, now=now, cached=cached) is expected


@given(typical=durations, later=durations, not_before=times, now=times)
def test_a_slower_kind_is_never_inline_where_a_faster_is_not(
    typical: float, later: float, not_before: float, now: float
) -> None:
    slower = typical + later
    if runs_inline(slower, not_before=not_before, now=now, cached=True):
        assert runs_inline(typical, not_before=not_before, now=now, cached=True)


@given(limit=st.floats(min_value=1e-6, max_value=1e6))
def test_the_inline_budget_is_the_smaller_of_the_limit_and_the_budget(limit: float) -> None:
    budget = inline_budget(limit)
    assert budget <= limit
    assert budget <= INLINE_BUDGET
    assert budget in (limit, INLINE_BUDGET)


def test_a_run_cut_by_the_budget_is_run_again_but_one_cut_by_its_own_limit_is_not() -> None:
    assert ran_over_budget("timed_out", budget=INLINE_BUDGET, limit=60.0)
    assert not ran_over_budget("timed_out", budget=0.002, limit=0.002)  # its own limit
    assert not ran_over_budget("succeeded", budget=INLINE_BUDGET, limit=60.0)
    assert not ran_over_budget("failed", budget=INLINE_BUDGET, limit=60.0)


def test_runs_alike_are_those_of_one_module_and_inputs() -> None:
    assert kind_of(request()) == kind_of(request(task_id="other", time_limit=1, run_key="k#1"))
    assert kind_of(request()) != kind_of(request(input=9))
    assert kind_of(request()) != kind_of(request(difficulty=9))
    assert kind_of(request()) != kind_of(request(module_hash="n"))


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=0.001, max_value=1e6))
def test_a_time_limit_is_the_requested_one_when_usable_else_the_default(
    requested: float, default: float
) -> None:
    limit = time_limit(requested, default)
    if math.isfinite(requested) and requested > 0:
        assert limit == requested
    else:
        assert limit == default


# -- lanes ----------------------------------------------------------------------


def test_runs_are_dealt_to_lanes_in_due_order() -> None:
    # due:        0    1    2    3    4
    not_before = [3.0, 1.0, 4.0, 0.0, 2.0]
    assert lanes(not_before, 2) == [[3, 4, 2], [1, 0]]


def test_fewer_runs_than_slots_make_one_lane_each() -> None:
    assert lanes([5.0, 1.0], 4) == [[1], [0]]


def test_no_runs_make_no_lanes() -> None:
    assert lanes([], 2) == []


@given(st.lists(times, max_size=200), st.integers(min_value=1, max_value=16))
def test_lanes_share_the_runs_evenly_each_in_due_order(not_before: list[float], slots: int) -> None:
    dealt = lanes(not_before, slots)
    assert len(dealt) == min(slots, len(not_before))
    # Every run is in exactly one lane.
    assert sorted(i for lane in dealt for i in lane) == list(range(len(not_before)))
    # Shares differ by at most one run.
    if dealt:
        assert max(map(len, dealt)) - min(map(len, dealt)) <= 1
    # Each lane runs its share in due order.
    for lane in dealt:
        due = [not_before[i] for i in lane]
        assert due == sorted(due)
    # The earliest runs start side by side: the k-th earliest is first in its lane
    # for k < lanes.
    firsts = sorted(not_before[lane[0]] for lane in dealt)
    assert firsts == sorted(not_before)[: len(dealt)]
