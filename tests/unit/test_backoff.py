"""The worker's wait before it dials the gateway again (workers/backoff.py)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from workers.backoff import FIRST, LONG_SESSION, QUICK, reconnect_wait

SHORT = 0.5  # seconds: a session that failed soon


def waits(sessions: list[float], maximum: float) -> list[float]:
    """The waits of a worker whose sessions lasted `sessions` seconds, in turn."""
    out: list[float] = []
    wait: float | None = None
    for seconds in sessions:
        wait = reconnect_wait(wait, seconds, maximum=maximum)
        out.append(wait)
    return out


def test_the_waits_double_from_a_quarter_second_up_to_the_cap() -> None:
    assert waits([SHORT] * 7, maximum=5.0) == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_long_session_starts_the_waits_over() -> None:
    assert waits([SHORT, SHORT, SHORT, LONG_SESSION + 1, SHORT], maximum=5.0) == [
        0.25,
        0.5,
        1.0,
        0.25,
        0.5,
    ]


def test_a_session_of_exactly_the_threshold_is_not_long() -> None:
    assert reconnect_wait(1.0, LONG_SESSION, maximum=5.0) == 2.0


def test_the_first_wait_is_the_first_step_however_long_the_session() -> None:
    assert reconnect_wait(None, 0.0, maximum=5.0) == FIRST
    assert reconnect_wait(None, 3600.0, maximum=5.0) == FIRST


short_sessions = st.lists(st.floats(min_value=0, max_value=LONG_SESSION), min_size=1, max_size=40)
caps = st.floats(min_value=FIRST, max_value=600)


@given(short_sessions, caps)
def test_after_short_sessions_the_waits_rise_monotonically_to_the_cap_and_stay(
    sessions: list[float], maximum: float
) -> None:
    seen = waits(sessions, maximum)
    assert seen[0] == FIRST
    assert all(a <= b for a, b in itertools.pairwise(seen))
    assert all(w <= maximum for w in seen)
    # Doubling reaches the cap within log2(cap / first) + 1 steps, then stays there.
    steps = math.ceil(math.log2(maximum / FIRST)) + 1
    assert all(w == maximum for w in seen[steps:])


@given(
    st.lists(st.floats(min_value=0, max_value=3 * LONG_SESSION), min_size=1, max_size=40),
    caps,
)
def test_after_a_long_session_the_wait_is_the_first_step(
    sessions: list[float], maximum: float
) -> None:
    seen = waits(sessions, maximum)
    for i, seconds in enumerate(sessions):
        if seconds > LONG_SESSION:
            assert seen[i] == FIRST
        elif i > 0:
            assert seen[i] == min(seen[i - 1] * 2, maximum)


def test_the_first_seconds_after_losing_the_gateway_dial_at_the_first_step() -> None:
    # A gateway restarted at once is found within a quarter second of being back.
    assert reconnect_wait(0.25, SHORT, lost_for=0.0, maximum=5.0) == FIRST
    assert reconnect_wait(0.25, SHORT, lost_for=QUICK - 0.01, maximum=5.0) == FIRST
    # Past them, the waits double again from where they were.
    assert reconnect_wait(0.25, SHORT, lost_for=QUICK, maximum=5.0) == 0.5
    assert reconnect_wait(2.0, SHORT, lost_for=60.0, maximum=5.0) == 4.0


@given(st.lists(st.floats(min_value=0, max_value=LONG_SESSION), min_size=1, max_size=40))
def test_a_worker_that_keeps_failing_soon_dials_at_most_every_first_step_while_quick(
    sessions: list[float],
) -> None:
    """Time passes by the waits and the sessions: while under QUICK, every wait is FIRST;
    after it, they double as before."""
    wait: float | None = None
    lost_for = 0.0
    for seconds in sessions:
        lost_for += seconds
        new = reconnect_wait(wait, seconds, lost_for=lost_for, maximum=5.0)
        if lost_for < QUICK or wait is None:
            assert new == FIRST
        else:
            assert new == min(wait * 2, 5.0)
        wait = new
        lost_for += new
