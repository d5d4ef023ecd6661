"""The journal's writer: a batch of the scheduler's run records into the
database in one transaction, with a fixed number of statements per batch
(not per record) — the write path of every run, so it speaks SQL through
one cursor rather than building querysets (the query builder cost several
times the statements themselves).

A run only moves out of `pending` or `running`: a run cancelled meanwhile
stays cancelled, and an attempt settles once, so a success is written (and
counted) once whatever is replayed."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from tasks_app import events
from tasks_app.journal import Record, RunEnded, RunSent
from tasks_app.loop_db import LoopDatabase, qmark
from tasks_app.models import Attempt, Iteration, Task, WorkerNode

State = Iteration.State
Outcome = Attempt.Outcome
_MOVABLE = (State.PENDING, State.RUNNING)
_RUNNING = Outcome.RUNNING

Key = tuple[int, int]  # an attempt: (run id, attempt number)


def record_runs(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Write a batch through Django's connection (on the journal's thread);
    returns the run events to publish (every change of a run's state, in
    order: a run sent and ended in one batch gives both)."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    with transaction.atomic(using=db.alias), contextlib.closing(db.connection.cursor()) as cursor:
        return _record(records, _Statements(cursor, db))


def record_runs_here(db: LoopDatabase, records: Sequence[Record]) -> list[dict[str, Any]]:
    """`record_runs` on the event loop's own connection (tasks_app.loop_db);
    WriteElsewhere, writing nothing, while another connection writes."""
    with db.transaction() as cursor:
        return _record(records, _Statements(cursor, connections[DEFAULT_DB_ALIAS]))


def _record(records: Sequence[Record], sql: _Statements) -> list[dict[str, Any]]:
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
        sql.select(f"SELECT id FROM {sql.task} WHERE id IN {{}} ORDER BY id FOR UPDATE", task_ids)
    lock = " FOR UPDATE" if sql.locks_rows else ""
    states: dict[int, str] = dict(
        sql.select(f"SELECT id, state FROM {sql.run} WHERE id IN {{}}{lock}", run_ids)
    )
    known: dict[Key, str] = {
        (run_id, number): outcome
        for run_id, number, outcome in sql.select(
            f"SELECT iteration_id, number, outcome FROM {sql.attempt} WHERE iteration_id IN {{}}",
            run_ids,
        )
    }
    inserted = _new_attempts(records, known)
    running = set(inserted) | {key for key, outcome in known.items() if outcome == _RUNNING}
    changes, moves, tally = _play(records, states, running)
    ended = {(r.iteration_id, r.number): r for r in records if isinstance(r, RunEnded)}
    sql.insert_attempts([inserted[key] for key in sorted(inserted)], ended, now)
    sql.settle_attempts(
        [r for key, r in ended.items() if key in running and key not in inserted], now
    )
    sql.write_runs(changes, now)
    succeeded = Counter(r.task_id for state, r in moves if state == State.SUCCEEDED)
    sql.many(
        f"UPDATE {sql.task} SET succeeded_count = succeeded_count + %s WHERE id = %s",
        [(n, task_id) for task_id, n in sorted(succeeded.items())],
    )
    sql.many(
        f"UPDATE {sql.worker} SET completed = completed + %s, failed = failed + %s,"
        " last_seen = %s WHERE peer_id = %s",
        [(ok, bad, sql.time(now), peer) for peer, (ok, bad) in sorted(tally.items())],
    )
    moved_tasks = sorted({r.task_id for _, r in moves})
    completions: dict[str, int] = dict(
        sql.select(f"SELECT id, succeeded_count FROM {sql.task} WHERE id IN {{}}", moved_tasks)
        if moved_tasks
        else []
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
        if state not in _MOVABLE:
            continue  # cancelled (or gone) meanwhile: it stays so
        states[r.iteration_id] = r.run_state
        fields: dict[str, Any] = {"state": r.run_state, "error": r.error}
        if r.run_state != State.PENDING:
            fields.update(result=r.result, finished_at=r.finished_at)
        changes.setdefault(r.iteration_id, {}).update(fields)
        moves.append((r.run_state, r))
    return changes, moves, tally


class _Statements:
    """The batch's statements, with the tables' quoted names, on one cursor
    of the database driver itself (inside the transaction Django opened on
    the same connection): Django's cursor wrapper costs more per statement
    than SQLite takes to run it. So statements here are written with `%s`
    placeholders, converted for drivers that want `?`, and a driver error
    is the driver's own (the journal retries whatever fails)."""

    def __init__(self, cursor: Any, db: BaseDatabaseWrapper) -> None:
        self._cursor = cursor
        self._qmark = db.vendor == "sqlite"
        self.locks_rows = db.features.has_select_for_update
        quote = db.ops.quote_name
        self.task = quote(Task._meta.db_table)
        self.run = quote(Iteration._meta.db_table)
        self.attempt = quote(Attempt._meta.db_table)
        self.worker = quote(WorkerNode._meta.db_table)
        self.time: Callable[[datetime | None], Any] = db.ops.adapt_datetimefield_value

    def select(self, query: str, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
        """`query` with its `{}` replaced by the placeholders of `keys`."""
        query = query.format("(" + ", ".join(["%s"] * len(keys)) + ")")
        self._cursor.execute(self._driver(query), list(keys))
        return self._cursor.fetchall()

    def many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._cursor.executemany(self._driver(statement), rows)

    def _driver(self, statement: str) -> str:
        return qmark(statement) if self._qmark else statement

    def insert_attempts(
        self, sent: list[RunSent], ended: dict[Key, RunEnded], now: datetime
    ) -> None:
        """New attempts, already settled when their end is in the batch too."""
        rows = []
        for r in sent:
            end = ended.get((r.iteration_id, r.number))
            rows.append(
                (
                    r.iteration_id,
                    r.number,
                    r.worker_peer_id,
                    r.worker_peer_id,
                    self.time(r.sent_at),
                    self.time(end.started_at if end else None),
                    self.time((end.finished_at or now) if end else None),
                    end.outcome if end else _RUNNING,
                    end.result if end else "",
                    end.error if end else "",
                    end.exit_code if end else None,
                )
            )
        self.many(
            f"INSERT INTO {self.attempt} (iteration_id, number, worker_id, worker_peer_id,"
            " sent_at, started_at, finished_at, outcome, result, error, exit_code)"
            f" VALUES (%s, %s, (SELECT id FROM {self.worker} WHERE peer_id = %s),"
            " %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )

    def settle_attempts(self, ended: list[RunEnded], now: datetime) -> None:
        """The outcome of attempts that were running before this batch."""
        self.many(
            f"UPDATE {self.attempt} SET outcome = %s, result = %s, error = %s,"
            " exit_code = %s, started_at = %s, finished_at = %s"
            " WHERE iteration_id = %s AND number = %s AND outcome = 'running'",
            [
                (
                    r.outcome,
                    r.result,
                    r.error,
                    r.exit_code,
                    self.time(r.started_at),
                    self.time(r.finished_at or now),
                    r.iteration_id,
                    r.number,
                )
                for r in ended
            ],
        )

    def write_runs(self, changes: dict[int, dict[str, Any]], now: datetime) -> None:
        """One statement per shape of change (started, back to pending, final)."""
        started, pending, final = [], [], []
        for run_id, fields in sorted(changes.items()):
            state = fields["state"]
            if state == State.RUNNING:
                started.append((run_id,))
            elif state == State.PENDING:
                pending.append((fields["error"], run_id))
            else:
                finished = self.time(fields["finished_at"] or now)
                final.append((state, fields["error"], fields["result"], finished, run_id))
        movable = "state IN ('pending', 'running')"
        self.many(f"UPDATE {self.run} SET state = 'running' WHERE id = %s AND {movable}", started)
        self.many(
            f"UPDATE {self.run} SET state = 'pending', error = %s WHERE id = %s AND {movable}",
            pending,
        )
        self.many(
            f"UPDATE {self.run} SET state = %s, error = %s, result = %s, finished_at = %s"
            f" WHERE id = %s AND {movable}",
            final,
        )
