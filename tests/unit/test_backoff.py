"""The worker's wait before it dials the gateway again (workers/backoff.py)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from workers.backoff import FIRST, LONG_SESSION, reconnect_wait

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
