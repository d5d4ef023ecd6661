"""The domain's hand-written SQL, all of it: the statements of the two
hottest write paths — a submission's task with its runs (`insert_task`)
and the journal's batch of run records (`JournalStatements`) — and the
known-module read every submission makes (`Statements.known_module`). They are
written out rather than built by the ORM because on these paths the query
builder's per-call work (model instances, signals, compiling the query)
costs more than the statements themselves.

What keeps them true to the models:
- every table and column name is read from the models' `_meta`;
- every INSERT names, for each concrete field of its model, whether each
  row gives it (a parameter) or it is written with a constant on purpose
  (the model's default, or a state): tests/unit/test_storage.py fails on a
  field that is neither, so a new field cannot be left out silently;
- state names are the model enums' (Iteration.State, Attempt.Outcome);
- no statement takes more than MAX_PARAMS parameters: long key lists are
  read in chunks, rows inserted in chunks.

Statements are rendered once per backend and placeholder style: `%s` for
Django's cursor (and psycopg's own), `?` for sqlite3's own cursor."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Attempt, Iteration, Module, Task

# The worker table the journal keeps tallies in: its model's one import here.
from tasks_app.models import WorkerNode as Worker

State = Iteration.State
Outcome = Attempt.Outcome

# SQLite builds before 3.32 refuse a statement of more than 999 parameters
# (Django's features.max_query_params for SQLite says the same); every
# statement here stays within it, on every backend.
MAX_PARAMS = 999
# Keys in one `IN (...)` of a query the ORM builds: room for its other
# parameters (an UPDATE's new values, other filters).
ORM_IN_KEYS = 900

K = TypeVar("K")
Key = tuple[int, int]  # an attempt: (run id, attempt number)


def chunks(keys: Sequence[K], size: int = MAX_PARAMS) -> Iterator[Sequence[K]]:
    """`keys` in slices of at most `size`, in order."""
    for first in range(0, len(keys), size):
        yield keys[first : first + size]


def field_of(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """`model`'s concrete field `name` (a relation's reverse side or a
    generic key has no column to write)."""
    f = model._meta.get_field(name)
    if not isinstance(f, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return f


class _Default:
    """A constant column written with its model field's default."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


@dataclass(frozen=True)
class Insert:
    """An INSERT into `model`'s table: the `given` fields come from each row,
    in this order (a parameter each); the `constants` are written into the
    statement, the same for every row (DEFAULT: the field's default). The
    database's own key (an auto id) is the only field it may leave out."""

    model: type[models.Model]
    given: tuple[str, ...]
    constants: Mapping[str, object] = field(default_factory=dict)

    def fields(self) -> list[str]:
        """The model's fields the statement writes, in column order."""
        return [*self.given, *self.constants]

    def constant(self, name: str) -> object:
        value = self.constants[name]
        return field_of(self.model, name).get_default() if value is DEFAULT else value


TASK_INSERT = Insert(
    Task,
    given=(
        "id",
        "description",
        "module",
        "duration",
        "start",
        "delay",
        "repeats",
        "input",
        "difficulty",
        "retries",
        "received_at",
        "args",
        "stdin",
        "env",
        "priority",
        "queue",
        "constraints",
        "replicas",
        "fuel",
    ),
    # A new task: not cancelled, nothing succeeded yet, no schedule's firing
    # (those are made by tasks_app/firing.py).
    constants={"cancelled_at": DEFAULT, "succeeded_count": DEFAULT, "schedule": DEFAULT},
)
RUN_INSERT = Insert(
    Iteration,
    given=("task", "index", "due_at"),
    # A new run waits, with nothing to show yet.
    constants={
        "state": State.PENDING,
        "result": DEFAULT,
        "result_bytes": DEFAULT,
        "result_truncated": DEFAULT,
        "stderr": DEFAULT,
        "error": DEFAULT,
        "finished_at": DEFAULT,
    },
)
# `worker` is given as its peer ID (a subselect finds the row).
ATTEMPT_INSERT = Insert(
    Attempt,
    given=(
        "iteration",
        "number",
        "worker",
        "worker_peer_id",
        "sent_at",
        "started_at",
        "finished_at",
        "outcome",
        "result",
        "result_bytes",
        "result_truncated",
        "stderr",
        "error",
        "exit_code",
    ),
)
INSERTS = (TASK_INSERT, RUN_INSERT, ATTEMPT_INSERT)

# Read as Model.from_db takes them (attribute names, in the model's order).
KNOWN_MODULE_FIELDS = ["sha256", "size", "kind"]
TASK_INPUT_FIELDS = ["id", "args", "stdin", "env"]

