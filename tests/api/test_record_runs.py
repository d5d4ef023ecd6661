"""The journal's batch write: runs move only out of pending or running, a
success is counted once, and events carry the task's completions."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from tasks_app import run_records, services
from tasks_app.exceptions import WriteElsewhere
from tasks_app.journal import Record, RunEnded, RunSent
from tasks_app.loop_db import loop_database
from tasks_app.models import Attempt, Iteration, Task, WorkerNode
from tests.api.forms import stored_task

PEER = "12D3KooWRecordRuns"

# transaction=True: the event loop's writer has a connection of its own, which
# sees only what is committed.
pytestmark = pytest.mark.django_db(transaction=True)

Writer = Callable[[list[Record]], list[dict[str, Any]]]


@pytest.fixture(params=["on the journal's thread", "on the event loop"])
def record_runs(request: pytest.FixtureRequest) -> Iterator[Writer]:
    """Both writers of a batch: Django's connection (run_records.record_runs)
    and the event loop's own SQLite connection (run_records.record_runs_here)."""
    if request.param == "on the journal's thread":
        yield run_records.record_runs
        return
    db = loop_database()
    assert db is not None  # the tests run on SQLite
    yield functools.partial(run_records.record_runs_here, db)
    db.close()


def _task(task_id: str = "t", repeats: int = 2) -> list[Iteration]:
    return stored_task(task_id, repeats=repeats)


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


def test_sent_then_ended_in_one_batch_and_events_count_completions(record_runs: Writer) -> None:
    first, second = _task()
    events = record_runs([_sent(first), _sent(second), _ended(first, "succeeded")])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.result) == ("succeeded", "2832")
    assert second.state == "running"
    by_index = {e["index"]: e for e in events}
    assert by_index[0]["state"] == "succeeded" and by_index[0]["completions"] == 1
    assert by_index[1]["state"] == "running"


def test_a_success_is_written_once(record_runs: Writer) -> None:
    run, _ = _task()
    record_runs([_sent(run), _ended(run, "succeeded")])
    again = record_runs([_ended(run, "succeeded")])
    assert again == []
    assert Attempt.objects.filter(iteration=run, outcome="succeeded").count() == 1


def test_lost_attempt_puts_the_run_back_and_the_retry_is_a_new_attempt(record_runs: Writer) -> None:
    run, _ = _task()
    record_runs([_sent(run), _ended(run, "lost", "pending")])
    run.refresh_from_db()
    assert run.state == "pending"
    record_runs([_sent(run, 2), _ended(run, "succeeded", number=2)])
    run.refresh_from_db()
    assert run.state == "succeeded"
    assert list(run.attempts.values_list("number", "outcome")) == [(1, "lost"), (2, "succeeded")]


def test_a_run_its_cancel_caught_on_its_way_counts_as_it_ended(record_runs: Writer) -> None:
    """The scheduler may dispatch a run just before it hears of the cancel,
    which turns the run (its sending not written yet) `cancelled`. The
    worker ran it: a success is the run's, counted once, as the attempt
    says; any other ending leaves it cancelled."""
    run, other = _task()
    services.cancel_task(task_id="t")
    events = record_runs([_sent(run), _ended(run, "succeeded"), _sent(other)])
    record_runs([_ended(other, "failed")])
    run.refresh_from_db()
    other.refresh_from_db()
    assert (run.state, run.result) == ("succeeded", "2832")
    assert [(e["index"], e["state"], e["completions"]) for e in events] == [(0, "succeeded", 1)]
    assert Task.objects.get(pk="t").succeeded_count == 1
    assert Attempt.objects.get(iteration=run).outcome == "succeeded"  # what the worker did
    assert other.state == "cancelled"  # a failure changes nothing
    assert Attempt.objects.get(iteration=other).outcome == "failed"
    again = record_runs([_ended(run, "succeeded")])
    assert again == [] and Task.objects.get(pk="t").succeeded_count == 1


