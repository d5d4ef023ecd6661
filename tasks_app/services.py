"""Writes: every change to tasks, runs and attempts goes through here, each
in one transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from cluster_app.models import WorkerNode
from tasks_app import events, schedule
from tasks_app.exceptions import InvalidField, ModuleTooLarge, TaskAlreadyExists
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
        iteration = Iteration.objects.select_for_update().filter(pk=iteration_id).first()
        if iteration is None or iteration.state != State.PENDING:
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
) -> None:
    """Store what the worker answered; the run ends in the same state."""
    outcome, final = _FINAL[state]
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().select_related("iteration").get(pk=attempt_id)
        if attempt.outcome != Outcome.RUNNING:
            return  # already settled (e.g. declared lost): count it once
        attempt.outcome = outcome
        attempt.result = result
        attempt.error = error
        attempt.exit_code = exit_code
        attempt.started_at = started_at
        attempt.finished_at = finished_at or timezone.now()
        attempt.save()
        iteration = attempt.iteration
        iteration.state = final
        iteration.result = result
        iteration.error = error
        iteration.finished_at = attempt.finished_at
        iteration.save(update_fields=["state", "result", "error", "finished_at"])
        _announce(iteration, attempt)
        counter = "completed" if final == State.SUCCEEDED else "failed"
        if attempt.worker_id is not None:
            WorkerNode.objects.filter(pk=attempt.worker_id).update(
                **{counter: F(counter) + 1},
                in_flight=Greatest(F("in_flight") - 1, 0),
                last_seen=timezone.now(),
            )
    log.info(
        "run %s#%d %s on %s%s",
        iteration.task_id,
        iteration.index,
        final,
        attempt.worker_peer_id,
        f": {error}" if error else f" -> {result[:40]}",
    )


def lose_attempt(*, attempt_id: int, reason: str, max_attempts: int) -> bool:
    """The worker went away mid-run. The run waits for another worker
    unless it has used up its attempts; True if it will be tried again."""
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().select_related("iteration").get(pk=attempt_id)
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
        retry = attempt.number < max_attempts
        if retry:
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
    completions = Iteration.objects.filter(
        task_id=iteration.task_id, state=State.SUCCEEDED
    ).count()
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
