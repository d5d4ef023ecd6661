"""Reads: what the API, the admin and the scheduler look at."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import Count, QuerySet, prefetch_related_objects
from django.utils import timezone

from tasks_app import job_inputs, policy, schedule, state_counts, storage
from tasks_app.exceptions import ModuleNotFound, RunNotFound, TaskNotFound
from tasks_app.models import Attempt, Iteration, Module, Task, WorkerNode

State = Iteration.State


def task_list() -> QuerySet[Task]:
    """Tasks with their progress (tasks_app.state_counts: a cancelled task's
    runs not started count as cancelled), oldest first."""
    return state_counts.counted().order_by("received_at", "id")


def tasks_oldest_first() -> QuerySet[Task]:
    """Every task, oldest first, without progress: `with_progress` counts it
    for a page of them."""
    return Task.objects.order_by("received_at", "id")


def with_progress(tasks: list[Task]) -> list[Task]:
    """`tasks` with the progress `task_list` annotates (and `runs_by_state`),
    counted for these tasks only, in one query whose cost does not grow
    with their runs (tasks_app.state_counts)."""
    # A page of up to 1,000 tasks: one query per chunk (the parameter limit).
    for page in storage.chunks(tasks, storage.ORM_IN_KEYS):
        counted = state_counts.counted().filter(pk__in=[task.pk for task in page])
        state_counts.copy_onto(page, counted.order_by())
    return tasks


def as_new(task: Task) -> Task:
    """A task just stored, with the progress `task_list` would count for it,
    without asking the database again."""
    first_due = schedule.due_time(task.received_at, start=task.start, delay=task.delay, index=0)
    task.runs_total = task.run_count  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
    for name in ("completions", "runs_finished", "runs_failed", "runs_running"):
        setattr(task, name, 0)
    task.next_due_at = first_due  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
    return task


def task_summary(task_id: str) -> Task:
    """One task with its progress and `runs_by_state` (run counts by
    state, every state present), without its runs: one query."""
    task = state_counts.counted().filter(pk=task_id).first()
    if task is None:
        raise TaskNotFound(task_id)
    task.runs_by_state = state_counts.by_state(task)  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
    return task


def task_detail(task_id: str, *, runs_limit: int = 100, runs_offset: int = 0) -> Task:
    """`task_summary` and one page of its runs with their attempts, as
    `runs_page`: runs `runs_offset` … `runs_offset + runs_limit - 1` by
    index. Nothing here grows with the task's size: a task of 100,000 runs
    reads 100 of them and counts only its running and failed ones.

    The page and the counts are two reads; a run that ends between them
    may show its new state in one and not yet in the other (reading both
    in one transaction would, on SQLite, take the write lock)."""
    task = task_summary(task_id)
    runs = list(
        Iteration.objects.filter(
            task_id=task_id, index__gte=runs_offset, index__lt=runs_offset + runs_limit
        ).order_by("index")
    )
    # A page of up to 1,000 runs: their attempts read in chunks (one
    # prefetch would put every run's id in one statement).
    for page in storage.chunks(runs, storage.ORM_IN_KEYS):
        prefetch_related_objects(page, "attempts")
    state_counts.shown_as_cancelled(task, runs)
    task.runs_page = runs  # type: ignore[attr-defined]  # progress set on the instance, as the listing's annotations are
    return task


def open_runs(task_id: str) -> int | None:
    """How many of a task's runs are not final yet (pending or running, as
    every read counts them), without reading its runs; None: no such task."""
    task = state_counts.counted().filter(pk=task_id).first()
    if task is None:
        return None
    counts = state_counts.by_state(task)
    return counts[State.PENDING] + counts[State.RUNNING]


def run_output(task_id: str, index: int) -> bytes:
    """Run `index` of a task's output as bytes (text results as UTF-8)."""
    row = (
        Iteration.objects.filter(task_id=task_id, index=index)
        .values_list("result", "result_bytes")
        .first()
    )
    if row is None:
        if not Task.objects.filter(pk=task_id).exists():
            raise TaskNotFound(task_id)
        raise RunNotFound(task_id, index)
    result, raw = row
    return bytes(raw) if raw is not None else result.encode("utf-8", "surrogatepass")


def modules_oldest_first() -> QuerySet[Module]:
    """Stored modules, oldest first, without their bytes."""
    return Module.objects.defer("wasm").order_by("created_at", "sha256")


def module(sha256: str) -> Module:
    """One stored module, without its bytes."""
    found = Module.objects.defer("wasm").filter(pk=sha256).first()
    if found is None:
        raise ModuleNotFound(sha256)
    return found


def module_tasks(sha256: str, *, limit: int = 100) -> list[str]:
    """The ids of the newest tasks using a module (at most `limit`)."""
    return list(
        Task.objects.filter(module_id=sha256)
        .order_by("-received_at", "-id")
        .values_list("pk", flat=True)[:limit]
    )


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
    # Its task's args, stdin and env, when they travel with the run (None:
    # the scheduler holds them by task, or reads them: tasks_app.job_inputs).
    inputs: job_inputs.JobInputs | None = None
    # Its task's order among due runs (higher first) and where it may go.
    priority: int = 0
    route: policy.Route = policy.DEFAULT_ROUTE


