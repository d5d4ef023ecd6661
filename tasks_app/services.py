"""Writes: every change to tasks, runs and attempts goes through here, each
in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks_app import events, schedule
from tasks_app.exceptions import InvalidField, ModuleTooLarge, TaskAlreadyExists, TaskNotFound
from tasks_app.models import Attempt, Iteration, Module, Task
from tasks_app.selectors import DueRun
from workers.modules import InvalidModule, inspect_module, module_hash

log = logging.getLogger("ww.tasks")

State = Iteration.State
Outcome = Attempt.Outcome


def store_module(*, wasm: bytes) -> Module:
    """Validate a module and store it once per content hash."""
    if len(wasm) > settings.WW_MODULE_MAX_BYTES:
        raise ModuleTooLarge(settings.WW_MODULE_MAX_BYTES)
    # These very bytes were checked when first stored. Every submission
    # asks, so the question is a plain select by key (the query builder
    # costs three times as much), and the blob is not read back.
    table = Module._meta.db_table
    known = list(
        Module.objects.raw(
            f"SELECT sha256, kind, size FROM {table} WHERE sha256 = %s", [module_hash(wasm)]
        )
    )
    if known:
        return known[0]
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
            task = Task.objects.create(
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
            due = schedule.due_times(received_at, start=start, delay=delay, repeats=repeats)
            iterations = Iteration.objects.bulk_create(
                Iteration(task=task, index=k, due_at=due_at) for k, due_at in enumerate(due)
            )
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


def _announce(task_id: str, runs: Sequence[Iteration]) -> None:
    """Tell live watchers about runs' new states (after commit); the REST
    path's counterpart of the journal's events."""
    if not runs:
        return
    completions = Task.objects.values_list("succeeded_count", flat=True).get(pk=task_id)
    now = timezone.now()
    for iteration in runs:
        events.run_changed(
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