_MOVABLE = (State.PENDING, State.RUNNING)  # a run moves only out of these
# What a run's end writes on it besides its state, error and result
# (JournalStatements.write_runs).
_RUN_OUTPUT = ("result_bytes", "result_truncated", "stderr")
# What an attempt's end writes on it (JournalStatements.settle_attempts).
_SETTLED = (
    "outcome",
    "result",
    "result_bytes",
    "result_truncated",
    "stderr",
    "error",
    "exit_code",
    "started_at",
    "finished_at",
)


def _literal(value: object) -> str:
    """A constant written into a statement: a state or a model's default.
    Only the kinds those are; a '%' would be read as a placeholder."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, str) and "%" not in value:
        return "'" + str(value).replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


class _Names:
    """The models' table and column names, quoted for one backend."""

    def __init__(self, quote: Callable[[str], str]) -> None:
        self._quote = quote

    def table(self, model: type[models.Model]) -> str:
        return self._quote(model._meta.db_table)

    def col(self, model: type[models.Model], name: str) -> str:
        return self._quote(field_of(model, name).column)

    def cols(self, model: type[models.Model], names: Sequence[str]) -> str:
        return ", ".join(self.col(model, name) for name in names)


class Statements:
    """Every statement, rendered for one backend's quoting and placeholder
    (`p`). Statements with `{}` take a parenthesised list of placeholders
    there (`in_list`)."""

    def __init__(self, quote: Callable[[str], str], p: str) -> None:
        n = _Names(quote)
        self.placeholder = p
        task, run, attempt, worker = (n.table(m) for m in (Task, Iteration, Attempt, Worker))
        task_id, run_id = n.col(Task, "id"), n.col(Iteration, "id")

        self.known_module = (
            f"SELECT {n.cols(Module, KNOWN_MODULE_FIELDS)} FROM {n.table(Module)}"
            f" WHERE {n.col(Module, 'sha256')} = {p}"
        )

        self.insert_task = self._insert(n, TASK_INSERT) + self._row(TASK_INSERT)
        self.insert_tasks = self._insert(n, TASK_INSERT)  # + task_row per task, comma-separated
        self.task_row = self._row(TASK_INSERT)
        self.insert_runs = self._insert(n, RUN_INSERT)
        self.run_row = self._row(RUN_INSERT)
        worker_by_peer = (
            f"(SELECT {n.col(Worker, 'id')} FROM {worker} WHERE {n.col(Worker, 'peer_id')} = {p})"
        )
        self.insert_attempts = self._insert(n, ATTEMPT_INSERT) + self._row(
            ATTEMPT_INSERT, {"worker": worker_by_peer}
        )

        # The journal's batch.
        self.lock_tasks = f"SELECT {task_id} FROM {task} WHERE {task_id} IN {{}} ORDER BY {task_id}"
        self.run_states = (
            f"SELECT {run_id}, {n.col(Iteration, 'state')} FROM {run} WHERE {run_id} IN {{}}"
        )
        self.attempt_outcomes = (
            f"SELECT {n.cols(Attempt, ['iteration', 'number', 'outcome'])} FROM {attempt}"
            f" WHERE {n.col(Attempt, 'iteration')} IN {{}}"
        )
        self.settle_attempt = (
            f"UPDATE {attempt} SET "
            + ", ".join(f"{n.col(Attempt, name)} = {p}" for name in _SETTLED)
            + f" WHERE {n.col(Attempt, 'iteration')} = {p} AND {n.col(Attempt, 'number')} = {p}"
            f" AND {n.col(Attempt, 'outcome')} = {_literal(Outcome.RUNNING)}"
        )
        state = n.col(Iteration, "state")
        movable = f"{run_id} = {p} AND {state} IN ({', '.join(map(_literal, _MOVABLE))})"
        error, result = n.col(Iteration, "error"), n.col(Iteration, "result")
        self.run_started = f"UPDATE {run} SET {state} = {_literal(State.RUNNING)} WHERE {movable}"
        self.run_waits = (
            f"UPDATE {run} SET {state} = {_literal(State.PENDING)}, {error} = {p} WHERE {movable}"
        )
        ended = (
            f"UPDATE {run} SET {state} = {p}, {error} = {p}, {result} = {p}, "
            + ", ".join(f"{n.col(Iteration, name)} = {p}" for name in _RUN_OUTPUT)
            + f", {n.col(Iteration, 'finished_at')} = {p} WHERE "
        )
        self.run_ended = ended + movable
        # A run its task's cancel turned `cancelled` while its attempt was on
        # its way (sent, its record not written yet), which then succeeded.
        self.run_ran_anyway = ended + f"{run_id} = {p} AND {state} = {_literal(State.CANCELLED)}"
        succeeded = n.col(Task, "succeeded_count")
        self.add_successes = (
            f"UPDATE {task} SET {succeeded} = {succeeded} + {p} WHERE {task_id} = {p}"
        )
        completed, failed = n.col(Worker, "completed"), n.col(Worker, "failed")
        self.tally_worker = (
            f"UPDATE {worker} SET {completed} = {completed} + {p}, {failed} = {failed} + {p},"
            f" {n.col(Worker, 'last_seen')} = {p} WHERE {n.col(Worker, 'peer_id')} = {p}"
        )
        self.successes = f"SELECT {task_id}, {succeeded} FROM {task} WHERE {task_id} IN {{}}"
        # What a task gives its runs' modules (tasks_app.job_inputs), read
        # on the event loop when a run to send comes without them.
        self.task_inputs = (
            f"SELECT {n.cols(Task, TASK_INPUT_FIELDS)} FROM {task} WHERE {task_id} IN {{}}"
        )

    def _insert(self, n: _Names, spec: Insert) -> str:
        return f"INSERT INTO {n.table(spec.model)} ({n.cols(spec.model, spec.fields())}) VALUES "

    def _row(self, spec: Insert, given_as: Mapping[str, str] | None = None) -> str:
        """One row's values: a placeholder per given field (or its SQL in
        `given_as`), then the constants."""
        given = [(given_as or {}).get(name, self.placeholder) for name in spec.given]
        constants = [_literal(spec.constant(name)) for name in spec.constants]
        return "(" + ", ".join(given + constants) + ")"

    def in_list(self, statement: str, count: int) -> str:
        return statement.format("(" + ", ".join([self.placeholder] * count) + ")")


