"""The journal's writer: a batch of the scheduler's run records into the
database in one transaction, with a fixed number of statements per batch
(not per record) — the write path of every run, so it runs hand-written
statements (tasks_app.storage) on one cursor rather than building
querysets (the query builder cost several times the statements).

A run only moves out of `pending` or `running`: a run cancelled meanwhile
stays cancelled, and an attempt settles once, so a success is written (and
counted) once whatever is replayed."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from tasks_app import events
from tasks_app.journal import Record, RunEnded, RunSent
from tasks_app.loop_db import LoopDatabase
from tasks_app.models import Attempt, Iteration
from tasks_app.storage import JournalStatements, Key

State = Iteration.State
Outcome = Attempt.Outcome
_MOVABLE = (State.PENDING, State.RUNNING)


def record_runs(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Write a batch through Django's connection (on the journal's thread);
    returns the run events to publish (every change of a run's state, in
    order: a run sent and ended in one batch gives both)."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    with transaction.atomic(using=db.alias), contextlib.closing(db.connection.cursor()) as cursor:
        return _record(records, JournalStatements(cursor, db))


def record_runs_here(db: LoopDatabase, records: Sequence[Record]) -> list[dict[str, Any]]:
    """`record_runs` on the event loop's own connection (tasks_app.loop_db);
    WriteElsewhere, writing nothing, while another connection writes."""
    with db.transaction() as cursor:
        return _record(records, JournalStatements(cursor, connections[DEFAULT_DB_ALIAS]))


def _record(records: Sequence[Record], sql: JournalStatements) -> list[dict[str, Any]]:
    """The batch's statements, inside the caller's transaction."""
    now = timezone.now()
    run_ids = sorted({r.iteration_id for r in records})
    task_ids = sorted({r.task_id for r in records})
    # On SQLite the transaction began IMMEDIATE (settings), holding the
    # write lock, so nothing read below changes before it ends. On
    # PostgreSQL the rows are locked: tasks before runs, the order cancel
    # and re-run lock them in, so a batch and a cancellation never wait
    # for each other (deadlock).
    if sql.locks_rows:
        sql.lock_tasks(task_ids)
    states = sql.run_states(run_ids)
    known = sql.attempt_outcomes(run_ids)
    inserted = _new_attempts(records, known)
    running = set(inserted) | {key for key, outcome in known.items() if outcome == Outcome.RUNNING}
    changes, moves, tally = _play(records, states, running)
    ended = {(r.iteration_id, r.number): r for r in records if isinstance(r, RunEnded)}
    sql.insert_attempts([inserted[key] for key in sorted(inserted)], ended, now)
    sql.settle_attempts(
        [r for key, r in ended.items() if key in running and key not in inserted], now
    )
    sql.write_runs(changes, now)
    sql.add_successes(Counter(r.task_id for state, r in moves if state == State.SUCCEEDED))
    sql.tally_workers(tally, now)
    completions = sql.successes(sorted({r.task_id for _, r in moves}))
    return [
        events.run_event(
            task_id=r.task_id,
            index=r.index,
            state=str(state),
            worker=r.worker_peer_id,
            attempt=r.number,
            result=getattr(r, "result", ""),
            error=getattr(r, "error", ""),
            stderr=getattr(r, "stderr", ""),
            result_bytes=getattr(r, "result_bytes", None),
            completions=completions.get(r.task_id, 0),
            at=now,
        )
        for state, r in moves
    ]


def _new_attempts(records: Sequence[Record], known: dict[Key, str]) -> dict[Key, RunSent]:
    """The attempts sent in this batch that the database does not hold yet
    (one that exists already was replayed: it is left as it is)."""
    new: dict[Key, RunSent] = {}
    for r in records:
        key = (r.iteration_id, r.number)
        if isinstance(r, RunSent) and key not in known and key not in new:
            new[key] = r
    return new


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
        # A run moves only out of pending or running, with one exception: a
        # success of a run its task's cancel turned `cancelled` while the
        # attempt was on its way (its sending not written yet). The worker
        # ran it; it counts as it ended, or an execution would be unrecorded.
        ran_anyway = state == State.CANCELLED and r.run_state == State.SUCCEEDED
        if state not in _MOVABLE and not ran_anyway:
            continue  # cancelled (or gone) meanwhile: it stays so
        states[r.iteration_id] = r.run_state
        fields: dict[str, Any] = {"state": r.run_state, "error": r.error}
        if ran_anyway:
            fields["ran_anyway"] = True
        if r.run_state != State.PENDING:
            fields.update(
                result=r.result,
                result_bytes=r.result_bytes,
                result_truncated=r.result_truncated,
                stderr=r.stderr,
                finished_at=r.finished_at,
            )
        changes.setdefault(r.iteration_id, {}).update(fields)
        moves.append((r.run_state, r))
    return changes, moves, tally
