"""The bench's statistics (bench/measures.py): percentiles, medians of
repetitions and the summaries built from them."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.measures import (
    cpu_medians,
    div,
    lateness_medians,
    lateness_stats,
    med,
    merge_rounds,
    pct,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
samples = st.lists(finite, min_size=1, max_size=200)
percent = st.floats(min_value=0, max_value=100)


@given(value=finite, n=st.integers(min_value=1, max_value=100), p=percent)
def test_percentile_of_a_constant_list_is_that_constant(value: float, n: int, p: float) -> None:
    assert pct([value] * n, p) == value


@given(values=samples, p=percent, q=percent)
def test_percentile_is_monotonic_in_p(values: list[float], p: float, q: float) -> None:
    lo, hi = sorted((p, q))
    a, b = pct(values, lo), pct(values, hi)
    assert a is not None and b is not None
    assert a <= b + 1e-9 * max(1.0, abs(b))


@given(values=samples, p=percent)
def test_percentile_lies_between_min_and_max(values: list[float], p: float) -> None:
    v = pct(values, p)
    assert v is not None
    assert min(values) - 1e-6 <= v <= max(values) + 1e-6


@given(values=samples)
def test_percentile_ends_and_middle(values: list[float]) -> None:
    assert pct(values, 0) == min(values)
    assert pct(values, 100) == max(values)
    assert pct(values, 50) == pytest.approx(statistics.median(values))


@given(values=samples, p=percent)
def test_percentile_ignores_order(values: list[float], p: float) -> None:
    assert pct(values, p) == pct(list(reversed(values)), p)


def test_percentile_interpolates_between_ranks() -> None:
    assert pct([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert pct([0.0, 10.0], 99) == 9.9


def test_percentile_of_nothing_is_none() -> None:
    assert pct([], 50) is None


@given(values=st.lists(st.one_of(st.none(), finite), max_size=50))
def test_median_of_repetitions_skips_missing_figures(values: list[float | None]) -> None:
    present = [v for v in values if v is not None]
    if present:
        assert med(values) == statistics.median(present)
    else:
        assert med(values) is None


@given(values=st.lists(finite, min_size=1, max_size=51).filter(lambda v: len(v) % 2 == 1))
def test_median_of_an_odd_count_is_one_of_them(values: list[float]) -> None:
    assert med(values) in values


def test_div_without_a_figure_or_by_zero_is_none() -> None:
    assert div(None, 2) is None
    assert div(2, None) is None
    assert div(2, 0) is None
    assert div(3, 2) == 1.5


def test_lateness_counts_early_starts_and_extremes() -> None:
    out = lateness_stats([-0.5, 0.0, 1.0, 2.0, 10.0])
    assert out["early"] == 1
    assert out["min_ms"] == -0.5
    assert out["max_ms"] == 10.0
    assert out["p50_ms"] == 1.0
    assert out["n"] == 5
    assert lateness_stats([])["p99_ms"] is None


def test_lateness_medians_over_repetitions() -> None:
    reps = [lateness_stats(s) for s in ([1.0, 2.0], [3.0, -1.0], [5.0, 6.0])]
    out = lateness_medians(reps)
    assert out["p50_ms"] == statistics.median([1.5, 1.0, 5.5])
    assert out["max_ms"] == 3.0  # median of the maxima 2, 3, 6
    assert out["early"] == 1  # started early in any repetition counts
    assert out["min_ms"] == -1.0
    assert out["n"] == 6
    assert out["repetitions"] == reps


def test_merged_rounds_pool_their_samples() -> None:
    rounds = [
        {"p50_ms": 1.0, "n": 2, "errors": 0, "samples_ms": [1.0, 1.0], "post_p50_ms": 0.2,
         "breakdown_p50_ms": {"exec": 0.1}, "method": "m"},
        {"p50_ms": 9.0, "n": 3, "errors": 1, "samples_ms": [9.0, 9.0, 9.0], "post_p50_ms": 0.4,
         "breakdown_p50_ms": {"exec": 0.3}, "method": "m"},
    ]  # fmt: skip
    out = merge_rounds(rounds)
    assert out["p50_ms"] == 9.0  # over all five samples, not the median of the two p50s
    assert out["p99_ms"] == 9.0
    assert out["n"] == 5
    assert out["errors"] == 1
    assert out["rounds"] == 2
    assert out["post_p50_ms"] == pytest.approx(0.3)  # the rounds' median
    assert out["breakdown_p50_ms"] == {"exec": pytest.approx(0.2)}
    assert out["method"] == "m"
    assert "samples_ms" not in out


def test_a_failed_round_fails_the_merge() -> None:
    out = merge_rounds([{"samples_ms": [1.0], "n": 1}, {"error": "ConnectionError: x"}])
    assert out == {"error": "ConnectionError: x", "p50_ms": None, "p99_ms": None}


def test_cpu_medians_total_the_systems_own_parts() -> None:
    reps = [
        {"gateway_cpu_ms_per_run": 1.0, "workers_cpu_ms_per_run": 2.0, "client_cpu_ms_per_run": 5},
        {"gateway_cpu_ms_per_run": 3.0, "workers_cpu_ms_per_run": 4.0, "client_cpu_ms_per_run": 7},
    ]
    out = cpu_medians(reps, ("gateway", "workers"))
    assert out == {"gateway": 2.0, "workers": 3.0, "client": 6.0, "system_total": 5.0}