_rendered: dict[tuple[str, bool], Statements] = {}


def statements(db: BaseDatabaseWrapper, *, driver_cursor: bool) -> Statements:
    """The statements for `db`'s backend, for Django's cursor on it or (with
    `driver_cursor`) for the database driver's own cursor."""
    key = (db.vendor, driver_cursor)
    rendered = _rendered.get(key)
    if rendered is None:
        p = "?" if driver_cursor and db.vendor == "sqlite" else "%s"
        rendered = _rendered[key] = Statements(db.ops.quote_name, p)
    return rendered


def insert_task(
    cursor: Any, db: BaseDatabaseWrapper, sql: Statements, task: Task, due: Sequence[datetime]
) -> list[int] | None:
    """INSERT `task` and its runs (run k due at `due[k]`) through `cursor`.
    No signals are sent: none are connected for these models. Returns the
    runs' primary keys, or None where the database does not return new
    rows' keys."""
    time = db.ops.adapt_datetimefield_value
    returns = db.features.can_return_rows_from_bulk_insert
    cursor.execute(sql.insert_task, _task_row(task, db))
    returning = f" RETURNING {db.ops.quote_name(Iteration._meta.pk.column)}" if returns else ""
    run_ids: list[int] = []
    per_statement = MAX_PARAMS // len(RUN_INSERT.given)
    for first in range(0, len(due), per_statement):
        chunk = due[first : first + per_statement]
        params: list[Any] = []
        for index, due_at in enumerate(chunk, start=first):
            params += (task.pk, index, time(due_at))  # RUN_INSERT.given
        cursor.execute(sql.insert_runs + ", ".join([sql.run_row] * len(chunk)) + returning, params)
        if returns:
            run_ids += (run_id for (run_id,) in cursor.fetchall())
    task._state.adding = False
    task._state.db = db.alias
    return run_ids if returns else None


