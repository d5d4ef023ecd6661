"""The history the checker (tests/faults/history.py) reads: plain records
of what the database recorded — tasks, runs, attempts, schedules and their
recorded skipped fire times, through any DB-API connection (the embedded
SQLite file or PostgreSQL through psycopg, the same SQL for both) — and of
what every worker says it executed (WW_EXECUTION_LOG,
workers/execution_log.py; several files or one they share)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from tasks_app.fire_times import Timing

RunKey = tuple[str, int]  # (task id, run index)


@dataclass(frozen=True)
class Execution:
    """One run a worker finished, as its execution log says."""

    task: str
    run: int
    worker: str
    state: str
    started: float  # time.time() when the module was entered (or the cancel seen)
    finished: float
    error: str = ""

    @property
    def ran(self) -> bool:
        """The module was entered: anything but a cancel before it started."""
        return not (self.state == "cancelled" and "before it started" in self.error)


@dataclass(frozen=True)
class Attempt:
    task: str
    run: int
    worker: str  # peer ID
    outcome: str
    number: int = 1
    sent: float = 0.0  # when the gateway sent it
    started: float | None = None  # when the worker entered the module (as it said)
    ended: float | None = None  # when it ended, or was declared lost


@dataclass(frozen=True)
class Firings:
    """A schedule: its timing, and the fire times it recorded as skipped."""

    timing: Timing
    overlap: str = "skip"
    next_fire_at: datetime | None = None  # the chain's head
    # (first, last) fire time of each gap recorded skipped (MissedFirings).
    skipped: tuple[tuple[datetime, datetime], ...] = ()


@dataclass
class History:
    succeeded_count: dict[str, int] = field(default_factory=dict)  # Task.succeeded_count
    cancelled_at: dict[str, float] = field(default_factory=dict)  # cancelled tasks: when
    schedule_of: dict[str, str] = field(default_factory=dict)  # firing task -> schedule name
    runs: dict[RunKey, str] = field(default_factory=dict)  # each run's state
    due_at: dict[RunKey, float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    schedules: dict[str, Firings] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------


class Connection(Protocol):
    """What the reads need of a DB-API connection (sqlite3, psycopg)."""

    def cursor(self) -> Any: ...


def read_executions(paths: Iterable[Path]) -> list[Execution]:
    """Every line of the execution logs that exist (workers may share one)."""
    executions: list[Execution] = []
    for path in paths:
        if path.exists():
            lines = path.read_text().splitlines()
            executions.extend(Execution(**json.loads(line)) for line in lines if line)
    return executions


def _moment(value: Any) -> datetime | None:
    """A DateTimeField as read: an ISO string (SQLite, UTC, naive) or a
    datetime (psycopg, aware), as an aware UTC datetime."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _epoch(value: Any) -> float | None:
    moment = _moment(value)
    return None if moment is None else moment.timestamp()


def _rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _anchor(start_at: datetime | None, created_at: datetime) -> datetime:
    """tasks_app.firing.anchor_of, over the row's values."""
    if start_at is not None:
        return start_at
    whole = created_at.replace(microsecond=0)
    return whole if whole == created_at else whole + timedelta(seconds=1)


def read_history(conn: Connection, execution_logs: Iterable[Path] = ()) -> History:
    """The history in the database `conn` reaches, and in the logs. The SQL
    uses no placeholders and nothing one engine lacks, so it runs as it is
    on SQLite and PostgreSQL."""
    history = History(executions=read_executions(execution_logs))
    for task_id, count, cancelled_at, schedule in _rows(
        conn,
        "SELECT t.id, t.succeeded_count, t.cancelled_at, s.name FROM tasks_app_task t"
        " LEFT JOIN tasks_app_schedule s ON s.id = t.schedule_id",
    ):
        history.succeeded_count[task_id] = count
        if cancelled_at is not None:
            history.cancelled_at[task_id] = _epoch(cancelled_at) or 0.0
        if schedule is not None:
            history.schedule_of[task_id] = schedule
    for task_id, index, state, due_at in _rows(
        conn, 'SELECT task_id, "index", state, due_at FROM tasks_app_iteration'
    ):
        history.runs[(task_id, index)] = state
        history.due_at[(task_id, index)] = _epoch(due_at) or 0.0
    history.attempts = [
        Attempt(task, index, worker, outcome, number, _epoch(sent) or 0.0, _epoch(s), _epoch(e))
        for task, index, worker, outcome, number, sent, s, e in _rows(
            conn,
            'SELECT i.task_id, i."index", a.worker_peer_id, a.outcome, a.number, a.sent_at,'
            " a.started_at, a.finished_at FROM tasks_app_attempt a"
            " JOIN tasks_app_iteration i ON i.id = a.iteration_id",
        )
    ]
    skipped: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for schedule_id, first, last in _rows(
        conn, "SELECT schedule_id, first_fire_at, last_fire_at FROM tasks_app_missedfirings"
    ):
        skipped[schedule_id].append((_moment(first), _moment(last)))  # type: ignore[arg-type]
    for row in _rows(
        conn,
        "SELECT id, name, every, cron, timezone, start_at, end_at, created_at, overlap,"
        " next_fire_at FROM tasks_app_schedule",
    ):
        schedule_id, name, every, cron, zone, start_at, end_at, created_at, overlap, head = row
        start, created = _moment(start_at), _moment(created_at)
        assert created is not None
        timing = Timing(
            every=every,
            cron=cron or None,
            zone=zone,
            anchor=_anchor(start, created),
            start_at=start,
            end_at=_moment(end_at),
        )
        history.schedules[name] = Firings(
            timing, overlap, _moment(head), tuple(sorted(skipped[schedule_id]))
        )
    return history
