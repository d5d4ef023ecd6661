"""Writes: every change to tasks, runs and attempts goes through here, each
in one transaction."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.utils import timezone

from tasks_app import events, job_inputs, notify, policy, schedule, state_counts, storage
from tasks_app.exceptions import (
    InvalidField,
    ModuleTooLarge,
    TaskAlreadyExists,
    TaskNotFound,
    WriteElsewhere,
)
from tasks_app.loop_db import LoopDatabase
from tasks_app.models import Attempt, Iteration, Module, PendingCancellation, Task
from tasks_app.modules import InvalidModule, ModuleLimits, inspect_module, module_hash
from tasks_app.selectors import DueRun
from tasks_app.wasm_exports import export_names

log = logging.getLogger("ww.tasks")

State = Iteration.State
Outcome = Attempt.Outcome


def store_module(*, wasm: bytes) -> Module:
    """Validate a module and store it once per content hash."""
    return upload_module(wasm=wasm)[0]


def upload_module(*, wasm: bytes) -> tuple[Module, bool]:
    """`store_module`, and whether these bytes were new (POST /modules
    answers 201 for new bytes, 200 for bytes stored before)."""
    limit = settings.WW_TASKS.module_max_bytes
    if len(wasm) > limit:
        raise ModuleTooLarge(limit)
    # These very bytes were checked when first stored. Every submission
    # asks, so the question is a plain select by key (the query builder
    # costs more than the query), and the blob is not read back.
    with connection.cursor() as cursor:
        sql = storage.statements(connection, driver_cursor=False)
        cursor.execute(sql.known_module, [module_hash(wasm)])
        known = cursor.fetchone()
    if known is not None:
        return Module.from_db(connection.alias, storage.KNOWN_MODULE_FIELDS, known), False
    try:
        info = inspect_module(wasm, _module_limits())
    except InvalidModule as exc:
        raise InvalidField("wasm", str(exc)) from None
    return Module.objects.get_or_create(
        sha256=info.sha256,
        defaults={
            "wasm": wasm,
            "size": info.size,
            "kind": info.kind,
            "exports": export_names(wasm),
        },
    )


def _module_limits() -> ModuleLimits:
    conf = settings.WW_TASKS
    return ModuleLimits(
        max_functions=conf.module_max_functions,
        compile_seconds=conf.module_compile_seconds,
        compile_memory_bytes=conf.module_compile_bytes,
    )


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
            due = schedule.due_times(received_at, start=start, delay=delay, repeats=repeats)
            db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: no proxy per use
            with db.cursor() as cursor:
                sql = storage.statements(db, driver_cursor=False)
                run_ids = storage.insert_task(cursor, db, sql, task, due)
    except IntegrityError:
        raise TaskAlreadyExists(task_id) from None
    return task, new_runs(task, run_ids, due)


# Runs a submission may have to be stored on the event loop itself (about a
# millisecond of inserts); bigger ones are stored on a request thread.
LOOP_RUNS = 100


def create_task_here(
    loop_db: LoopDatabase, *, task_id: str, wasm: bytes, **fields: Any
) -> tuple[Task, list[DueRun]]:
    """`create_task` (the same fields) on the event loop's own SQLite
    connection (tasks_app.loop_db), for a module stored already.
    WriteElsewhere, storing nothing, for a new module (it is checked and
    stored Django's way), for a task of more than LOOP_RUNS runs (its
    insert would hold the event loop: workers' pings and every run's
    dispatch wait for it) or while another connection writes."""
    limit = settings.WW_TASKS.module_max_bytes
    if len(wasm) > limit:
        raise ModuleTooLarge(limit)
    if max(int(fields.get("repeats", 1)), 1) > LOOP_RUNS:
        raise WriteElsewhere("a task of many runs")
    digest = module_hash(wasm)
    db = connections[DEFAULT_DB_ALIAS]
    sql = storage.statements(db, driver_cursor=True)
    if not loop_db.query(sql.known_module, (digest,)):
        raise WriteElsewhere("a module not stored yet")
    received_at = timezone.now()
    task = Task(id=task_id, module_id=digest, received_at=received_at, **fields)
    due = schedule.due_times(received_at, start=task.start, delay=task.delay, repeats=task.repeats)
    try:
        with loop_db.transaction() as cursor:
            run_ids = storage.insert_task(cursor, db, sql, task, due)
    except sqlite3.IntegrityError:
        raise TaskAlreadyExists(task_id) from None
    return task, new_runs(task, run_ids, due)


def new_runs(task: Task, run_ids: list[int] | None, due: Sequence[datetime]) -> list[DueRun]:
    """A new task's runs as the scheduler queues them (none without their
    keys: the scheduler then reads them back)."""
    if run_ids is None:
        return []
    # Their task's inputs travel with them: the scheduler need not read
    # them back (one read per new task cost a one-run task most of its
    # dispatch; seed-form tasks share one constant).
    inputs = job_inputs.of_row(task.args, task.stdin, task.env)
    route = policy.route_of(task.queue, task.constraints)
    return [
        DueRun(
            iteration_id=run_id,
            task_id=task.pk,
            index=index,
            due_at=due_at,
            module_hash=task.module_id,
            input=task.input,
            difficulty=task.difficulty,
            duration=task.duration,
            retries=task.retries,
            inputs=inputs,
            priority=task.priority,
            route=route,
        )
        for index, (run_id, due_at) in enumerate(zip(run_ids, due, strict=True))
    ]


def submit_task(**fields: Any) -> Task:
    """A submission (`create_task`'s fields): the task stored, its runs
    handed to the scheduler, then logged (the log line comes last: a run
    due now should not wait for it)."""
    task, runs = create_task(**fields)
    notify.task_submitted(task.pk, runs)
    _log_stored(task)
    return task


def submit_task_on_commit(**fields: Any) -> Task:
    """`submit_task` inside the caller's transaction: the scheduler is told
    once it commits (an idempotent POST stores its key in the same one)."""
    task, runs = create_task(**fields)
    transaction.on_commit(lambda: notify.task_submitted(task.pk, runs))
    _log_stored(task)
    return task


async def submit_task_here(loop_db: LoopDatabase, **fields: Any) -> Task:
    """`submit_task` on the event loop (`create_task_here`): WriteElsewhere
    where it cannot store the task there."""
    task, runs = create_task_here(loop_db, **fields)
    await notify.task_submitted_here(task.pk, runs)
    _log_stored(task)
    return task


def _log_stored(task: Task) -> None:
    first_due = schedule.due_time(task.received_at, start=task.start, delay=task.delay, index=0)
    log.info("task %s stored: %d runs, first due %s", task.pk, task.run_count, first_due)


# A REST change of many runs at once (a cancel, a re-run) announces this many
# of them: watchers take an event as a cue to read the task again, and
# 100,000 events would cost seconds to build and send.
ANNOUNCED_RUNS = 100


def _announce(task_id: str, runs: Sequence[Iteration]) -> None:
    """Tell live watchers about runs' new states (after commit); the REST
    path's counterpart of the journal's events. Only the first
    ANNOUNCED_RUNS of `runs` are announced."""
    runs = runs[:ANNOUNCED_RUNS]
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
    their runs wait to be dispatched again, unless their task was cancelled
    meanwhile: those end `cancelled`. Returns how many runs wait again."""
    now = timezone.now()
    with transaction.atomic():
        Attempt.objects.filter(outcome=Outcome.RUNNING).update(
            outcome=Outcome.LOST, error="gateway restarted", finished_at=now
        )
        interrupted = Iteration.objects.filter(state=State.RUNNING)
        interrupted.filter(task__cancelled_at__isnull=False).update(
            state=State.CANCELLED, finished_at=now
        )
        return interrupted.update(state=State.PENDING)


@dataclass(frozen=True)
class Cancellation:
    cancelled: int  # runs that had not started: now cancelled
    running: list[int]  # iterations running now: the gateway interrupts them


# A cancel turns this many of the task's runs not started `cancelled` itself
# (the earliest due: those a reader meets first) and leaves the rest to the
# settler. One UPDATE of a 100,000-run task's runs held the request (and the
# database's write lock) ~0.7 s on SQLite, most of it moving each run in the
# indexes on its state; 1,000 take ~8 ms.
CANCEL_NOW_RUNS = 1000
# The settler's chunk: one short transaction each.
SETTLE_RUNS = 2000


def cancel_task(*, task_id: str) -> Cancellation:
    """Cancel a task: runs not yet started end `cancelled` and are never
    executed; running ones are interrupted by the gateway and end
    `cancelled` when their worker answers. The task and its history stay.
    Cancelling twice is harmless.

    The first CANCEL_NOW_RUNS runs not started are turned `cancelled` here;
    the rest still say `pending` until `settle_cancellations` reaches them
    (the task is in its backlog, PendingCancellation, which a restart
    keeps). Meanwhile no gateway dispatches them (the scheduler skips a
    cancelled task) and every read shows them cancelled
    (tasks_app.state_counts)."""
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            raise TaskNotFound(task_id)
        cancelled = 0
        if task.cancelled_at is None:
            cancelled = _not_started(task_id)  # counted while they are pending
            task.cancelled_at = now
            task.save(update_fields=["cancelled_at"])
        PendingCancellation.objects.get_or_create(task=task)
        # Before any run says `cancelled`: from here no gateway hands one
        # out, and those running are interrupted (whether or not any is).
        notify.task_cancelled(task_id)
        announced = _cancel_not_started(task, limit=CANCEL_NOW_RUNS)
        _announce(task_id, announced)
        # Unordered: ordered by index, SQLite walks every run of the task.
        running = list(
            task.iterations.filter(state=State.RUNNING).order_by().values_list("pk", flat=True)
        )
    log.info("task %s cancelled: %d runs not started, %d running", task_id, cancelled, len(running))
    return Cancellation(cancelled=cancelled, running=running)


def _not_started(task_id: str) -> int:
    """A task's runs still pending, without counting them one by one."""
    return state_counts.by_state(state_counts.counted().get(pk=task_id))[State.PENDING]


def _cancel_not_started(task: Task, *, limit: int | None) -> list[Iteration]:
    """Turn up to `limit` (None: all) of cancelled `task`'s runs that still
    say `pending` `cancelled`, ended when the task was cancelled, earliest
    due first (a range of the (task, state, due_at) index). Inside the
    caller's transaction, the task locked. Returns the first
    ANNOUNCED_RUNS of them by index, as they are now."""
    pending = Iteration.objects.filter(task_id=task.pk, state=State.PENDING).order_by("due_at")
    chunk = pending if limit is None else pending[:limit]
    first = sorted(chunk.values_list("index", flat=True)[:ANNOUNCED_RUNS])
    Iteration.objects.filter(pk__in=chunk.values("pk")).update(
        state=State.CANCELLED, finished_at=task.cancelled_at
    )
    return [Iteration(task_id=task.pk, index=index, state=State.CANCELLED) for index in first]


def settle_cancellations(*, limit: int = SETTLE_RUNS) -> int:
    """Turn up to `limit` runs of cancelled tasks that still say `pending`
    `cancelled` (what `cancel_task` left), one short transaction per task;
    a task none of whose runs is left pending leaves the backlog. Returns
    how many runs it turned (0: nothing is left). The gateway calls it
    until then after every cancel, and now and then."""
    turned = 0
    for task_id in list(PendingCancellation.objects.values_list("task_id", flat=True)[:100]):
        room = limit - turned
        if room <= 0:
            break
        with transaction.atomic():
            # The task row first, as cancel, re-run and the journal lock.
            task = Task.objects.select_for_update().filter(pk=task_id).first()
            if task is not None and task.cancelled_at is not None:
                n = Iteration.objects.filter(
                    pk__in=Iteration.objects.filter(task_id=task_id, state=State.PENDING)
                    .order_by("due_at")
                    .values("pk")[:room]
                ).update(state=State.CANCELLED, finished_at=task.cancelled_at)
                turned += n
                if n == room:
                    continue  # maybe more: the next call goes on
            # Settled, re-opened by a re-run, or gone.
            PendingCancellation.objects.filter(task_id=task_id).delete()
    return turned


def rerun_failed(*, task_id: str) -> int:
    """Put a task's failed and timed-out runs back in the queue, due now.
    Returns how many. A cancelled task is re-opened."""
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            raise TaskNotFound(task_id)
        if task.cancelled_at is not None:
            # It may be re-opened below: the runs the settler has not reached
            # yet were cancelled and must not come back to life with it.
            _cancel_not_started(task, limit=None)
            PendingCancellation.objects.filter(task=task).delete()
        runs = list(task.iterations.filter(state__in=[State.FAILED, State.TIMED_OUT]))
        for run_ids in storage.chunks([it.pk for it in runs], storage.ORM_IN_KEYS):
            Iteration.objects.filter(pk__in=run_ids).update(
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