def insert_tasks(
    cursor: Any,
    db: BaseDatabaseWrapper,
    sql: Statements,
    tasks: Sequence[Task],
    dues: Sequence[Sequence[datetime]],
) -> list[list[int]] | None:
    """`insert_task` for many tasks (task i's run k due at `dues[i][k]`),
    with as many rows per statement as MAX_PARAMS allows: a batch of
    10,000 one-run tasks is some 230 statements, not 20,000. Returns each
    task's runs' primary keys, or None where the database does not return
    new rows' keys."""
    time = db.ops.adapt_datetimefield_value
    returns = db.features.can_return_rows_from_bulk_insert
    per_task_statement = MAX_PARAMS // len(TASK_INSERT.given)
    for chunk in chunks(tasks, per_task_statement):
        params: list[Any] = []
        for task in chunk:
            params += _task_row(task, db)
        cursor.execute(sql.insert_tasks + ", ".join([sql.task_row] * len(chunk)), params)
    returning = f" RETURNING {db.ops.quote_name(Iteration._meta.pk.column)}" if returns else ""
    runs = [
        (task.pk, index, time(due_at))
        for task, due in zip(tasks, dues, strict=True)
        for index, due_at in enumerate(due)
    ]
    run_ids: list[int] = []
    for chunk_runs in chunks(runs, MAX_PARAMS // len(RUN_INSERT.given)):
        params = [value for row in chunk_runs for value in row]  # RUN_INSERT.given
        cursor.execute(
            sql.insert_runs + ", ".join([sql.run_row] * len(chunk_runs)) + returning, params
        )
        if returns:
            run_ids += (run_id for (run_id,) in cursor.fetchall())
    for task in tasks:
        task._state.adding = False
        task._state.db = db.alias
    if not returns:
        return None
    per_task: list[list[int]] = []
    first = 0
    for due in dues:
        per_task.append(run_ids[first : first + len(due)])
        first += len(due)
    return per_task


def _task_row(task: Task, db: BaseDatabaseWrapper) -> list[Any]:
    """TASK_INSERT's given fields of `task`, as the database driver takes them."""
    return [
        adapt(getattr(task, attname), db) if adapt else getattr(task, attname)
        for attname, adapt in _TASK_VALUES
    ]


Adapter = Callable[[Any, BaseDatabaseWrapper], Any]


def _values(spec: Insert) -> list[tuple[str, Adapter | None]]:
    """(attribute name, its adapter or None) of each given field: the kinds
    the driver takes as they are go unadapted; times and JSON through their
    field's own preparation for the database (the backend's adapter); a
    field of another kind needs its entry here."""
    values: list[tuple[str, Adapter | None]] = []
    for name in spec.given:
        f = field_of(spec.model, name)
        kind = f.get_internal_type()
        if kind in _AS_THEY_ARE:
            values.append((f.attname, None))
        elif kind in _PREPARED:
            values.append((f.attname, functools.partial(_prepared, f)))
        else:
            raise TypeError(f"{spec.model.__name__}.{name}: no adapter for a {kind}")
    return values


def _prepared(f: models.Field[Any, Any], value: Any, db: BaseDatabaseWrapper) -> Any:
    return f.get_db_prep_save(value, connection=db)


_PREPARED = {"DateTimeField", "JSONField"}


_AS_THEY_ARE = {
    "CharField",
    "TextField",
    "FloatField",
    "IntegerField",
    "BigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "PositiveBigIntegerField",
    "SmallIntegerField",
    "BinaryField",
    "ForeignKey",
}
_TASK_VALUES = _values(TASK_INSERT)


class JournalStatements:
    """The journal's batch statements on one cursor of the database driver
    itself, inside the transaction Django opened on the same connection (or
    the event loop's own, tasks_app.loop_db): Django's cursor wrapper costs
    more per statement than SQLite takes to run it. A driver error is the
    driver's own (the journal retries whatever fails)."""

    def __init__(self, cursor: Any, db: BaseDatabaseWrapper) -> None:
        self._cursor = cursor
        self._sql = statements(db, driver_cursor=True)
        # On PostgreSQL a batch locks its rows (SQLite's IMMEDIATE
        # transaction holds the whole database already).
        self.locks_rows = db.features.has_select_for_update
        self.time: Callable[[datetime | None], Any] = db.ops.adapt_datetimefield_value

    def _select(
        self, statement: str, keys: Sequence[Any], suffix: str = ""
    ) -> list[tuple[Any, ...]]:
        """`statement` over `keys`, in chunks of at most MAX_PARAMS keys."""
        rows: list[tuple[Any, ...]] = []
        for chunk in chunks(keys):
            self._cursor.execute(self._sql.in_list(statement, len(chunk)) + suffix, list(chunk))
            rows += self._cursor.fetchall()
        return rows

    def _many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._cursor.executemany(statement, rows)

    def lock_tasks(self, task_ids: Sequence[str]) -> None:
        """Lock the tasks' rows, in id order (sorted `task_ids`)."""
        self._select(self._sql.lock_tasks, task_ids, " FOR UPDATE")

    def run_states(self, run_ids: Sequence[int]) -> dict[int, str]:
        """Each run's state (its row locked where rows are)."""
        lock = " FOR UPDATE" if self.locks_rows else ""
        return {
            run_id: state for run_id, state in self._select(self._sql.run_states, run_ids, lock)
        }

    def attempt_outcomes(self, run_ids: Sequence[int]) -> dict[Key, str]:
        """The outcome of every attempt of the runs, by (run id, number)."""
        return {
            (run_id, number): outcome
            for run_id, number, outcome in self._select(self._sql.attempt_outcomes, run_ids)
        }

    def insert_attempts(
        self, sent: list[RunSent], ended: dict[Key, RunEnded], now: datetime
    ) -> None:
        """New attempts, already settled when their end is in the batch too."""
        time = self.time
        rows = []
        for r in sent:
            end = ended.get((r.iteration_id, r.number))
            rows.append(  # ATTEMPT_INSERT.given
                (
                    r.iteration_id,
                    r.number,
                    r.worker_peer_id,  # worker: found by its peer ID
                    r.worker_peer_id,
                    time(r.sent_at),
                    time(end.started_at if end else None),
                    time((end.finished_at or now) if end else None),
                    end.outcome if end else Outcome.RUNNING,
                    end.result if end else "",
                    end.result_bytes if end else None,
                    end.result_truncated if end else False,
                    end.stderr if end else "",
                    end.error if end else "",
                    end.exit_code if end else None,
                )
            )
        self._many(self._sql.insert_attempts, rows)

    def settle_attempts(self, ended: list[RunEnded], now: datetime) -> None:
        """The outcome of attempts that were running before this batch."""
        time = self.time
        self._many(
            self._sql.settle_attempt,
            [
                (  # _SETTLED, then the attempt's key
                    r.outcome,
                    r.result,
                    r.result_bytes,
                    r.result_truncated,
                    r.stderr,
                    r.error,
                    r.exit_code,
                    time(r.started_at),
                    time(r.finished_at or now),
                    r.iteration_id,
                    r.number,
                )
                for r in ended
            ],
        )

    def write_runs(self, changes: dict[int, dict[str, Any]], now: datetime) -> None:
        """One statement per shape of change (started, back to pending,
        final), each only moving a run that is pending or running; and a
        success of a run its cancel caught on its way (`ran_anyway`)."""
        started: list[tuple[Any, ...]] = []
        pending: list[tuple[Any, ...]] = []
        final: list[tuple[Any, ...]] = []
        ran_anyway: list[tuple[Any, ...]] = []
        for run_id, fields in sorted(changes.items()):
            state = fields["state"]
            if state == State.RUNNING:
                started.append((run_id,))
            elif state == State.PENDING:
                pending.append((fields["error"], run_id))
            else:
                finished = self.time(fields["finished_at"] or now)
                output = (  # _RUN_OUTPUT
                    fields.get("result_bytes"),
                    fields.get("result_truncated", False),
                    fields.get("stderr", ""),
                )
                row = (state, fields["error"], fields["result"], *output, finished, run_id)
                (ran_anyway if fields.get("ran_anyway") else final).append(row)
        self._many(self._sql.run_started, started)
        self._many(self._sql.run_waits, pending)
        self._many(self._sql.run_ended, final)
        self._many(self._sql.run_ran_anyway, ran_anyway)

    def add_successes(self, succeeded: Counter[str]) -> None:
        """Add each task's new successes to its count."""
        self._many(
            self._sql.add_successes,
            [(n, task_id) for task_id, n in sorted(succeeded.items())],
        )

    def tally_workers(self, tally: dict[str, tuple[int, int]], now: datetime) -> None:
        """Add (completed, failed) attempts to each worker's counts; seen now."""
        seen = self.time(now)
        self._many(
            self._sql.tally_worker,
            [(ok, bad, seen, peer) for peer, (ok, bad) in sorted(tally.items())],
        )

    def successes(self, task_ids: Sequence[str]) -> dict[str, int]:
        """Each task's count of succeeded runs."""
        return {task_id: n for task_id, n in self._select(self._sql.successes, task_ids)}


def task_inputs_here(
    query: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]],
    db: BaseDatabaseWrapper,
    task_ids: Sequence[str],
) -> list[tuple[Any, ...]]:
    """TASK_INPUT_FIELDS of each of the tasks, as the driver returns them
    (JSON as its text), through `query` (the event loop's own connection:
    tasks_app.loop_db.LoopDatabase.query)."""
    sql = statements(db, driver_cursor=True)
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(task_ids):
        rows += query(sql.in_list(sql.task_inputs, len(chunk)), tuple(chunk))
    return rows
