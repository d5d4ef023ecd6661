"""Writes: every change to tasks, runs and attempts goes through here, each
in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from cluster_app.models import WorkerNode
from tasks_app import events, schedule
from tasks_app.exceptions import InvalidField, ModuleTooLarge, TaskAlreadyExists, TaskNotFound
from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Attempt, Iteration, Module, Task
from workers.modules import InvalidModule, inspect_module, module_hash

log = logging.getLogger("ww.tasks")

State = Iteration.State
Outcome = Attempt.Outcome


def store_module(*, wasm: bytes) -> Module:
    """Validate a module and store it once per content hash."""
    if len(wasm) > settings.WW_MODULE_MAX_BYTES:
        raise ModuleTooLarge(settings.WW_MODULE_MAX_BYTES)
    known = Module.objects.filter(pk=module_hash(wasm)).first()
    if known is not None:
        return known  # these very bytes were checked when first stored
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


def record_runs(records: Sequence[RunSent | RunEnded]) -> list[dict[str, Any]]:
    """Write a batch of the scheduler's run records in one transaction.
    Returns the run events to publish (the latest state of each run touched).

    A run only moves out of `pending` or `running`: a run cancelled meanwhile
    stays cancelled, and a success is written (and counted) once."""
    sent = [r for r in records if isinstance(r, RunSent)]
    ended = [r for r in records if isinstance(r, RunEnded)]
    peers = {r.worker_peer_id for r in records}
    now = timezone.now()
    latest: dict[int, tuple[str, RunSent | RunEnded]] = {}
    with transaction.atomic():
        workers = dict(WorkerNode.objects.filter(peer_id__in=peers).values_list("peer_id", "pk"))
        if sent:
            Attempt.objects.bulk_create(
                [
                    Attempt(
                        iteration_id=r.iteration_id,
                        number=r.number,
                        worker_id=workers.get(r.worker_peer_id),
                        worker_peer_id=r.worker_peer_id,
                        sent_at=r.sent_at,
                    )
                    for r in sent
                ],
                ignore_conflicts=True,
            )
            moved = set(
                Iteration.objects.filter(
                    pk__in=[r.iteration_id for r in sent], state=State.PENDING
                ).values_list("pk", flat=True)
            )
            Iteration.objects.filter(pk__in=moved).update(state=State.RUNNING)
            for r in sent:
                if r.iteration_id in moved:
                    latest[r.iteration_id] = (State.RUNNING, r)
        tally: dict[str, dict[str, int]] = {}
        for r in ended:
            settled = Attempt.objects.filter(
                iteration_id=r.iteration_id, number=r.number, outcome=Outcome.RUNNING
            ).update(
                outcome=r.outcome,
                result=r.result,
                error=r.error,
                exit_code=r.exit_code,
                started_at=r.started_at,
                finished_at=r.finished_at or now,
            )
            if not settled:
                continue  # already settled: count it once
            fields: dict[str, Any] = {"state": r.run_state, "error": r.error}
            if r.run_state != State.PENDING:
                fields.update(result=r.result, finished_at=r.finished_at or now)
            moved_run = Iteration.objects.filter(
                pk=r.iteration_id, state__in=[State.PENDING, State.RUNNING]
            ).update(**fields)
            if moved_run:
                latest[r.iteration_id] = (r.run_state, r)
            if r.outcome != Outcome.LOST:
                counts = tally.setdefault(r.worker_peer_id, {"completed": 0, "failed": 0})
                counts["completed" if r.outcome == Outcome.SUCCEEDED else "failed"] += 1
        for peer, counts in tally.items():
            WorkerNode.objects.filter(peer_id=peer).update(
                completed=F("completed") + counts["completed"],
                failed=F("failed") + counts["failed"],
                last_seen=now,
            )
    return _run_events(latest, now)


def _run_events(
    latest: dict[int, tuple[str, RunSent | RunEnded]], now: datetime
) -> list[dict[str, Any]]:
    completions = _completions({record.task_id for _, record in latest.values()})
    return [
        _run_event(
            task_id=record.task_id,
            index=record.index,
            state=str(state),
            worker=record.worker_peer_id,
            attempt=record.number,
            result=getattr(record, "result", ""),
            error=getattr(record, "error", ""),
            completions=completions.get(record.task_id, 0),
            at=now,
        )
        for state, record in latest.values()
    ]


def _announce(task_id: str, runs: Sequence[Iteration]) -> None:
    """Tell live watchers about runs' new states (after commit); the REST
    path's counterpart of the journal's events."""
    if not runs:
        return
    completions = _completions({task_id}).get(task_id, 0)
    now = timezone.now()
    for iteration in runs:
        events.run_changed(
            _run_event(
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


def _completions(task_ids: set[str]) -> dict[str, int]:
    return dict(
        Iteration.objects.filter(task_id__in=task_ids, state=State.SUCCEEDED)
        .values("task_id")
        .annotate(n=Count("pk"))
        .values_list("task_id", "n")
    )


def _run_event(
    *,
    task_id: str,
    index: int,
    state: str,
    worker: str,
    attempt: int,
    result: str,
    error: str,
    completions: int,
    at: datetime,
) -> dict[str, Any]:
    """A `run.changed` event, as the websockets stream it."""
    return {
        "type": "run.changed",
        "task": task_id,
        "index": index,
        "state": state,
        "worker": worker,
        "attempt": attempt,
        "result": result,
        "error": error,
        "completions": completions,
        "at": at.isoformat(),
    }


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
