"""The journal's writer: a batch of the scheduler's run records into the
database in one transaction, with a fixed number of statements per batch
(not per record) — the write path of every run.

A run only moves out of `pending` or `running`: a run cancelled meanwhile
stays cancelled, and an attempt settles once, so a success is written (and
counted) once whatever is replayed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from cluster_app.models import WorkerNode
from tasks_app import events
from tasks_app.journal import Record, RunEnded, RunSent
from tasks_app.models import Attempt, Iteration, Task

State = Iteration.State
Outcome = Attempt.Outcome
_MOVABLE = (State.PENDING, State.RUNNING)


def record_runs(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Write a batch; returns the run events to publish (every change of a
    run's state, in order: a run sent and ended in one batch gives both)."""
    now = timezone.now()
    run_ids = sorted({r.iteration_id for r in records})
    with transaction.atomic():
        # Attempts first: the first write takes SQLite's write lock, so what
        # is read below cannot change before the transaction ends.
        settling = _insert_attempts(records, now)
        if connection.features.has_select_for_update:
            # Tasks before runs, the order cancel and re-run lock them in, so
            # a batch and a cancellation never wait for each other (deadlock).
            list(
                Task.objects.select_for_update()
                .filter(pk__in={r.task_id for r in records})
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        states = dict(
            Iteration.objects.select_for_update().filter(pk__in=run_ids).values_list("pk", "state")
        )
        running = settling | _running_attempts(records)
        changes, moves, tally = _play(records, states, running)
        _settle_attempts([r for r in records if isinstance(r, RunEnded)], running, settling, now)
        _write_runs(changes, now)
        succeeded = Counter(r.task_id for state, r in moves if state == State.SUCCEEDED)
        for task_id, n in succeeded.items():
            Task.objects.filter(pk=task_id).update(succeeded_count=F("succeeded_count") + n)
        for peer, (completed, failed) in tally.items():
            WorkerNode.objects.filter(peer_id=peer).update(
                completed=F("completed") + completed, failed=F("failed") + failed, last_seen=now
            )
        completions = dict(
            Task.objects.filter(pk__in={r.task_id for _, r in moves}).values_list(
                "pk", "succeeded_count"
            )
        )
    return [
        events.run_event(
            task_id=r.task_id,
            index=r.index,
            state=str(state),
            worker=r.worker_peer_id,
            attempt=r.number,
            result=getattr(r, "result", ""),
            error=getattr(r, "error", ""),
            completions=completions.get(r.task_id, 0),
            at=now,
        )
        for state, r in moves
    ]


def _insert_attempts(records: Sequence[Record], now: datetime) -> set[tuple[int, int]]:
    """Insert the attempts sent in this batch — already settled when their
    end is in the batch too. Returns the attempts inserted (iteration id,
    number); one that exists already (replayed) is left as it is."""
    sent = [r for r in records if isinstance(r, RunSent)]
    if not sent:
        return set()
    ended = {(r.iteration_id, r.number): r for r in records if isinstance(r, RunEnded)}
    existing = set(
        Attempt.objects.filter(iteration_id__in={r.iteration_id for r in sent}).values_list(
            "iteration_id", "number"
        )
    )
    workers = dict(
        WorkerNode.objects.filter(peer_id__in={r.worker_peer_id for r in sent}).values_list(
            "peer_id", "pk"
        )
    )
    rows, inserted = [], set()
    for r in sent:
        key = (r.iteration_id, r.number)
        if key in existing or key in inserted:
            continue
        inserted.add(key)
        attempt = Attempt(
            iteration_id=r.iteration_id,
            number=r.number,
            worker_id=workers.get(r.worker_peer_id),
            worker_peer_id=r.worker_peer_id,
            sent_at=r.sent_at,
        )
        end = ended.get(key)
        if end is not None:
            _fill_outcome(attempt, end, now)
        rows.append(attempt)
    Attempt.objects.bulk_create(rows, ignore_conflicts=True)
    return inserted


def _fill_outcome(attempt: Attempt, r: RunEnded, now: datetime) -> None:
    attempt.outcome = r.outcome
    attempt.result = r.result
    attempt.error = r.error
    attempt.exit_code = r.exit_code
    attempt.started_at = r.started_at
    attempt.finished_at = r.finished_at or now


def _running_attempts(records: Sequence[Record]) -> set[tuple[int, int]]:
    """The ended attempts the database still shows running."""
    ended_runs = {r.iteration_id for r in records if isinstance(r, RunEnded)}
    if not ended_runs:
        return set()
    return set(
        Attempt.objects.filter(iteration_id__in=ended_runs, outcome=Outcome.RUNNING).values_list(
            "iteration_id", "number"
        )
    )


def _play(
    records: Sequence[Record], states: dict[int, str], running: set[tuple[int, int]]
) -> tuple[dict[int, dict[str, Any]], list[tuple[str, Record]], dict[str, tuple[int, int]]]:
    """Apply the records in order to the runs' current states, in memory.
    Returns each changed run's new fields, every move of a run to a new state
    (state, record), and per worker (completed, failed) attempts."""
    open_attempts = set(running)
    changes: dict[int, dict[str, Any]] = {}
    moves: list[tuple[str, Record]] = []
    tally: dict[str, tuple[int, int]] = {}
    for r in records:
        state = states.get(r.iteration_id)
        if isinstance(r, RunSent):
            if state == State.PENDING:
                states[r.iteration_id] = State.RUNNING
                changes.setdefault(r.iteration_id, {})["state"] = State.RUNNING
                moves.append((State.RUNNING, r))
            continue
        key = (r.iteration_id, r.number)
        if key not in open_attempts:
            continue  # settled already: count it once
        open_attempts.discard(key)
        if r.outcome != Outcome.LOST:
            completed, failed = tally.get(r.worker_peer_id, (0, 0))
            ok = r.outcome == Outcome.SUCCEEDED
            tally[r.worker_peer_id] = (completed + ok, failed + (not ok))
        if state not in _MOVABLE:
            continue  # cancelled (or gone) meanwhile: it stays so
        states[r.iteration_id] = r.run_state
        fields: dict[str, Any] = {"state": r.run_state, "error": r.error}
        if r.run_state != State.PENDING:
            fields.update(result=r.result, finished_at=r.finished_at)
        changes.setdefault(r.iteration_id, {}).update(fields)
        moves.append((r.run_state, r))
    return changes, moves, tally


def _settle_attempts(
    ended: Iterable[RunEnded],
    running: set[tuple[int, int]],
    inserted: set[tuple[int, int]],
    now: datetime,
) -> None:
    """Write the outcome of attempts that were running before this batch."""
    rows, done = [], set()
    for r in ended:
        key = (r.iteration_id, r.number)
        if key not in running or key in inserted or key in done:
            continue
        done.add(key)
        rows.append(
            (
                r.outcome,
                r.result,
                r.error,
                r.exit_code,
                _db_time(r.started_at),
                _db_time(r.finished_at or now),
                r.iteration_id,
                r.number,
            )
        )
    _executemany(
        Attempt,
        "outcome = %s, result = %s, error = %s, exit_code = %s, started_at = %s, finished_at = %s",
        "iteration_id = %s AND number = %s AND outcome = 'running'",
        rows,
    )


def _write_runs(changes: dict[int, dict[str, Any]], now: datetime) -> None:
    """One statement per shape of change (started, back to pending, final)."""
    started, pending, final = [], [], []
    for run_id, fields in changes.items():
        state = fields["state"]
        if state == State.RUNNING:
            started.append((run_id,))
        elif state == State.PENDING:
            pending.append((fields["error"], run_id))
        else:
            final.append(
                (
                    state,
                    fields["error"],
                    fields["result"],
                    _db_time(fields["finished_at"] or now),
                    run_id,
                )
            )
    movable = "state IN ('pending', 'running')"
    _executemany(Iteration, "state = 'running'", f"id = %s AND {movable}", started)
    _executemany(Iteration, "state = 'pending', error = %s", f"id = %s AND {movable}", pending)
    _executemany(
        Iteration,
        "state = %s, error = %s, result = %s, finished_at = %s",
        f"id = %s AND {movable}",
        final,
    )


def _executemany(model: Any, assignments: str, where: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {where}", rows)


def _db_time(value: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(value)
