"""Reads: what the API, the admin and the scheduler look at."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from tasks_app import schedule
from tasks_app.exceptions import TaskNotFound
from tasks_app.models import Attempt, Iteration, Module, Task

State = Iteration.State


def task_list() -> QuerySet[Task]:
    """Tasks with their progress counted from their runs."""
    return Task.objects.annotate(
        runs_total=Count("iterations"),
        completions=Count("iterations", filter=Q(iterations__state=State.SUCCEEDED)),
        runs_finished=Count("iterations", filter=Q(iterations__state__in=Iteration.FINAL_STATES)),
        runs_failed=Count(
            "iterations", filter=Q(iterations__state__in=[State.FAILED, State.TIMED_OUT])
        ),
        runs_running=Count("iterations", filter=Q(iterations__state=State.RUNNING)),
        next_due_at=Min("iterations__due_at", filter=Q(iterations__state=State.PENDING)),
    ).order_by("received_at", "id")


def tasks_oldest_first() -> QuerySet[Task]:
    """Every task, oldest first, without progress: `with_progress` counts it
    for a page of them (counting it for every task, as `task_list` does,
    and then taking a page costs a scan of every run)."""
    return Task.objects.order_by("received_at", "id")


def with_progress(tasks: list[Task]) -> list[Task]:
    """`tasks` with the progress `task_list` annotates, counted for these
    tasks only, in one query."""
    if not tasks:
        return tasks
    rows = (
        Iteration.objects.filter(task_id__in=[task.pk for task in tasks])
        .values("task_id")
        .annotate(
            runs_total=Count("id"),
            completions=Count("id", filter=Q(state=State.SUCCEEDED)),
            runs_finished=Count("id", filter=Q(state__in=Iteration.FINAL_STATES)),
            runs_failed=Count("id", filter=Q(state__in=[State.FAILED, State.TIMED_OUT])),
            runs_running=Count("id", filter=Q(state=State.RUNNING)),
            next_due_at=Min("due_at", filter=Q(state=State.PENDING)),
        )
        .order_by()
    )
    progress = {row.pop("task_id"): row for row in rows}
    none = dict.fromkeys(_PROGRESS, 0) | {"next_due_at": None}
    for task in tasks:
        for name, value in progress.get(task.pk, none).items():
            setattr(task, name, value)
    return tasks


_PROGRESS = ("runs_total", "completions", "runs_finished", "runs_failed", "runs_running")


def as_new(task: Task) -> Task:
    """A task just stored, with the progress `task_list` would count for it,
    without asking the database again."""
    first_due = schedule.due_time(task.received_at, start=task.start, delay=task.delay, index=0)
    return _with_progress(task, runs=task.run_count, states=Counter(), next_due_at=first_due)


def task_summary(task_id: str) -> Task:
    """One task with its progress and `runs_by_state` (run counts by
    state, every state present), without its runs: one query for the task,
    one for the counts."""
    try:
        task = Task.objects.get(pk=task_id)
    except Task.DoesNotExist:
        raise TaskNotFound(task_id) from None
    return _with_state_counts(task)


def task_detail(task_id: str, *, runs_limit: int = 100, runs_offset: int = 0) -> Task:
    """`task_summary` and one page of its runs with their attempts, as
    `runs_page`: runs `runs_offset` … `runs_offset + runs_limit - 1` by
    index. Nothing here grows with the task's size but the counting, which
    the database does: a task of 100,000 runs reads 100 of them.

    The page and the counts are two reads; a run that ends between them
    may show its new state in one and not yet in the other (reading both
    in one transaction would, on SQLite, take the write lock)."""
    task = task_summary(task_id)
    runs = (
        Iteration.objects.filter(
            task_id=task_id, index__gte=runs_offset, index__lt=runs_offset + runs_limit
        )
        .order_by("index")
        .prefetch_related("attempts")
    )
    task.runs_page = list(runs)  # type: ignore[attr-defined]
    return task


def _with_state_counts(task: Task) -> Task:
    """Set on `task` its runs counted by state and the progress `task_list`
    annotates, from one aggregate over its runs (one pass, one row: no run
    is loaded)."""
    counts = Iteration.objects.filter(task_id=task.pk).aggregate(
        **{state: Count("id", filter=Q(state=state)) for state in State.values},
        next_due_at=Min("due_at", filter=Q(state=State.PENDING)),
    )
    next_due_at = counts.pop("next_due_at")
    states = Counter({state: counts[state] for state in State.values})
    task.runs_by_state = {state: states[state] for state in State.values}  # type: ignore[attr-defined]
    return _with_progress(task, runs=sum(states.values()), states=states, next_due_at=next_due_at)


def _with_progress(
    task: Task, *, runs: int, states: Counter[str], next_due_at: datetime | None
) -> Task:
    """Set on `task` the progress `task_list` annotates, from its runs' states."""
    task.runs_total = runs  # type: ignore[attr-defined]
    task.completions = states[State.SUCCEEDED]  # type: ignore[attr-defined]
    task.runs_finished = sum(states[s] for s in Iteration.FINAL_STATES)  # type: ignore[attr-defined]
    task.runs_failed = states[State.FAILED] + states[State.TIMED_OUT]  # type: ignore[attr-defined]
    task.runs_running = states[State.RUNNING]  # type: ignore[attr-defined]
    task.next_due_at = next_due_at  # type: ignore[attr-defined]
    return task


