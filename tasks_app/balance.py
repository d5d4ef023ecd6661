"""Which worker gets the next run. Pure: the pool calls it with a snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Load:
    """What the choice looks at for one worker."""

    key: int  # the pool's handle for the worker
    in_flight: int
    concurrency: int
    dispatched: int  # runs given to it so far: spreads runs when all are idle
    joined: int  # order of arrival: the last tie-breaker, so choices are stable


def least_in_flight(loads: Iterable[Load]) -> Load | None:
    """The worker with the fewest runs in flight among those with a free
    slot; ties go to the one given the fewest runs, then the oldest. None
    when every worker is full (or there is none)."""
    free = [load for load in loads if load.in_flight < load.concurrency]
    if not free:
        return None
    return min(free, key=lambda load: (load.in_flight, load.dispatched, load.joined))
