"""Connection admission bookkeeping (cluster_app.admission)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cluster_app.admission import LogThrottle, PerSourceLimit


def test_per_source_limit_refuses_past_the_cap_and_admits_after_a_release() -> None:
    limit = PerSourceLimit(2)
    assert limit.acquire("10.0.0.1")
    assert limit.acquire("10.0.0.1")
    assert not limit.acquire("10.0.0.1")
    assert limit.acquire("10.0.0.2")  # another source has its own count
    limit.release("10.0.0.1")
    assert limit.acquire("10.0.0.1")


def test_per_source_limit_zero_means_no_cap() -> None:
    limit = PerSourceLimit(0)
    assert all(limit.acquire("10.0.0.1") for _ in range(10_000))


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=200))
def test_per_source_limit_forgets_sources_at_zero(ops: list[tuple[str, bool]]) -> None:
    limit = PerSourceLimit(3)
    held: dict[str, int] = {}
    for source, take in ops:
        if take:
            if limit.acquire(source):
                held[source] = held.get(source, 0) + 1
            else:
                assert held.get(source, 0) == 3
        elif held.get(source, 0):
            limit.release(source)
            held[source] -= 1
        assert limit.held(source) == held.get(source, 0) <= 3
    assert len(limit) == sum(1 for n in held.values() if n)


def test_log_throttle_lets_a_burst_through_then_reports_what_it_held_back() -> None:
    now = [0.0]
    throttle = LogThrottle(interval=10.0, burst=2, clock=lambda: now[0])
    assert throttle.allow("k") == 0
    assert throttle.allow("k") == 0
    assert throttle.allow("k") is None
    assert throttle.allow("k") is None
    assert throttle.allow("other") == 0  # keys are counted apart
    now[0] = 10.0
    assert throttle.allow("k") == 2  # the next window's first line says how many were held back
    assert throttle.allow("k") == 0
