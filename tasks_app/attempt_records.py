"""What the journal is told about one attempt: its sending, its ending as
the worker told it, its loss. Pure: the scheduler decides (with
tasks_app.policy) whether a run is tried again; these build the records
(tasks_app.journal) that say so."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Attempt, Iteration
from tasks_app.outcomes import WorkerOutcome
from tasks_app.selectors import DueRun

State = Iteration.State
Outcome = Attempt.Outcome


def attempt_of(run: DueRun, worker_peer_id: str, number: int) -> dict[str, Any]:
    """The fields that name one attempt in the journal's records."""
    return {
        "iteration_id": run.iteration_id,
        "task_id": run.task_id,
        "index": run.index,
        "number": number,
        "worker_peer_id": worker_peer_id,
    }


def sent(run: DueRun, worker_peer_id: str, number: int, *, at: datetime) -> RunSent:
    return RunSent(**attempt_of(run, worker_peer_id, number), sent_at=at)


def ended(
    run: DueRun, worker_peer_id: str, number: int, outcome: WorkerOutcome, *, retry: bool
) -> RunEnded:
    """The attempt ended as `outcome` says; the run waits again when it is
    to be retried, else it ends in the attempt's state."""
    return RunEnded(
        **attempt_of(run, worker_peer_id, number),
        outcome=outcome.state,
        run_state=State.PENDING if retry else outcome.state,
        result=outcome.result,
        error=outcome.error,
        exit_code=outcome.exit_code,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        result_bytes=outcome.result_bytes,
        result_truncated=outcome.result_truncated,
        stderr=outcome.stderr,
    )


def lost(run: DueRun, worker_peer_id: str, number: int, *, run_state: str, error: str) -> RunEnded:
    """The attempt is lost (no answer, a worker gone, a malformed answer);
    `run_state` is what the run becomes (policy.after_loss)."""
    return RunEnded(
        **attempt_of(run, worker_peer_id, number),
        outcome=Outcome.LOST,
        run_state=run_state,
        error=error,
    )
