"""The scheduler against an in-process fake worker (the RPC is tested end to
end elsewhere): short runs travel several to a call once they are known to
be short, every place taken on a worker is given back, and runs of a task
cancelled meanwhile are not sent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.utils import timezone

from cluster_app.worker_link import CapnpWorkerLink
from tasks_app.job_inputs import SEED_FORM
from tasks_app.journal import Journal, Record, RunEnded
from tasks_app.pool import WorkerPool
from tasks_app.scheduler import Scheduler
from tasks_app.selectors import DueRun


@dataclass
class FakeWorker:
    """Answers `execute` and `executeMany` like a worker whose runs take 1 ms."""

    calls: list[int] = field(default_factory=list)  # jobs per call

    async def execute(self, job: dict[str, Any]) -> Any:
        self.calls.append(1)
        return SimpleNamespace(outcome=_outcome(job))

    cancels: list[tuple[str, int]] = field(default_factory=list)

    async def cancel(self, taskId: str, iteration: int) -> Any:
        self.cancels.append((taskId, iteration))
        return SimpleNamespace(found=False)

    async def executeMany(self, jobs: list[dict[str, Any]]) -> Any:
        self.calls.append(len(jobs))
        await asyncio.sleep(0.001 * len(jobs))
        return SimpleNamespace(outcomes=[_outcome(job) for job in jobs])


def _outcome(job: dict[str, Any]) -> Any:
    now_ns = int(timezone.now().timestamp() * 1e9)
    return SimpleNamespace(
        state="succeeded",
        result=str(job["input"] + job["difficulty"]),
        error="",
        exitCode=0,
        hasExitCode=False,
        startedAtNs=now_ns,
        finishedAtNs=now_ns + 1_000_000,
        resultBytes=b"",
        resultTruncated=False,
        stderr="",
    )


def _runs(task_id: str, n: int, first_id: int = 1) -> list[DueRun]:
    due = timezone.now() - timedelta(seconds=1)
    return [
        DueRun(
            iteration_id=first_id + k,
            task_id=task_id,
            index=k,
            due_at=due,
            module_hash="ab" * 32,
            input=7,
            difficulty=1,
            duration=5,
            inputs=SEED_FORM,  # as a submission announces its runs
        )
        for k in range(n)
    ]


async def _settle(records: list[Record], n: int) -> None:
    async def wait() -> None:
        while sum(isinstance(r, RunEnded) for r in records) < n:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(wait(), 10)


def _start(worker: FakeWorker, **options: Any) -> tuple[Scheduler, WorkerPool, list[Record]]:
    records: list[Record] = []
    journal = Journal(lambda batch: records.extend(batch) or [])
    journal.append = records.append  # type: ignore[method-assign]  # no database here
    pool = WorkerPool()
    pool.add(
        peer_id="w",
        address="a",
        concurrency=1,
        link=CapnpWorkerLink(worker, max_result_bytes=65536),
        connection=1,
    )
    options = {"max_queue": 8, "max_batch": 4, **options}
    return Scheduler(pool, journal, **options), pool, records


def test_known_short_runs_travel_several_to_a_call_and_free_their_places() -> None:
    worker = FakeWorker()

    async def main() -> WorkerPool:
        scheduler, pool, records = _start(worker)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("learn", 1))  # unknown: alone, on a free slot
        await _settle(records, 1)
        scheduler.add(_runs("short", 20, first_id=100))
        await _settle(records, 21)
        loop.cancel()
        return pool

    pool = asyncio.run(main())
    assert worker.calls[0] == 1
    assert sum(worker.calls) == 21
    assert max(worker.calls) == 4 and len(worker.calls) < 21
    assert [w.in_flight for w in pool] == [0]


def test_runs_of_a_cancelled_task_are_not_sent_and_their_places_come_back() -> None:
    worker = FakeWorker()

    async def main() -> tuple[WorkerPool, list[Record]]:
        scheduler, pool, records = _start(worker)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("learn", 1))
        await _settle(records, 1)
        scheduler.add(_runs("gone", 6, first_id=200))
        scheduler.add(_runs("kept", 3, first_id=300))
        await asyncio.sleep(0)  # the loop takes them all into calls not yet made
        assert not scheduler.queue_depth()
        scheduler.cancel_task("gone")
        await _settle(records, 4)
        await asyncio.sleep(0.05)
        loop.cancel()
        return pool, records

    pool, records = asyncio.run(main())
    assert {r.task_id for r in records} == {"learn", "kept"}
    assert [w.in_flight for w in pool] == [0]


class SilentWorker(FakeWorker):
    """Takes a call and never answers (a half-open connection)."""

    async def execute(self, job: dict[str, Any]) -> Any:
        self.calls.append(1)
        await asyncio.Event().wait()


def test_a_worker_removed_mid_call_loses_the_attempt_and_frees_the_call() -> None:
    worker = SilentWorker()

    async def main() -> tuple[WorkerPool, list[Record]]:
        scheduler, pool, records = _start(worker)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("stuck", 1))
        while not worker.calls:
            await asyncio.sleep(0.001)
        [pooled] = list(pool)
        pool.remove(pooled)  # its pings went unanswered
        await _settle(records, 1)
        loop.cancel()
        return pool, records

    pool, records = asyncio.run(main())
    [ended] = [r for r in records if isinstance(r, RunEnded)]
    assert ended.outcome == "lost" and "left the pool" in ended.error
    assert ended.run_state == "pending"  # to be tried again
    assert len(pool) == 0


def test_a_call_carries_about_batch_time_of_runs() -> None:
    worker = FakeWorker()  # its runs take 1 ms

    async def main() -> None:
        scheduler, _, records = _start(worker, max_queue=64, max_batch=64, batch_time=0.003)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("learn", 1))
        await _settle(records, 1)
        scheduler.add(_runs("ms", 30, first_id=100))
        await _settle(records, 31)
        loop.cancel()

    asyncio.run(main())
    assert sum(worker.calls) == 31
    assert max(worker.calls) == 3  # ~3 ms of 1 ms runs, though 64 would fit


def _later(task_id: str, n: int, first_id: int, seconds: float) -> list[DueRun]:
    return [
        replace(run, due_at=timezone.now() + timedelta(seconds=seconds))
        for run in _runs(task_id, n, first_id)
    ]


def test_a_cancelled_tasks_queued_runs_leave_the_queue_and_never_go_out() -> None:
    worker = FakeWorker()

    async def main() -> tuple[Scheduler, list[Record], int]:
        scheduler, _, records = _start(worker)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_later("soon", 5, first_id=10, seconds=0.2))
        scheduler.add(_later("other", 1, first_id=90, seconds=0.2))
        depth_before = scheduler.queue_depth()
        scheduler.cancel_task("soon")
        await _settle(records, 1)  # "other" ran: "soon" was due at the same time
        await asyncio.sleep(0.1)
        loop.cancel()
        return scheduler, records, depth_before

    scheduler, records, depth_before = asyncio.run(main())
    assert depth_before == 6
    assert scheduler.queue_depth() == 0
    assert {r.task_id for r in records} == {"other"}


def test_runs_announced_after_their_cancel_are_not_queued() -> None:
    async def main() -> Scheduler:
        scheduler, _, _ = _start(FakeWorker())
        scheduler.cancel_task("late")
        scheduler.add(_runs("late", 3))
        return scheduler

    assert asyncio.run(main()).queue_depth() == 0


class SlowWorker(FakeWorker):
    """Runs take a second."""

    async def execute(self, job: dict[str, Any]) -> Any:
        self.calls.append(1)
        await asyncio.sleep(1)
        return SimpleNamespace(outcome=_outcome(job))

    async def executeMany(self, jobs: list[dict[str, Any]]) -> Any:
        self.calls.append(len(jobs))
        await asyncio.sleep(1)
        return SimpleNamespace(outcomes=[_outcome(job) for job in jobs])


def test_cancel_asks_every_worker_holding_a_run_at_once() -> None:
    workers = [SlowWorker(), SlowWorker()]

    async def main() -> None:
        records: list[Record] = []
        journal = Journal(lambda batch: records.extend(batch) or [])
        journal.append = records.append  # type: ignore[method-assign]  # no database here
        pool = WorkerPool()
        for n, worker in enumerate(workers):
            pool.add(
                peer_id=f"w{n}",
                address="a",
                concurrency=2,
                link=CapnpWorkerLink(worker, max_result_bytes=65536),
                connection=n,
            )
        scheduler = Scheduler(pool, journal, max_queue=8, max_batch=1)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("held", 4))
        while sum(len(w.calls) for w in workers) < 4:
            await asyncio.sleep(0.001)
        assert scheduler.cancel_task("held") == 4
        await asyncio.sleep(0.05)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(main())
    asked = sorted(c for w in workers for c in w.cancels)
    assert asked == [("held", 0), ("held", 1), ("held", 2), ("held", 3)]
    assert all(w.cancels for w in workers)


def test_a_cancel_while_the_scheduler_waits_for_a_worker_leaves_it_running() -> None:
    worker = SlowWorker()  # its one slot is busy for a second

    async def main() -> list[Record]:
        scheduler, _, records = _start(worker)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("busy", 1))
        while not worker.calls:
            await asyncio.sleep(0.001)
        scheduler.add(_runs("waiting", 1, first_id=50))
        await asyncio.sleep(0.01)  # the loop now waits for a free slot
        scheduler.cancel_task("waiting")  # and the run it waits for is gone
        await _settle(records, 1)
        scheduler.add(_runs("after", 1, first_id=90))
        await _settle(records, 2)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        return records

    records = asyncio.run(main())
    ended = [r.task_id for r in records if isinstance(r, RunEnded)]
    assert ended == ["busy", "after"]


class LyingWorker(FakeWorker):
    """Answers every run with an outcome no honest worker sends."""

    async def execute(self, job: dict[str, Any]) -> Any:
        self.calls.append(1)
        return SimpleNamespace(outcome=SimpleNamespace(**{**vars(_outcome(job)), "state": "won"}))


def test_malformed_answers_lose_the_attempt_and_get_the_worker_disconnected() -> None:
    evicted: list[tuple[str, str]] = []

    async def main() -> list[Record]:
        records: list[Record] = []
        journal = Journal(lambda batch: records.extend(batch) or [])
        journal.append = records.append  # type: ignore[method-assign]  # no database here
        pool = WorkerPool(on_evict=lambda worker, why: evicted.append((worker.peer_id, why)))
        pool.add(
            peer_id="liar",
            address="a",
            concurrency=1,
            link=CapnpWorkerLink(LyingWorker(), max_result_bytes=65536),
            connection=1,
        )
        scheduler = Scheduler(pool, journal, max_attempts=10, max_faults=3)
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("t", 3))
        await _settle(records, 3)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        return records

    records = asyncio.run(main())
    ended = [r for r in records if isinstance(r, RunEnded)]
    assert [r.outcome for r in ended] == ["lost"] * 3
    assert all("unknown outcome state" in r.error for r in ended)
    assert all(r.run_state == "pending" for r in ended)  # to run elsewhere
    assert evicted == [("liar", "3 malformed answers")]
