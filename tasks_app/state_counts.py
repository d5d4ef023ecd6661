"""A task's runs counted by state as every read shows them, without reading
every run of a big task.

Only the states few runs are in are counted: running, failed, timed out,
and cancelled in a task not cancelled (a re-opened one), each a range of
the (task, state, due_at) index. Succeeded runs are the task row's
`succeeded_count` (the journal's writer keeps it: a run becomes succeeded
once and never leaves it); pending ones are the rest of the task's runs.
So a task of 100,000 runs costs what its running and failed runs cost,
and its next due run is one step into the index.

A cancelled task's runs that still say `pending` are shown `cancelled`:
none of them will ever run, and the settler turns them cancelled in
chunks after the cancel (services.settle_cancellations)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest

from tasks_app.models import Iteration, Task

State = Iteration.State

# Annotated on each task by `annotate`: one per state (every state: n_<state>),
# then the progress shapes the API and the admin read.
# A task is cancelled while its cancelled_at is set (a re-run re-opens it).
CANCELLED = Q(cancelled_at__isnull=False)
BY_STATE = {state: f"n_{state}" for state in State.values}
PROGRESS = ("runs_total", "completions", "runs_finished", "runs_failed", "runs_running")


def _count(*states: str) -> Coalesce:
    """The runs of the outer task in `states`: a range of the index each."""
    runs = (
        Iteration.objects.filter(task_id=OuterRef("pk"), state__in=states)
        .order_by()
        .values("task_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(runs, output_field=IntegerField()), Value(0))


def _next_due() -> Subquery:
    first = (
        Iteration.objects.filter(task_id=OuterRef("pk"), state=State.PENDING)
        .order_by("due_at")
        .values("due_at")[:1]
    )
    return Subquery(first, output_field=DateTimeField())


def annotate(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """`tasks` with their runs counted by state (`n_<state>` for every
    state), the progress the API lists (`runs_total`, `completions`,
    `runs_finished`, `runs_failed`, `runs_running`) and `next_due_at`, all
    in SQL: filters and ordering may use them."""
    cancelled = CANCELLED
    tasks = tasks.annotate(
        runs_total=Greatest(F("repeats"), Value(1)),
        n_running=_count(State.RUNNING),
        n_failed=_count(State.FAILED),
        n_timed_out=_count(State.TIMED_OUT),
        # Counted only where it is not the rest (SQLite evaluates a CASE
        # branch only when it is taken): a cancelled task's could be all.
        cancelled_rows=Case(When(cancelled, then=Value(0)), default=_count(State.CANCELLED)),
        next_due_at=Case(When(cancelled, then=Value(None)), default=_next_due()),
    )
    settled = F("succeeded_count") + F("n_running") + F("n_failed") + F("n_timed_out")
    tasks = tasks.annotate(
        n_pending=Case(
            When(cancelled, then=Value(0)),
            default=Greatest(F("runs_total") - settled - F("cancelled_rows"), Value(0)),
        ),
        n_cancelled=Case(
            When(cancelled, then=Greatest(F("runs_total") - settled, Value(0))),
            default=F("cancelled_rows"),
        ),
    )
    return tasks.annotate(
        n_succeeded=F("succeeded_count"),
        completions=F("succeeded_count"),
        runs_running=F("n_running"),
        runs_failed=F("n_failed") + F("n_timed_out"),
        runs_finished=F("runs_total") - F("n_pending") - F("n_running"),
    )


@functools.cache
def counted() -> QuerySet[Task]:
    """Every task, `annotate`d; built once (building the expressions cost
    about as much as compiling them, and twice what running the query
    does). Filter it, never iterate it: each filter is a copy."""
    return annotate(Task.objects.all())


def by_state(task: Task) -> dict[str, int]:
    """The counts `annotate` put on `task`, by state (every state)."""
    return {state: int(getattr(task, name)) for state, name in BY_STATE.items()}


def copy_onto(targets: Iterable[Task], counted: Iterable[Task]) -> None:
    """Set on each of `targets` what `annotate` counted for the same task in
    `counted` (a task missing there has no runs: zeros)."""
    found = {task.pk: task for task in counted}
    names = (*BY_STATE.values(), *PROGRESS, "next_due_at")
    for task in targets:
        source = found.get(task.pk)
        for name in names:
            setattr(task, name, getattr(source, name) if source is not None else _none(name))
        task.runs_by_state = by_state(task)  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are


def _none(name: str) -> Any:
    return None if name == "next_due_at" else 0


def shown_as_cancelled(task: Task, runs: Iterable[Iteration]) -> None:
    """Show `runs` of `task` as every read does: a cancelled task's run that
    still says `pending` is `cancelled`, ended when the task was cancelled."""
    if task.cancelled_at is None:
        return
    for run in runs:
        if run.state == State.PENDING:
            run.state = State.CANCELLED
            run.finished_at = task.cancelled_at
