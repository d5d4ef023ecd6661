"""How long a worker waits before it dials the gateway again.

Doubling from a quarter of a second up to a cap: a gateway that is down or
restarting is not hammered, and one that is back is found again soon. A
session that lasted (the gateway took us and served us for a while) was not
part of a run of failures: the next wait starts again from the first. For
the first seconds after the gateway was lost (or the worker started) the
waits stay at the first step: a gateway restarted at once (SIGKILL and a
supervisor, a deploy) is back within a second or two, and doubling from
there would leave it without workers for seconds more (with 10,000
schedules the gateway serves ~1.5 s after its start: 0.25, 0.75, 1.75,
3.75 s of redials put it at 1.75 s by luck and at 3.75 s a little later).
"""

from __future__ import annotations

FIRST = 0.25  # seconds before the first reconnect
LONG_SESSION = 10.0  # seconds: a session that lasted longer resets the backoff
QUICK = 3.0  # seconds after losing the gateway during which every wait is FIRST


def reconnect_wait(
    previous: float | None,
    session_seconds: float,
    *,
    maximum: float,
    lost_for: float = float("inf"),
    first: float = FIRST,
    long_session: float = LONG_SESSION,
    quick: float = QUICK,
) -> float:
    """The wait before the next dial, after a session (connecting included)
    of ``session_seconds`` that followed a wait of ``previous`` seconds (None:
    this is the first reconnect), ``lost_for`` seconds after the last session
    that lasted ended (or the worker started)."""
    if previous is None or session_seconds > long_session or lost_for < quick:
        return first
    return min(previous * 2, maximum)
