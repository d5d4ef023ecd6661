"""The scheduler's decisions, as plain functions of plain values: when a
run is tried again, what a run becomes when an attempt ends or is lost, how
many runs may travel in one call or wait on a worker, how long to wait for
a call. No clock, no I/O: tests/unit/test_policy.py checks them, with
hypothesis properties."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


# -- where a run may go, and in which order (SPEC "Workers: labels, queues,
# priority") ------------------------------------------------------------------

DEFAULT_QUEUE = "default"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a run may go: a worker serving `queue` that has every label of
    `constraints` (label, value) pairs, sorted. The runs of one route form
    one lane of the scheduler's queue (tasks_app.run_queue)."""

    queue: str = DEFAULT_QUEUE
    constraints: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """The route in words, for people (`waiting_for`, logs)."""
        text = f"a worker serving queue {self.queue!r}"
        if self.constraints:
            labels = ", ".join(f"{k}={v}" for k, v in self.constraints)
            text += f" with labels {labels}"
        return text


# Seed-form runs share this one (no allocation, no sorting per run).
DEFAULT_ROUTE = Route()


def route_of(queue: str, constraints: Mapping[str, Any] | None) -> Route:
    """A task's `queue` and `constraints` as its runs' route."""
    if queue == DEFAULT_QUEUE and not constraints:
        return DEFAULT_ROUTE
    pairs = tuple(sorted((str(k), str(v)) for k, v in (constraints or {}).items()))
    return Route(queue=str(queue), constraints=pairs)


def accepts(*, queues: Collection[str], labels: Mapping[str, str], route: Route) -> bool:
    """Whether a worker serving `queues` with `labels` may be sent a run of
    `route`: it serves the run's queue and has every label it asks for,
    with the same value."""
    if route.queue not in queues:
        return False
    return all(labels.get(label) == value for label, value in route.constraints)


def ready_order(
    priority: int, due: datetime, retry: bool, arrival: int
) -> tuple[int, datetime, int, int]:
    """The order runs that are due go out in: higher `priority` first;
    within a priority, earlier due; at the same moment retries first, then
    arrival. (Runs not yet due wait by due time alone: a high priority never
    sends a run early.)"""
    return (-priority, due, 0 if retry else 1, arrival)


def waiting_for(
    route: Route, workers: Iterable[tuple[Collection[str], Mapping[str, str]]]
) -> str | None:
    """Why a pending run of `route` waits, given the connected workers'
    (queues, labels): None when one of them accepts it."""
    seen = False
    for queues, labels in workers:
        seen = True
        if accepts(queues=queues, labels=labels, route=route):
            return None
    if not seen:
        return "no worker is connected"
    return f"no connected worker accepts it: it needs {route.describe()}"