def waiting_run_keys(*, due_before: datetime, limit: int) -> list[tuple[int, str]]:
    """(iteration id, task id) of the runs waiting to be dispatched that are
    due before a time, earliest due first, at most `limit`: what the sweep
    compares with what the scheduler knows before it reads any run whole
    (a sweep over 2,000 known runs read whole held the GIL ~100 ms)."""
    keys = (
        Iteration.objects.filter(
            state=State.PENDING, task__cancelled_at__isnull=True, due_at__lte=due_before
        )
        .order_by("due_at")
        .values_list("pk", "task_id")[:limit]
    )
    return list(keys)


def due_runs(
    *,
    task_id: str | None = None,
    due_before: datetime | None = None,
    ids: Collection[int] | None = None,
    limit: int | None = None,
    inputs_known: Collection[str] = frozenset(),
) -> list[DueRun]:
    """Runs waiting to be dispatched (all of them, one task's, those due
    before a time, or those of `ids` still waiting), earliest due first, at
    most `limit`. The attempts made so far are counted for the runs read
    only (counting them in the same query groups every waiting run before
    the limit applies). A task's inputs (args, stdin, env) are read once
    for all its runs read, with the first of them, unless the caller holds
    them (`inputs_known`)."""
    runs = Iteration.objects.filter(state=State.PENDING, task__cancelled_at__isnull=True)
    if task_id is not None:
        runs = runs.filter(task_id=task_id)
    if due_before is not None:
        runs = runs.filter(due_at__lte=due_before)
    if ids is not None:
        runs = runs.filter(pk__in=list(ids))
    # Not a task's inputs with each of its runs: its stdin may be megabytes.
    runs = runs.select_related("task").defer(*_TASK_INPUTS).order_by("due_at")
    rows = list(runs if limit is None else runs[:limit])
    attempts: Counter[int] = Counter()
    for ids in storage.chunks([it.pk for it in rows], storage.ORM_IN_KEYS):
        counted = (
            Attempt.objects.filter(iteration_id__in=ids)
            .values("iteration_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        attempts.update({row["iteration_id"]: row["n"] for row in counted})
    due = [_due_run(it, attempts=attempts[it.pk]) for it in rows]
    inputs = task_inputs(sorted({run.task_id for run in due} - set(inputs_known)))
    first: set[str] = set()
    for k, run in enumerate(due):
        if run.task_id in inputs and run.task_id not in first:
            first.add(run.task_id)
            due[k] = replace(run, inputs=inputs[run.task_id])
    return due


_TASK_INPUTS = ("task__args", "task__stdin", "task__env")


def task_inputs(task_ids: Sequence[str]) -> dict[str, job_inputs.JobInputs]:
    """The args, stdin and env of each of the tasks (a task gone is left out)."""
    found: dict[str, job_inputs.JobInputs] = {}
    for ids in storage.chunks(task_ids, storage.ORM_IN_KEYS):
        rows = Task.objects.filter(pk__in=ids).values_list("pk", "args", "stdin", "env")
        found.update({pk: job_inputs.of_row(args, stdin, env) for pk, args, stdin, env in rows})
    return found


def _due_run(run: Iteration, *, attempts: int) -> DueRun:
    """A run (its task read with it) as the scheduler queues it."""
    task = run.task
    return DueRun(
        iteration_id=run.pk,
        task_id=task.pk,
        index=run.index,
        due_at=run.due_at,
        module_hash=task.module_id,
        input=task.input,
        difficulty=task.difficulty,
        duration=task.duration,
        retries=task.retries,
        attempts=attempts,
        priority=task.priority,
        route=policy.route_of(task.queue, task.constraints),
    )


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
        .defer(*(f"iteration__{name}" for name in _TASK_INPUTS))
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
                run=_due_run(run, attempts=attempt.number),
                number=attempt.number,
                worker_peer_id=attempt.worker_peer_id,
                task_cancelled=task.cancelled_at is not None,
            )
        )
    return stale


def workers() -> QuerySet[WorkerNode]:
    """Every worker seen, connected ones first, then by peer ID."""
    return WorkerNode.objects.order_by("-connected", "peer_id")


def waiting_for(task: Task) -> str | None:
    """Why a task's pending runs are not being sent, when that is that no
    connected worker accepts them (tasks_app.policy.waiting_for); None when
    one does (they wait for their due time or a free slot), or none is
    pending. `task` as `task_summary` reads it. One small read, of the
    connected workers, and only for a task with pending runs."""
    if task.cancelled_at is not None or not task.runs_by_state.get(State.PENDING):  # type: ignore[attr-defined]  # set by task_summary
        return None
    connected = WorkerNode.objects.filter(connected=True).values_list("queues", "labels")
    offers = (
        (frozenset(queues or [policy.DEFAULT_QUEUE]), labels if isinstance(labels, dict) else {})
        for queues, labels in connected
    )
    return policy.waiting_for(policy.route_of(task.queue, task.constraints), offers)
