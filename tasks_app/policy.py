"""The scheduler's decisions, as plain functions of plain values: when a
run is tried again, what a run becomes when an attempt ends or is lost, how
many runs may travel in one call or wait on a worker, how long to wait for
a call. No clock, no I/O: tests/unit/test_policy.py checks them, with
hypothesis properties."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tasks_app.models import Iteration

State = Iteration.State

RETRY_DELAY_MAX = 30.0  # s


def retry_delay(attempt: int) -> float:
    """Backoff before trying a run again after its attempt number `attempt`
    was lost or failed: at once the first time (and ahead of runs that came
    due meanwhile), then 1, 2, 4 … s (max 30)."""
    return 0.0 if attempt <= 1 else float(min(2 ** (attempt - 2), RETRY_DELAY_MAX))


def retry_after_ending(*, state: str, number: int, retries: int, cancelled: bool) -> bool:
    """Whether a run whose attempt `number` ended in `state` (as the worker
    says) is tried again: a trap or a timeout, while the task allows
    `retries` more attempts and is not cancelled."""
    return state in (State.FAILED, State.TIMED_OUT) and number <= retries and not cancelled


def after_loss(*, number: int, max_attempts: int, cancelled: bool) -> str:
    """What a run becomes when its attempt `number` is lost (the worker
    went away or answered nothing usable): `pending` (tried again),
    `cancelled`, or `failed` once `max_attempts` are spent."""
    if cancelled:
        return State.CANCELLED
    return State.PENDING if number < max_attempts else State.FAILED


def batch_room(typical: float | None, *, batch_time: float) -> int:
    """Runs like one that typically takes `typical` seconds that one call
    may carry: about `batch_time` seconds of them (unknown: one)."""
    if typical is None:
        return 1
    return int(batch_time / max(typical, 1e-6))


def queue_room(typical: float | None, *, short_run: float, max_queue: int) -> int:
    """Runs per slot that may wait on a worker ahead of one that typically
    takes `typical` seconds: about `short_run` seconds of them (at most
    `max_queue`), for runs seen to take less than that; none for unknown or
    long ones (queued long runs only add lateness and unbalance the pool)."""
    if typical is None or typical >= short_run:
        return 0
    return min(max_queue, max(1, int(short_run / max(typical, 1e-6))))


def fair_share(queued: int, workers: int) -> int:
    """An even share of what is queued, so that runs spread over every
    worker before any gets a second call, and calls shrink as the queue
    drains."""
    return -(-queued // max(workers, 1))


def call_timeout(
    durations: Sequence[float], *, concurrency: int, grace: float, lead: float
) -> float:
    """How long to wait for a call's answer: its runs' time limits, one
    slot's share of them after another, plus `grace` (and the `lead` they
    were sent early by)."""
    rounds = math.ceil(len(durations) / max(concurrency, 1))
    return max(durations) * rounds + grace + lead
