"""The sweep (tasks_app/queue_feed.py) queues the waiting runs this
scheduler never heard of, and only those: runs it holds, runs it sent
lately and runs of tasks it knows are cancelled are left alone, and no run
is queued twice however often it sweeps."""

from __future__ import annotations

import asyncio
import time

import pytest

from tasks_app import selectors
from tasks_app.journal import Journal
from tasks_app.pool import WorkerPool
from tasks_app.scheduler import Scheduler
from tests.api.forms import stored_task

pytestmark = pytest.mark.django_db(transaction=True)


def _scheduler() -> Scheduler:
    return Scheduler(WorkerPool(), Journal(lambda batch: []), window=100)


def test_the_sweep_queues_only_runs_nobody_announced() -> None:
    announced = stored_task("announced", repeats=5)
    stored_task("lost", repeats=4)
    sent = stored_task("sent", repeats=2)
    stored_task("cancelled", repeats=3)
    scheduler = _scheduler()
    scheduler.add(selectors.due_runs(task_id="announced"))
    scheduler._dispatched.update({it.pk: time.monotonic() for it in sent})
    scheduler._cancelled.add("cancelled")

    async def main() -> tuple[int, int]:
        first = await scheduler.sweep(horizon=10)
        again = await scheduler.sweep(horizon=10)
        return first, again

    first, again = asyncio.run(main())
    assert (first, again) == (4, 0)
    queued = {run.iteration_id for run in scheduler._queue}
    lost = {run.iteration_id for run in selectors.due_runs(task_id="lost")}
    assert queued == {it.pk for it in announced} | lost
    assert scheduler.queue_depth() == 9  # nothing queued twice


def test_a_swept_run_is_read_whole() -> None:
    """What the sweep queues is the run as due_runs reads it: the scheduler
    can send it (module, inputs, attempts) without another read."""
    stored_task("lost", repeats=2)
    scheduler = _scheduler()
    asyncio.run(scheduler.sweep(horizon=10))
    expected = {run.iteration_id: run for run in selectors.due_runs(task_id="lost")}
    got = {run.iteration_id: run for run in scheduler._queue}
    assert got.keys() == expected.keys()
    for key, run in got.items():
        assert (run.module_hash, run.input, run.difficulty, run.attempts) == (
            expected[key].module_hash,
            expected[key].input,
            expected[key].difficulty,
            expected[key].attempts,
        )
