"""The fault suite's "nothing lost, nothing counted twice" check, from
sources that do not derive from each other: the journal's per-task
`succeeded_count` (tasks_app/run_records.py keeps it as runs settle), the
runs' states, the attempts, and what the workers say they ran (each worker
appends a line per finished run to WW_EXECUTION_LOG, workers/agent.py).

`discrepancies()` is pure, so tests/unit/test_reconcile.py can feed it an
inconsistent picture and see each check fail."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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


@dataclass
class Journal:
    """What the database says."""

    succeeded_count: dict[str, int] = field(default_factory=dict)  # Task.succeeded_count
    cancelled_at: dict[str, float] = field(default_factory=dict)  # cancelled tasks: when
    runs: dict[RunKey, str] = field(default_factory=dict)  # each run's state
    attempts: list[Attempt] = field(default_factory=list)


def read_executions(path: Path) -> list[Execution]:
    """Every line of an execution log (none if no worker wrote one)."""
    if not path.exists():
        return []
    return [Execution(**json.loads(line)) for line in path.read_text().splitlines() if line]


def _epoch(text: str) -> float:
    """A DateTimeField as SQLite holds it (UTC, naive) in seconds since the epoch."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def read_journal(conn: sqlite3.Connection) -> Journal:
    journal = Journal()
    for task_id, count, cancelled_at in conn.execute(
        "SELECT id, succeeded_count, cancelled_at FROM tasks_app_task"
    ):
        journal.succeeded_count[task_id] = count
        if cancelled_at is not None:
            journal.cancelled_at[task_id] = _epoch(cancelled_at)
    for task_id, index, state in conn.execute(
        'SELECT task_id, "index", state FROM tasks_app_iteration'
    ):
        journal.runs[(task_id, index)] = state
    journal.attempts = [
        Attempt(task_id, index, worker, outcome)
        for task_id, index, worker, outcome in conn.execute(
            'SELECT i.task_id, i."index", a.worker_peer_id, a.outcome FROM tasks_app_attempt a'
            " JOIN tasks_app_iteration i ON i.id = a.iteration_id"
        )
    ]
    return journal


def discrepancies(
    journal: Journal, executions: list[Execution], *, gateway_killed: bool = False
) -> list[str]:
    """Every way the database and the workers' record disagree; [] when
    every success is counted once, by the journal, for a run a worker really
    ran, and nothing of a cancelled task ran after its cancel.

    `gateway_killed`: a gateway was SIGKILLed during the test. A run it had
    sent whose attempt its journal had not written yet then left no attempt
    row, and runs again after the restart (execution is at least once,
    README "Guarantees"): a worker may have run it successfully more often
    than the database has attempts for it. It is still counted once."""
    problems: list[str] = []
    succeeded_attempts = Counter(
        (a.task, a.run) for a in journal.attempts if a.outcome == "succeeded"
    )

    # The journal's count against the runs' states and the attempts.
    runs_by_task = Counter(t for (t, _), state in journal.runs.items() if state == "succeeded")
    distinct_by_task = Counter(t for (t, _) in succeeded_attempts)
    attempts_by_task: Counter[str] = Counter()
    for (t, _), n in succeeded_attempts.items():
        attempts_by_task[t] += n
    for task_id, count in sorted(journal.succeeded_count.items()):
        runs, distinct = runs_by_task[task_id], distinct_by_task[task_id]
        attempts = attempts_by_task[task_id]
        if not count == runs == distinct == attempts:
            problems.append(
                f"task {task_id}: succeeded_count {count}, succeeded runs {runs}, runs with a"
                f" succeeded attempt {distinct}, succeeded attempts {attempts}"
            )
    for key, n in sorted(succeeded_attempts.items()):
        if n > 1:
            problems.append(f"run {key}: {n} succeeded attempts (a success counted twice)")
        if journal.runs.get(key) != "succeeded":
            problems.append(f"run {key}: has a succeeded attempt but is {journal.runs.get(key)}")

    # Every success the database holds was executed, by the worker it names.
    ran_ok = Counter((e.task, e.run, e.worker) for e in executions if e.state == "succeeded")
    for a in journal.attempts:
        if a.outcome == "succeeded" and not ran_ok[(a.task, a.run, a.worker)]:
            problems.append(
                f"run {(a.task, a.run)}: succeeded on {a.worker} in the database,"
                " but that worker never ran it successfully"
            )

    # Every success a worker had is counted: by a succeeded attempt of that
    # worker, or its answer never arrived (the attempt is `lost`, the run
    # went elsewhere). One attempt accounts for one execution.
    accounted = Counter(
        (a.task, a.run, a.worker) for a in journal.attempts if a.outcome in {"succeeded", "lost"}
    )
    for (task_id, run, worker), n in sorted(ran_ok.items()):
        if (task_id, run) not in journal.runs:
            problems.append(f"run {(task_id, run)}: ran on {worker}, unknown to the database")
        elif n > accounted[(task_id, run, worker)] and not gateway_killed:
            problems.append(
                f"run {(task_id, run)}: ran successfully {n} times on {worker}, the database"
                f" accounts for {accounted[(task_id, run, worker)]} (succeeded or lost attempts)"
            )

    # Nothing of a cancelled task started after the cancel.
    for e in executions:
        cancelled = journal.cancelled_at.get(e.task)
        if cancelled is not None and e.ran and e.started > cancelled:
            problems.append(
                f"run {(e.task, e.run)}: started on {e.worker} {e.started - cancelled:.3f} s"
                f" after its task was cancelled (ended {e.state})"
            )
    return problems
