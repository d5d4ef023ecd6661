"""An attempt the database still says is running, long past its run's time
limit, that the scheduler is not waiting for, is reclaimed: lost, and its
run tried again (or cancelled, or failed once its attempts are used up).
Before this, such a run stayed `running` for good."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from tasks_app import run_records, services
from tasks_app.journal import Journal, Record, RunEnded
from tasks_app.models import Attempt, Iteration, Task
from tasks_app.pool import WorkerPool
from tasks_app.scheduler import Scheduler
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db(transaction=True)


def _running_for(task_id: str, seconds: float, number: int = 1) -> Iteration:
    """The task's run 0 sent `seconds` ago and never answered."""
    run = Iteration.objects.get(task_id=task_id, index=0)
    run.state = Iteration.State.RUNNING
    run.save(update_fields=["state"])
    Attempt.objects.create(
        iteration=run,
        number=number,
        worker_peer_id="12D3KooWSilent",
        sent_at=timezone.now() - timedelta(seconds=seconds),
    )
    return run


def _task(task_id: str, duration: float = 1) -> Task:
    task, _ = services.create_task(
        task_id=task_id,
        description="",
        wasm=HASH_WASM,
        duration=duration,
        start=0,
        delay=0,
        repeats=1,
        input=0,
        difficulty=1,
    )
    return task


def _reclaim(**options: object) -> tuple[Scheduler, list[Record]]:
    records: list[Record] = []
    journal = Journal(lambda batch: [])
    journal.append = records.append  # type: ignore[method-assign]
    scheduler = Scheduler(WorkerPool(), journal, **options)  # type: ignore[arg-type]
    asyncio.run(scheduler.reclaim(grace=5))
    return scheduler, records


def test_a_silent_attempt_past_its_limit_is_lost_and_its_run_queued_again() -> None:
    _task("silent", duration=1)
    _running_for("silent", seconds=30)
    scheduler, records = _reclaim()
    [ended] = records
    assert isinstance(ended, RunEnded)
    assert (ended.outcome, ended.run_state, ended.number) == ("lost", "pending", 1)
    assert "past its time limit" in ended.error
    assert scheduler.queue_depth() == 1
    run_records.record_runs(records)
    assert Iteration.objects.get(task_id="silent").state == "pending"
    assert Attempt.objects.get(iteration__task_id="silent").outcome == "lost"


def test_an_attempt_within_its_limit_is_left_alone() -> None:
    _task("slow", duration=600)
    _running_for("slow", seconds=30)
    scheduler, records = _reclaim()
    assert records == [] and scheduler.queue_depth() == 0


def test_a_cancelled_tasks_stale_run_ends_cancelled() -> None:
    _task("gone", duration=1)
    run = _running_for("gone", seconds=30)
    services.cancel_task(task_id="gone")  # runs that are running stay so
    scheduler, records = _reclaim()
    [ended] = records
    assert isinstance(ended, RunEnded) and ended.run_state == "cancelled"
    assert scheduler.queue_depth() == 0
    run_records.record_runs(records)
    run.refresh_from_db()
    assert run.state == "cancelled"


def test_the_last_attempt_fails_the_run() -> None:
    _task("spent", duration=1)
    _running_for("spent", seconds=30, number=3)
    _, records = _reclaim(max_attempts=3)
    [ended] = records
    assert isinstance(ended, RunEnded) and ended.run_state == "failed"
