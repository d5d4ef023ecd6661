"""The journal's batch write: runs move only out of pending or running, a
success is counted once, and events carry the task's completions."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tasks_app import run_records, services
from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Attempt, Iteration, Task
from tests.api.forms import HASH_WASM

PEER = "12D3KooWRecordRuns"

pytestmark = pytest.mark.django_db


def _task(task_id: str = "t", repeats: int = 2) -> list[Iteration]:
    services.create_task(
        task_id=task_id,
        description="",
        wasm=HASH_WASM,
        duration=5,
        start=0,
        delay=0,
        repeats=repeats,
        input=0,
        difficulty=3,
    )
    return list(Iteration.objects.filter(task_id=task_id).order_by("index"))


def _sent(run: Iteration, number: int = 1) -> RunSent:
    return RunSent(
        iteration_id=run.pk,
        task_id=run.task_id,
        index=run.index,
        number=number,
        worker_peer_id=PEER,
        sent_at=timezone.now(),
    )


def _ended(run: Iteration, outcome: str, run_state: str | None = None, number: int = 1):
    return RunEnded(
        iteration_id=run.pk,
        task_id=run.task_id,
        index=run.index,
        number=number,
        worker_peer_id=PEER,
        outcome=outcome,
        run_state=run_state or outcome,
        result="2832",
    )


def test_sent_then_ended_in_one_batch_and_events_count_completions() -> None:
    first, second = _task()
    events = run_records.record_runs([_sent(first), _sent(second), _ended(first, "succeeded")])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.result) == ("succeeded", "2832")
    assert second.state == "running"
    by_index = {e["index"]: e for e in events}
    assert by_index[0]["state"] == "succeeded" and by_index[0]["completions"] == 1
    assert by_index[1]["state"] == "running"


def test_a_success_is_written_once() -> None:
    run, _ = _task()
    run_records.record_runs([_sent(run), _ended(run, "succeeded")])
    again = run_records.record_runs([_ended(run, "succeeded")])
    assert again == []
    assert Attempt.objects.filter(iteration=run, outcome="succeeded").count() == 1


def test_lost_attempt_puts_the_run_back_and_the_retry_is_a_new_attempt() -> None:
    run, _ = _task()
    run_records.record_runs([_sent(run), _ended(run, "lost", "pending")])
    run.refresh_from_db()
    assert run.state == "pending"
    run_records.record_runs([_sent(run, 2), _ended(run, "succeeded", number=2)])
    run.refresh_from_db()
    assert run.state == "succeeded"
    assert list(run.attempts.values_list("number", "outcome")) == [(1, "lost"), (2, "succeeded")]


def test_a_run_cancelled_before_its_records_arrive_stays_cancelled() -> None:
    """The scheduler may dispatch a run just before it hears of the cancel:
    the run's records then change nothing, and no success is counted."""
    run, _ = _task()
    services.cancel_task(task_id="t")
    events = run_records.record_runs([_sent(run), _ended(run, "succeeded")])
    run.refresh_from_db()
    assert run.state == "cancelled"
    assert events == []
    assert Iteration.objects.filter(task_id="t", state="succeeded").count() == 0
    assert Attempt.objects.get(iteration=run).outcome == "succeeded"  # what the worker did


def test_every_try_of_a_run_in_one_batch_is_played_in_order() -> None:
    """A lost try, its retry and the retry's success can share a batch."""
    run, other = _task()
    events = run_records.record_runs(
        [
            _sent(run),
            _sent(other),
            _ended(run, "lost", "pending"),
            _sent(run, 2),
            _ended(run, "succeeded", number=2),
        ]
    )
    run.refresh_from_db()
    other.refresh_from_db()
    assert (run.state, run.result) == ("succeeded", "2832")
    assert other.state == "running"
    assert list(run.attempts.values_list("number", "outcome")) == [(1, "lost"), (2, "succeeded")]
    assert [(e["index"], e["state"]) for e in events] == [
        (0, "running"),
        (1, "running"),
        (0, "pending"),
        (0, "running"),
        (0, "succeeded"),
    ]


def test_the_task_counts_its_successes_once_across_batches() -> None:
    first, second = _task()
    run_records.record_runs([_sent(first), _sent(second)])
    run_records.record_runs([_ended(first, "succeeded")])
    run_records.record_runs([_ended(first, "succeeded"), _ended(second, "failed")])
    events = run_records.record_runs([_ended(second, "succeeded")])  # settled already
    assert events == []
    assert Task.objects.get(pk="t").succeeded_count == 1
    assert Iteration.objects.get(pk=second.pk).state == "failed"
