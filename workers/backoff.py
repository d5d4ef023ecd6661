"""How long a worker waits before it dials the gateway again.

Doubling from a quarter of a second up to a cap: a gateway that is down or
restarting is not hammered, and one that is back is found again soon. A
session that lasted (the gateway took us and served us for a while) was not
part of a run of failures: the next wait starts again from the first.
"""

from __future__ import annotations

FIRST = 0.25  # seconds before the first reconnect
LONG_SESSION = 10.0  # seconds: a session that lasted longer resets the backoff


def reconnect_wait(
    previous: float | None,
    session_seconds: float,
    *,
    maximum: float,
    first: float = FIRST,
    long_session: float = LONG_SESSION,
) -> float:
    """The wait before the next dial, after a session (connecting included)
    of ``session_seconds`` that followed a wait of ``previous`` seconds (None:
    this is the first reconnect)."""
    if previous is None or session_seconds > long_session:
        return first
    return min(previous * 2, maximum)
