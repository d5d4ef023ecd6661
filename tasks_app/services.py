"""Writes: every change to tasks, runs and attempts goes through here, each
in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from tasks_app import events, schedule
from tasks_app.exceptions import InvalidField, ModuleTooLarge, TaskAlreadyExists, TaskNotFound
from tasks_app.models import Attempt, Iteration, Module, Task
from tasks_app.selectors import DueRun
from workers.modules import InvalidModule, inspect_module, module_hash

log = logging.getLogger("ww.tasks")

State = Iteration.State
Outcome = Attempt.Outcome


# In the model's field order, as Model.from_db takes them.
_KNOWN_MODULE_FIELDS = ["sha256", "size", "kind"]
_KNOWN_MODULE_SQL = (
    f"SELECT {', '.join(_KNOWN_MODULE_FIELDS)} FROM {Module._meta.db_table} WHERE sha256 = %s"
)


def store_module(*, wasm: bytes) -> Module:
    """Validate a module and store it once per content hash."""
    if len(wasm) > settings.WW_MODULE_MAX_BYTES:
        raise ModuleTooLarge(settings.WW_MODULE_MAX_BYTES)
    # These very bytes were checked when first stored. Every submission
    # asks, so the question is a plain select by key (the query builder
    # costs more than the query), and the blob is not read back.
    with connection.cursor() as cursor:
        cursor.execute(_KNOWN_MODULE_SQL, [module_hash(wasm)])
        known = cursor.fetchone()
    if known is not None:
        return Module.from_db(connection.alias, _KNOWN_MODULE_FIELDS, known)
    try:
        info = inspect_module(wasm)
    except InvalidModule as exc:
        raise InvalidField("wasm", str(exc)) from None
    module, _ = Module.objects.get_or_create(
        sha256=info.sha256, defaults={"wasm": wasm, "size": info.size, "kind": info.kind}
    )
    return module


def create_task(
    *,
    task_id: str,
    description: str,
    wasm: bytes,
    duration: float,
    start: float,
    delay: float,
    repeats: int,
    input: int,
    difficulty: int,
    retries: int = 0,
    received_at: datetime | None = None,
) -> tuple[Task, list[DueRun]]:
    """Store a task with its module and all its runs, or nothing at all.
    Returns the task and its runs as the scheduler queues them, so the
    submission's notification can carry them (none where the database does
    not return new rows' keys: the scheduler then reads them back).

    A duplicate id is refused by the task's primary key (no look first: one
    query less, and no race between the look and the insert)."""
    received_at = received_at or timezone.now()
    try:
        with transaction.atomic():
            try:
                module = store_module(wasm=wasm)
            except (InvalidField, ModuleTooLarge):
                # A duplicate id is reported first, whatever the module.
                if Task.objects.filter(pk=task_id).exists():
                    raise TaskAlreadyExists(task_id) from None
                raise
            task = Task(
                id=task_id,
                description=description,
                module=module,
                duration=duration,
                start=start,
                delay=delay,
                repeats=repeats,
                input=input,
                difficulty=difficulty,
                retries=retries,
                received_at=received_at,
            )
            _insert([task])
            due = schedule.due_times(received_at, start=start, delay=delay, repeats=repeats)
            iterations = [
                Iteration(task=task, index=k, due_at=due_at) for k, due_at in enumerate(due)
            ]
            _insert(iterations, returning_pk=True)
    except IntegrityError:
        raise TaskAlreadyExists(task_id) from None
    log.info("task %s stored: %d runs, first due %s", task_id, len(due), due[0].isoformat())
    if any(iteration.pk is None for iteration in iterations):
        return task, []
    runs = [
        DueRun(
            iteration_id=iteration.pk,
            task_id=task_id,
            index=iteration.index,
            due_at=iteration.due_at,
            module_hash=module.pk,
            input=input,
            difficulty=difficulty,
            duration=duration,
            retries=retries,
        )
        for iteration in iterations
    ]
    return task, runs


def _insert(objs: Sequence[Model], *, returning_pk: bool = False) -> None:
    """INSERT `objs`, all of one model, with their fields as set, in batches
    the database takes; with `returning_pk` the database picks the primary
    keys and they are set on `objs` (where it returns them: SQLite 3.35+,
    PostgreSQL).

    What save() and bulk_create() do, less their per-call work (signals,
    building and compiling the query), which on SQLite costs more than the
    statements themselves. So no signals are sent: none are connected for
    the models this writes."""
    db = connection
    meta = objs[0]._meta
    fields = [f for f in meta.concrete_fields if not (returning_pk and f.primary_key)]
    quote = db.ops.quote_name
    returns = returning_pk and db.features.can_return_rows_from_bulk_insert
    insert = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "
    )
    row = f"({', '.join(['%s'] * len(fields))})"
    returning = f" RETURNING {quote(meta.pk.column)}" if returns else ""
    batch = max(db.ops.bulk_batch_size(fields, objs), 1)
    with db.cursor() as cursor:
        for first in range(0, len(objs), batch):
            chunk = objs[first : first + batch]
            params = [
                f.get_db_prep_save(f.pre_save(obj, add=True), db) for obj in chunk for f in fields
            ]
            cursor.execute(insert + ", ".join([row] * len(chunk)) + returning, params)
            if returns:
                for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    obj.pk = pk
    for obj in objs:
        obj._state.adding = False
        obj._state.db = db.alias


def _announce(task_id: str, runs: Sequence[Iteration]) -> None:
    """Tell live watchers about runs' new states (after commit); the REST
    path's counterpart of the journal's events."""
    if not runs:
        return
    completions = Task.objects.values_list("succeeded_count", flat=True).get(pk=task_id)
    now = timezone.now()
    events.runs_changed(
        [
            events.run_event(
                task_id=task_id,
                index=iteration.index,
                state=str(iteration.state),
                worker="",
                attempt=0,
                result=iteration.result,
                error=iteration.error,
                completions=completions,
                at=now,
            )
            for iteration in runs
        ]
    )


def recover_interrupted_runs() -> int:
    """After a gateway restart: attempts that were in flight are lost, and
    their runs wait to be dispatched again. Returns how many runs."""
    now = timezone.now()
    with transaction.atomic():
        Attempt.objects.filter(outcome=Outcome.RUNNING).update(
            outcome=Outcome.LOST, error="gateway restarted", finished_at=now
        )
        return Iteration.objects.filter(state=State.RUNNING).update(state=State.PENDING)


@dataclass(frozen=True)
class Cancellation:
    cancelled: int  # runs that had not started: now cancelled
    running: list[int]  # iterations running now: the gateway interrupts them


def cancel_task(*, task_id: str) -> Cancellation:
    """Cancel a task: runs not yet started end `cancelled` now; running ones
    are interrupted by the gateway and end `cancelled` when their worker
    answers. The task and its history stay. Cancelling twice is harmless."""
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            raise TaskNotFound(task_id)
        if task.cancelled_at is None:
            task.cancelled_at = now
            task.save(update_fields=["cancelled_at"])
        pending = list(task.iterations.filter(state=State.PENDING))
        Iteration.objects.filter(pk__in=[it.pk for it in pending]).update(
            state=State.CANCELLED, finished_at=now
        )
        for iteration in pending:
            iteration.state = State.CANCELLED
        _announce(task_id, pending)
        running = list(task.iterations.filter(state=State.RUNNING).values_list("pk", flat=True))
    log.info(
        "task %s cancelled: %d runs not started, %d running", task_id, len(pending), len(running)
    )
    return Cancellation(cancelled=len(pending), running=running)


def rerun_failed(*, task_id: str) -> int:
    """Put a task's failed and timed-out runs back in the queue, due now.
    Returns how many. A cancelled task is re-opened."""
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            raise TaskNotFound(task_id)
        runs = list(task.iterations.filter(state__in=[State.FAILED, State.TIMED_OUT]))
        Iteration.objects.filter(pk__in=[it.pk for it in runs]).update(
            state=State.PENDING, due_at=now, error="", result="", finished_at=None
        )
        for iteration in runs:
            iteration.state, iteration.error, iteration.result = State.PENDING, "", ""
        _announce(task_id, runs)
        if runs and task.cancelled_at is not None:
            task.cancelled_at = None
            task.save(update_fields=["cancelled_at"])
    log.info("task %s: %d failed runs queued again", task_id, len(runs))
    return len(runs)
