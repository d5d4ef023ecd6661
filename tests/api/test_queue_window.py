"""The scheduler holds about its window of runs in memory (twice it at
most, between trims), earliest due first; the rest wait in the database
and come in as the queue drains, so memory and start-up time are bounded
by the window, not by the backlog.
Every run is still dispatched, once."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from cluster_app.worker_link import CapnpWorkerLink
from tasks_app import run_records
from tasks_app.journal import Journal
from tasks_app.models import Iteration
from tasks_app.pool import WorkerPool
from tasks_app.scheduler import Scheduler
from tests.api.forms import stored_task

pytestmark = pytest.mark.django_db(transaction=True)


class CountingWorker:
    """Succeeds at once; notes the scheduler's queue depth at each call."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.depths: list[int] = []
        self.ran: Counter[int] = Counter()

    async def execute(self, job: dict[str, Any]) -> Any:
        assert self.scheduler is not None
        self.depths.append(self.scheduler.queue_depth())
        self.ran[job["iteration"]] += 1
        now = int(timezone.now().timestamp() * 1e9)
        return SimpleNamespace(
            outcome=SimpleNamespace(
                state="succeeded",
                result="1",
                error="",
                exitCode=0,
                hasExitCode=False,
                startedAtNs=now,
                finishedAtNs=now + 1000,
                resultBytes=b"",
                resultTruncated=False,
                stderr="",
            )
        )


def _task(task_id: str, repeats: int) -> None:
    stored_task(task_id, repeats=repeats, difficulty=1)


def test_a_backlog_larger_than_the_window_runs_whole_through_a_bounded_queue() -> None:
    _task("backlog", 120)
    worker = CountingWorker()

    async def main() -> int:
        journal = Journal(run_records.record_runs)
        journal_task = asyncio.create_task(journal.run())
        pool = WorkerPool()
        pool.add(
            peer_id="w",
            address="a",
            concurrency=1,
            link=CapnpWorkerLink(worker, max_result_bytes=65536),
            connection=1,
        )
        scheduler = Scheduler(pool, journal, window=10, max_queue=0)
        worker.scheduler = scheduler
        loaded = await scheduler.load()  # what a gateway start reads
        loop = asyncio.create_task(scheduler.run())
        for _ in range(600):
            if sum(worker.ran.values()) >= 120:
                break
            await asyncio.sleep(0.05)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        journal_task.cancel()
        await asyncio.gather(journal_task, return_exceptions=True)
        return loaded

    loaded = asyncio.run(main())
    assert loaded == 10
    assert max(worker.depths) <= 2 * 10  # twice the window at most, between trims
    assert sorted(worker.ran) == list(range(120)) and set(worker.ran.values()) == {1}
    states = Counter(Iteration.objects.filter(task_id="backlog").values_list("state", flat=True))
    assert states == {"succeeded": 120}


def test_announced_runs_beyond_the_window_wait_in_the_database() -> None:
    _task("announced", 30)

    async def main() -> tuple[int, int]:
        scheduler = Scheduler(WorkerPool(), Journal(lambda batch: []), window=8)
        from tasks_app import selectors

        runs = await asyncio.to_thread(selectors.due_runs, task_id="announced")
        scheduler.add(runs)
        held = scheduler.queue_depth()
        # The queue drains; the database gives the next earliest runs.
        far = timezone.now() + timedelta(days=1)
        while scheduler._queue.pop_due(far) is not None:
            pass
        return held, await scheduler.refill()

    held, refilled = asyncio.run(main())
    assert held == 8
    assert 8 <= refilled <= 2 * 8


def test_a_run_due_now_gets_in_ahead_of_a_full_window_of_later_runs() -> None:
    _task("later", 40)  # due now, but stands for a far-off backlog below
    _task("now", 1)

    async def main() -> list[str]:
        scheduler = Scheduler(WorkerPool(), Journal(lambda batch: []), window=8)
        from datetime import timedelta

        from tasks_app import selectors

        backlog = await asyncio.to_thread(selectors.due_runs, task_id="later")
        far = [replace(run, due_at=run.due_at + timedelta(hours=1)) for run in backlog]
        scheduler.add(far)
        scheduler.add(await asyncio.to_thread(selectors.due_runs, task_id="now"))
        return [run.task_id for run in sorted(scheduler._queue, key=lambda run: run.due_at)]

    queued = asyncio.run(main())
    assert queued[0] == "now"
    assert len(queued) <= 2 * 8