@dataclass(frozen=True)
class DueRun:
    """What the scheduler needs to fire one run."""

    iteration_id: int
    task_id: str
    index: int
    due_at: datetime
    module_hash: str
    input: int
    difficulty: int
    duration: float
    retries: int = 0  # extra attempts the task allows after a trap or timeout
    attempts: int = 0  # attempts made so far


def due_runs(
    *,
    task_id: str | None = None,
    due_before: datetime | None = None,
    limit: int | None = None,
) -> list[DueRun]:
    """Runs waiting to be dispatched (all of them, one task's, or those due
    before a time), earliest due first, at most `limit`. The attempts made
    so far are counted for the runs read only (counting them in the same
    query groups every waiting run before the limit applies)."""
    runs = Iteration.objects.filter(state=State.PENDING, task__cancelled_at__isnull=True)
    if task_id is not None:
        runs = runs.filter(task_id=task_id)
    if due_before is not None:
        runs = runs.filter(due_at__lte=due_before)
    runs = runs.select_related("task").order_by("due_at")
    rows = list(runs if limit is None else runs[:limit])
    attempts: Counter[int] = Counter()
    ids = [it.pk for it in rows]
    for first in range(0, len(ids), 900):  # SQLite: at most 999 parameters
        counted = (
            Attempt.objects.filter(iteration_id__in=ids[first : first + 900])
            .values("iteration_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        attempts.update({row["iteration_id"]: row["n"] for row in counted})
    return [
        DueRun(
            iteration_id=it.pk,
            task_id=it.task_id,
            index=it.index,
            due_at=it.due_at,
            module_hash=it.task.module_id,
            input=it.task.input,
            difficulty=it.task.difficulty,
            duration=it.task.duration,
            retries=it.task.retries,
            attempts=attempts[it.pk],
        )
        for it in rows
    ]


def module_bytes(sha256: str) -> bytes | None:
    wasm = Module.objects.filter(pk=sha256).values_list("wasm", flat=True).first()
    return None if wasm is None else bytes(wasm)


@dataclass(frozen=True)
class StaleAttempt:
    """An attempt still `running` in the database long after it should
    have ended, and its run."""

    run: DueRun
    number: int
    worker_peer_id: str
    task_cancelled: bool


def stale_attempts(
    *, sent_before: datetime, default_duration: float, grace: float, most: int = 1000
) -> list[StaleAttempt]:
    """Attempts still `running` that were sent before `sent_before` and
    whose run's time limit plus `grace` has passed since (oldest first, at
    most `most`)."""
    now = timezone.now()
    rows = (
        Attempt.objects.filter(
            outcome=Attempt.Outcome.RUNNING,
            sent_at__lt=sent_before,
            iteration__state=State.RUNNING,
        )
        .select_related("iteration__task")
        .order_by("sent_at")[:most]
    )
    stale = []
    for attempt in rows:
        run, task = attempt.iteration, attempt.iteration.task
        limit = task.duration if task.duration > 0 else default_duration
        if (now - attempt.sent_at).total_seconds() < limit + grace:
            continue
        stale.append(
            StaleAttempt(
                run=DueRun(
                    iteration_id=run.pk,
                    task_id=task.pk,
                    index=run.index,
                    due_at=run.due_at,
                    module_hash=task.module_id,
                    input=task.input,
                    difficulty=task.difficulty,
                    duration=task.duration,
                    retries=task.retries,
                    attempts=attempt.number,
                ),
                number=attempt.number,
                worker_peer_id=attempt.worker_peer_id,
                task_cancelled=task.cancelled_at is not None,
            )
        )
    return stale
