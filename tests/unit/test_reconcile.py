"""The fault suite's ledger check (tests/faults/reconcile.py) finds each way
the database and the workers' execution logs can disagree, and accepts the
pictures faults legitimately leave behind; a worker's ExecutionLog writes
what the check reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.faults.reconcile import Attempt, Execution, Journal, discrepancies, read_executions
from workers.execution_log import ExecutionLog
from workers.executor import RunOutcome, RunRequest
from workers.server import run_key

A, B = "12D3KooWA", "12D3KooWB"
T0 = 1_800_000_000.0


def consistent() -> tuple[Journal, list[Execution]]:
    """Task t: run 0 succeeded on A, run 1 lost on A then succeeded on B,
    run 2 failed on B. Task c: cancelled at T0+10 with run 0 done before."""
    journal = Journal(
        succeeded_count={"t": 2, "c": 1},
        cancelled_at={"c": T0 + 10},
        runs={
            ("t", 0): "succeeded",
            ("t", 1): "succeeded",
            ("t", 2): "failed",
            ("c", 0): "succeeded",
            ("c", 1): "cancelled",
        },
        attempts=[
            Attempt("t", 0, A, "succeeded"),
            Attempt("t", 1, A, "lost"),
            Attempt("t", 1, B, "succeeded"),
            Attempt("t", 2, B, "failed"),
            Attempt("c", 0, A, "succeeded"),
            Attempt("c", 1, B, "cancelled"),
        ],
    )
    executions = [
        Execution("t", 0, A, "succeeded", T0, T0 + 1),
        # A ran it, then was killed before its answer arrived: the attempt is lost.
        Execution("t", 1, A, "succeeded", T0, T0 + 1),
        Execution("t", 1, B, "succeeded", T0 + 2, T0 + 3),
        Execution("t", 2, B, "failed", T0, T0 + 1, "unreachable"),
        Execution("c", 0, A, "succeeded", T0, T0 + 1),
        # Queued on B, due after the cancel, dropped without entering the module.
        Execution("c", 1, B, "cancelled", T0 + 11, T0 + 11, "cancelled before it started"),
    ]
    return journal, executions


def test_a_consistent_picture_has_no_discrepancies() -> None:
    assert discrepancies(*consistent()) == []


def test_a_journal_count_that_disagrees_with_the_runs_is_found() -> None:
    """What the old check could not see: completions are succeeded_count,
    so comparing them with the succeeded runs' own count was comparing a
    number with itself whenever the two came from the same rows."""
    journal, executions = consistent()
    journal.succeeded_count["t"] = 3
    (problem,) = discrepancies(journal, executions)
    assert problem.startswith("task t: succeeded_count 3, succeeded runs 2")


def test_a_success_counted_twice_is_found() -> None:
    journal, executions = consistent()
    journal.attempts.append(Attempt("t", 0, B, "succeeded"))
    executions.append(Execution("t", 0, B, "succeeded", T0, T0 + 1))
    problems = discrepancies(journal, executions)
    assert any("2 succeeded attempts" in p for p in problems), problems
    assert any(p.startswith("task t: succeeded_count 2") for p in problems), problems


def test_a_success_no_worker_ran_is_found() -> None:
    journal, executions = consistent()
    executions = [e for e in executions if (e.task, e.run, e.worker) != ("t", 0, A)]
    (problem,) = discrepancies(journal, executions)
    assert "succeeded on 12D3KooWA in the database" in problem


def test_a_success_credited_to_the_wrong_worker_is_found() -> None:
    journal, executions = consistent()
    executions[0] = replace(executions[0], worker=B)  # B ran t#0, the database says A
    problems = discrepancies(journal, executions)
    assert any("never ran it successfully" in p for p in problems), problems
    assert any("ran successfully 1 times on 12D3KooWB" in p for p in problems), problems


@pytest.mark.parametrize("outcome", ["failed", "timed_out", "cancelled"])
def test_a_success_the_database_does_not_count_is_found(outcome: str) -> None:
    journal, executions = consistent()
    executions.append(Execution("t", 2, B, "succeeded", T0, T0 + 1))  # recorded as failed
    journal.attempts[3] = Attempt("t", 2, B, outcome)
    (problem,) = discrepancies(journal, executions)
    assert "ran successfully 1 times on 12D3KooWB, the database accounts for 0" in problem


def test_a_run_unknown_to_the_database_is_found() -> None:
    journal, executions = consistent()
    executions.append(Execution("ghost", 0, A, "succeeded", T0, T0 + 1))
    (problem,) = discrepancies(journal, executions)
    assert "unknown to the database" in problem


@pytest.mark.parametrize(
    ("state", "error"), [("succeeded", ""), ("failed", "trap"), ("cancelled", "while running")]
)
def test_a_run_started_after_its_task_was_cancelled_is_found(state: str, error: str) -> None:
    journal, executions = consistent()
    # c#1 ran on B after the cancel; the database still says cancelled.
    executions[-1] = Execution("c", 1, B, state, T0 + 11, T0 + 12, error)
    problems = discrepancies(journal, executions)
    assert any("after its task was cancelled" in p for p in problems), problems


def test_the_worker_log_reads_back_as_the_check_expects(tmp_path: Path) -> None:
    """ExecutionLog (workers/execution_log.py) writes one line per scheduled run,
    none for `assign`, appending when two workers share the file."""
    path = tmp_path / "executions.jsonl"

    def request(task_id: str, key: str) -> RunRequest:
        return RunRequest(task_id, "h", b"", 0, 0, 1.0, run_key=key)

    outcome = RunOutcome("succeeded", "2832", "", None, T0, T0 + 1)
    failed = RunOutcome("cancelled", "", "cancelled before it started", None, T0, T0)
    ExecutionLog(str(path), A).record(
        [request("t", run_key("t", 0)), request("assign", "")], [outcome, outcome]
    )
    ExecutionLog(str(path), B).record([request("a#b", run_key("a#b", 7))], [failed])
    assert read_executions(path) == [
        Execution("t", 0, A, "succeeded", T0, T0 + 1),
        Execution("a#b", 7, B, "cancelled", T0, T0, "cancelled before it started"),
    ]
    assert not read_executions(path)[1].ran


def test_an_unrecorded_repeat_is_found_unless_a_gateway_was_killed() -> None:
    """A gateway killed after sending a run and before its journal wrote the
    attempt leaves no row for that execution; the run runs again after the
    restart, and only then may a worker's successes outnumber the attempts
    (the run is still counted once)."""
    journal, executions = consistent()
    executions.append(Execution("t", 0, A, "succeeded", T0 + 5, T0 + 6))  # t#0 ran twice on A
    (problem,) = discrepancies(journal, executions)
    assert "ran successfully 2 times on 12D3KooWA" in problem
    assert discrepancies(journal, executions, gateway_killed=True) == []
    # Counting a success twice is never excused.
    journal.attempts.append(Attempt("t", 0, A, "succeeded"))
    assert any(
        "2 succeeded attempts" in p for p in discrepancies(journal, executions, gateway_killed=True)
    )
