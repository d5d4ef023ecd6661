"""The journal's records of one attempt, built from a run and what its
worker said (tasks_app.attempt_records): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks_app import attempt_records
from tasks_app.outcomes import WorkerOutcome
from tasks_app.selectors import DueRun

DUE = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RUN = DueRun(
    iteration_id=7, task_id="t", index=3, due_at=DUE, module_hash="ab" * 32,
    input=0, difficulty=3, duration=5.0,
)  # fmt: skip
OUTCOME = WorkerOutcome(
    state="failed",
    result="",
    error="trap: unreachable",
    exit_code=None,
    started_at=DUE,
    finished_at=DUE + timedelta(seconds=1),
    result_bytes=b"\xff",
    result_truncated=True,
    stderr="boom",
)


def test_an_ending_names_its_attempt_and_carries_everything_the_worker_said() -> None:
    record = attempt_records.ended(RUN, "12D3KooWPeer", 2, OUTCOME, retry=False)
    assert (record.iteration_id, record.task_id, record.index, record.number) == (7, "t", 3, 2)
    assert record.worker_peer_id == "12D3KooWPeer"
    assert (record.outcome, record.run_state) == ("failed", "failed")
    assert (record.error, record.result_bytes, record.result_truncated, record.stderr) == (
        "trap: unreachable",
        b"\xff",
        True,
        "boom",
    )
    assert (record.started_at, record.finished_at) == (OUTCOME.started_at, OUTCOME.finished_at)


def test_an_ending_to_be_retried_leaves_the_run_pending() -> None:
    record = attempt_records.ended(RUN, "p", 1, OUTCOME, retry=True)
    assert (record.outcome, record.run_state) == ("failed", "pending")


def test_a_loss_is_outcome_lost_with_the_state_it_was_given() -> None:
    record = attempt_records.lost(RUN, "p", 3, run_state="failed", error="gave up")
    assert (record.outcome, record.run_state, record.error, record.number) == (
        "lost",
        "failed",
        "gave up",
        3,
    )
    assert record.result == "" and record.result_bytes is None


def test_a_sending_names_its_attempt_and_time() -> None:
    record = attempt_records.sent(RUN, "p", 1, at=DUE)
    assert (record.iteration_id, record.number, record.worker_peer_id, record.sent_at) == (
        7,
        1,
        "p",
        DUE,
    )
