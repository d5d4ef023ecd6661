"""Schedule arithmetic: when each run of a task is due. Pure functions."""

from __future__ import annotations

from datetime import datetime, timedelta


def run_count(repeats: int) -> int:
    """The number of runs a task makes: 0 or 1 repeats both mean one run."""
    if repeats < 0:
        raise ValueError("repeats must not be negative")
    return max(repeats, 1)


def due_time(received_at: datetime, *, start: float, delay: float, index: int) -> datetime:
    """Run `index` is due at receipt + start + index·delay.

    Runs are independent: a slow run does not push back the next one, so
    the due time depends on nothing but the task's own fields.
    """
    if index < 0:
        raise ValueError("index must not be negative")
    return received_at + timedelta(seconds=start + index * delay)


def due_times(received_at: datetime, *, start: float, delay: float, repeats: int) -> list[datetime]:
    """Every run's due time, in run order."""
    return [
        due_time(received_at, start=start, delay=delay, index=k) for k in range(run_count(repeats))
    ]


def seconds_until(due_at: datetime, now: datetime) -> float:
    """How long to sleep before `due_at`; never negative (overdue runs fire at once)."""
    return max((due_at - now).total_seconds(), 0.0)
