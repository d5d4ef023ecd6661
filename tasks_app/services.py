"""Writes: every change to tasks, runs and attempts goes through here, each
in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from cluster_app.models import WorkerNode
from tasks_app import events, schedule
from tasks_app.exceptions import InvalidField, ModuleTooLarge, TaskAlreadyExists, TaskNotFound
from tasks_app.models import Attempt, Iteration, Module, Task
from workers.modules import InvalidModule, inspect_module

log = logging.getLogger("ww.tasks")

State = Iteration.State
Outcome = Attempt.Outcome


def store_module(*, wasm: bytes) -> Module:
    """Validate a module and store it once per content hash."""
    if len(wasm) > settings.WW_MODULE_MAX_BYTES:
        raise ModuleTooLarge(settings.WW_MODULE_MAX_BYTES)
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
) -> Task:
    """Store a task with its module and all its runs, or nothing at all."""
    received_at = received_at or timezone.now()
    if Task.objects.filter(pk=task_id).exists():
        raise TaskAlreadyExists(task_id)
    try:
        with transaction.atomic():
            module = store_module(wasm=wasm)
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
            Iteration.objects.bulk_create(
                Iteration(task=task, index=k, due_at=due_at) for k, due_at in enumerate(due)
            )
    except IntegrityError:
        raise TaskAlreadyExists(task_id) from None
    log.info("task %s stored: %d runs, first due %s", task_id, len(due), due[0].isoformat())
    return task


def start_attempt(*, iteration_id: int, worker_peer_id: str) -> int | None:
    """Record that a run was sent to a worker. None if the run is no
    longer waiting (it was cancelled or already finished)."""
    with transaction.atomic():
        # skip_locked: if another process is claiming this run right now
        # (PostgreSQL), it is theirs; SQLite serialises writers anyway.
        iteration = (
            Iteration.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("task")
            .filter(pk=iteration_id)
            .first()
        )
        if iteration is None or iteration.state != State.PENDING:
            return None
        if iteration.task.cancelled_at is not None:
            return None
        number = iteration.attempts.count() + 1
        attempt = Attempt.objects.create(
            iteration=iteration,
            number=number,
            worker=WorkerNode.objects.filter(peer_id=worker_peer_id).first(),
            worker_peer_id=worker_peer_id,
            sent_at=timezone.now(),
        )
        iteration.state = State.RUNNING
        iteration.save(update_fields=["state"])
        if attempt.worker_id is not None:
            WorkerNode.objects.filter(pk=attempt.worker_id).update(in_flight=F("in_flight") + 1)
        _announce(iteration, attempt)
    return attempt.pk


_FINAL = {
    "succeeded": (Outcome.SUCCEEDED, State.SUCCEEDED),
    "failed": (Outcome.FAILED, State.FAILED),
    "timed_out": (Outcome.TIMED_OUT, State.TIMED_OUT),
    "cancelled": (Outcome.CANCELLED, State.CANCELLED),
}


def finish_attempt(
    *,
    attempt_id: int,
    state: str,
    result: str,
    error: str,
    exit_code: int | None,
    started_at: datetime | None,
    finished_at: datetime | None,
) -> bool:
    """Store what the worker answered. The run ends in the same state, or,
    if it failed and its task asked for retries it has not used up, waits
    to be tried again: True then."""
    outcome, final = _FINAL[state]
    with transaction.atomic():
        attempt = (
            Attempt.objects.select_for_update().select_related("iteration__task").get(pk=attempt_id)
        )
        if attempt.outcome != Outcome.RUNNING:
            return False  # already settled (e.g. declared lost): count it once
        attempt.outcome = outcome
        attempt.result = result
        attempt.error = error
        attempt.exit_code = exit_code
        attempt.started_at = started_at
        attempt.finished_at = finished_at or timezone.now()
        attempt.save()
        iteration = attempt.iteration
        task = iteration.task
        retry = (
            final in (State.FAILED, State.TIMED_OUT)
            and task.cancelled_at is None
            and attempt.number <= task.retries
        )
        if retry:
            iteration.state = State.PENDING
            iteration.error = error
            iteration.save(update_fields=["state", "error"])
        else:
            iteration.state = final
            iteration.result = result
            iteration.error = error
            iteration.finished_at = attempt.finished_at
            iteration.save(update_fields=["state", "result", "error", "finished_at"])
        _announce(iteration, attempt)
        if attempt.worker_id is not None:
            counter = "completed" if final == State.SUCCEEDED else "failed"
            WorkerNode.objects.filter(pk=attempt.worker_id).update(
                **{counter: F(counter) + 1},
                in_flight=Greatest(F("in_flight") - 1, 0),
                last_seen=timezone.now(),
            )
    log.info(
        "run %s#%d %s on %s%s%s",
        iteration.task_id,
        iteration.index,
        final,
        attempt.worker_peer_id,
        f": {error}" if error else f" -> {result[:40]}",
        "; will retry" if retry else "",
    )
    return retry


def lose_attempt(*, attempt_id: int, reason: str, max_attempts: int) -> bool:
    """The worker went away mid-run. The run waits for another worker
    unless it has used up its attempts; True if it will be tried again."""
    with transaction.atomic():
        attempt = (
            Attempt.objects.select_for_update().select_related("iteration__task").get(pk=attempt_id)
        )
        if attempt.outcome != Outcome.RUNNING:
            return False
        attempt.outcome = Outcome.LOST
        attempt.error = reason
        attempt.finished_at = timezone.now()
        attempt.save(update_fields=["outcome", "error", "finished_at"])
        if attempt.worker_id is not None:
            WorkerNode.objects.filter(pk=attempt.worker_id).update(
                in_flight=Greatest(F("in_flight") - 1, 0)
            )
        iteration = attempt.iteration
        cancelled = iteration.task.cancelled_at is not None
        retry = attempt.number < max_attempts and not cancelled
        if cancelled:
            iteration.state = State.CANCELLED
            iteration.finished_at = attempt.finished_at
            iteration.save(update_fields=["state", "finished_at"])
        elif retry:
            iteration.state = State.PENDING
            iteration.save(update_fields=["state"])
        else:
            iteration.state = State.FAILED
            iteration.error = f"gave up after {attempt.number} attempts: {reason}"
            iteration.finished_at = attempt.finished_at
            iteration.save(update_fields=["state", "error", "finished_at"])
        _announce(iteration, attempt)
    log.warning(
        "run %s#%d lost on %s (%s); %s",
        iteration.task_id,
        iteration.index,
        attempt.worker_peer_id,
        reason,
        "will retry" if retry else "giving up",
    )
    return retry


def _announce(iteration: Iteration, attempt: Attempt | None) -> None:
    """Tell live watchers about a run's new state (after commit)."""
    completions = Iteration.objects.filter(task_id=iteration.task_id, state=State.SUCCEEDED).count()
    events.run_changed(
        {
            "task": iteration.task_id,
            "index": iteration.index,
            "state": iteration.state,
            "worker": attempt.worker_peer_id if attempt else "",
            "attempt": attempt.number if attempt else 0,
            "result": iteration.result,
            "error": iteration.error,
            "completions": completions,
            "at": timezone.now().isoformat(),
        }
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
        for iteration in pending:
            iteration.state = State.CANCELLED
            iteration.finished_at = now
            iteration.save(update_fields=["state", "finished_at"])
            _announce(iteration, None)
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
        for iteration in runs:
            iteration.state = State.PENDING
            iteration.due_at = now
            iteration.error = ""
            iteration.result = ""
            iteration.finished_at = None
            iteration.save(update_fields=["state", "due_at", "error", "result", "finished_at"])
            _announce(iteration, None)
        if runs and task.cancelled_at is not None:
            task.cancelled_at = None
            task.save(update_fields=["cancelled_at"])
    log.info("task %s: %d failed runs queued again", task_id, len(runs))
    return len(runs)
