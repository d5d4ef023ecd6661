"""Reads for the pages people look at (the status page, a task's page, the
admin's task page): counts of runs by state for a few tasks, and one page of
a task's runs with their attempts. Each is bounded by what one page shows,
so a task of 100,000 runs never costs a read of every run.

(`selectors` holds the API's reads; these are the pages' own.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from tasks_app import state_counts
from tasks_app.models import Attempt, Iteration, Schedule, Task, WorkerNode

State = Iteration.State

# The order a segmented progress bar draws its parts in: what is done first,
# then what is still to come.
SEGMENTS = (
    State.SUCCEEDED,
    State.FAILED,
    State.TIMED_OUT,
    State.CANCELLED,
    State.RUNNING,
    State.PENDING,
)


@dataclass
class RunCounts:
    """How many of a task's runs are in each state."""

    by_state: dict[str, int] = field(default_factory=dict)
    next_due_at: datetime | None = None

    def of(self, state: str) -> int:
        return self.by_state.get(state, 0)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def finished(self) -> int:
        return sum(self.of(s) for s in Iteration.FINAL_STATES)

    def segments(self) -> list[tuple[str, int, float]]:
        """(state, count, percent of all runs) for each state, in bar order."""
        total = self.total
        return [(s.value, self.of(s), 100 * self.of(s) / total if total else 0.0) for s in SEGMENTS]


def run_counts(task_ids: list[str]) -> dict[str, RunCounts]:
    """Counts by state (and the next pending run's due time) for each of
    `task_ids`, in one query that does not read every run
    (tasks_app.state_counts: a cancelled task's runs not started count as
    cancelled)."""
    counts = {task_id: RunCounts() for task_id in task_ids}
    if not task_ids:
        return counts
    for task in state_counts.counted().filter(pk__in=task_ids).order_by():
        counts[task.pk] = RunCounts(
            by_state=state_counts.by_state(task),
            next_due_at=task.next_due_at,  # type: ignore[attr-defined]  # annotated
        )
    return counts


def recent_tasks(limit: int) -> list[tuple[Task, RunCounts]]:
    """The `limit` most recently received tasks, newest first, with their counts."""
    tasks = list(Task.objects.order_by("-received_at", "-id")[:limit])
    counts = run_counts([task.pk for task in tasks])
    return [(task, counts[task.pk]) for task in tasks]


def runs_page(task: Task, *, offset: int, limit: int) -> list[Iteration]:
    """Runs `offset` .. `offset + limit` of a task (by index), each with its
    attempts in number order, shown as every read shows them (a cancelled
    task's runs not started are cancelled)."""
    attempts = Prefetch("attempts", queryset=Attempt.objects.order_by("number"))
    runs = list(
        Iteration.objects.filter(task_id=task.pk)
        .order_by("index")
        .prefetch_related(attempts)[offset : offset + limit]
    )
    state_counts.shown_as_cancelled(task, runs)
    return runs


@dataclass(frozen=True)
class WorkerPool:
    """The workers worth a row (connected, or seen lately) and, apart, those
    gone long ago: a worker without an identity file gets a new peer ID at
    each start, so every restart leaves one more of those behind."""

    current: list[WorkerNode]
    gone: list[WorkerNode]  # the most recently seen first, at most `gone_limit`
    gone_count: int


def worker_pool(*, gone_after: timedelta, gone_limit: int) -> WorkerPool:
    cutoff = timezone.now() - gone_after
    gone = WorkerNode.objects.filter(connected=False, last_seen__lt=cutoff)
    current = WorkerNode.objects.exclude(pk__in=gone.values("pk")).order_by("-connected", "peer_id")
    return WorkerPool(
        current=list(current),
        gone=list(gone.order_by("-last_seen")[:gone_limit]),
        gone_count=gone.count(),
    )


def schedules(limit: int) -> list[dict[str, Any]]:
    """The first `limit` schedules by name, as the status page lists them."""
    rows = []
    for s in Schedule.objects.order_by("name")[:limit]:
        rows.append(
            {
                "name": s.name,
                "when": f"{s.cron} ({s.timezone})" if s.cron else f"every {s.every:g} s",
                "overlap": s.overlap,
                "paused": s.paused,
                "next_fire_at": None if s.next_fire_at is None else s.next_fire_at.isoformat(),
                "fired_count": s.fired_count,
                "skipped_count": s.skipped_count,
            }
        )
    return rows