def test_every_try_of_a_run_in_one_batch_is_played_in_order(record_runs: Writer) -> None:
    """A lost try, its retry and the retry's success can share a batch."""
    run, other = _task()
    events = record_runs(
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


def test_the_task_counts_its_successes_once_across_batches(record_runs: Writer) -> None:
    first, second = _task()
    record_runs([_sent(first), _sent(second)])
    record_runs([_ended(first, "succeeded")])
    record_runs([_ended(first, "succeeded"), _ended(second, "failed")])
    events = record_runs([_ended(second, "succeeded")])  # settled already
    assert events == []
    assert Task.objects.get(pk="t").succeeded_count == 1
    assert Iteration.objects.get(pk=second.pk).state == "failed"


def test_the_loop_writer_steps_aside_while_another_connection_writes() -> None:
    [run] = _task(repeats=1)
    db = loop_database()
    assert db is not None
    writer = functools.partial(run_records.record_runs_here, db)
    try:
        with transaction.atomic():  # BEGIN IMMEDIATE: this thread holds the write lock
            Task.objects.filter(pk="t").update(description="held")
            with pytest.raises(WriteElsewhere):
                writer([_sent(run), _ended(run, "succeeded")])
        run.refresh_from_db()
        assert run.state == "pending" and not Attempt.objects.exists()
        writer([_sent(run), _ended(run, "succeeded")])  # free again: written here
        run.refresh_from_db()
        assert run.state == "succeeded"
    finally:
        db.close()


def test_every_field_of_an_attempt_and_its_worker_is_written(record_runs: Writer) -> None:
    """The attempt's row holds what its records said, field by field (the
    INSERT's values are in its columns' order), its worker is the peer's
    row, and the worker's tallies count the attempt."""
    seen_before = timezone.now() - timedelta(hours=1)
    worker = WorkerNode.objects.create(peer_id=PEER, last_seen=seen_before)
    done, failing = _task()
    sent_at = timezone.now() - timedelta(seconds=3)
    started_at, finished_at = sent_at + timedelta(seconds=1), sent_at + timedelta(seconds=2)
    ended = RunEnded(
        iteration_id=done.pk,
        task_id="t",
        index=0,
        number=1,
        worker_peer_id=PEER,
        outcome="failed",
        run_state="failed",
        result="",
        error="trap: unreachable",
        exit_code=3,
        started_at=started_at,
        finished_at=finished_at,
        result_bytes=b"\x00\xffout",
        result_truncated=True,
        stderr="warn: é",
    )
    sent = dataclasses.replace(_sent(done), sent_at=sent_at)
    record_runs([sent, ended, _sent(failing, number=2)])
    row = Attempt.objects.get(iteration=done)
    expected = {
        "iteration_id": done.pk,
        "number": 1,
        "worker_id": worker.pk,
        "worker_peer_id": PEER,
        "sent_at": sent_at,
        "started_at": started_at,
        "finished_at": finished_at,
        "outcome": "failed",
        "result": "",
        "error": "trap: unreachable",
        "exit_code": 3,
        "result_bytes": b"\x00\xffout",
        "result_truncated": True,
        "stderr": "warn: é",
    }
    assert {f: _plain(getattr(row, f)) for f in expected} == expected
    assert {f.attname for f in Attempt._meta.concrete_fields} == {"id", *expected}
    still = Attempt.objects.get(iteration=failing)
    assert (still.number, still.outcome, still.finished_at, still.exit_code) == (
        2,
        "running",
        None,
        None,
    )
    done.refresh_from_db()
    assert (done.state, done.result, done.error, done.finished_at) == (
        "failed",
        "",
        "trap: unreachable",
        finished_at,
    )
    assert (bytes(done.result_bytes), done.result_truncated, done.stderr) == (
        b"\x00\xffout",
        True,
        "warn: é",
    )
    worker.refresh_from_db()
    assert (worker.completed, worker.failed) == (0, 1)
    assert worker.last_seen > seen_before


def _plain(value: Any) -> Any:
    """A BinaryField reads back as memoryview on some backends."""
    return bytes(value) if isinstance(value, memoryview) else value


def test_an_attempt_settled_in_a_later_batch_writes_its_output_on_it_and_its_run(
    record_runs: Writer,
) -> None:
    run, _ = _task()
    record_runs([_sent(run)])
    ended = dataclasses.replace(
        _ended(run, "succeeded"),
        result="",
        result_bytes=b"\xfe\xff",
        result_truncated=True,
        stderr="line\n",
    )
    [event] = record_runs([ended])
    attempt = Attempt.objects.get(iteration=run)
    run.refresh_from_db()
    for row in (attempt, run):
        assert (row.result, bytes(row.result_bytes), row.result_truncated, row.stderr) == (
            "",
            b"\xfe\xff",
            True,
            "line\n",
        )
    assert event["result_base64"] == "/v8=" and event["stderr"] == "line\n"
    assert event["result_truncated"] is False  # not cut for the event (the row says the run was)


def test_a_retried_run_keeps_no_output_of_the_failed_attempt(record_runs: Writer) -> None:
    run, _ = _task()
    failed = dataclasses.replace(
        _ended(run, "failed", run_state="pending"), result="", stderr="err", result_bytes=b"\xff"
    )
    record_runs([_sent(run), failed])
    run.refresh_from_db()
    assert (run.state, run.result_bytes, run.stderr) == ("pending", None, "")
    attempt = Attempt.objects.get(iteration=run)
    assert (bytes(attempt.result_bytes), attempt.stderr) == (b"\xff", "err")
