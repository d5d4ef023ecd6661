"""The scheduler with labelled workers (in-process fakes; the RPC is tested
end to end in tests/e2e/test_routing.py): each worker gets only the runs
its queues and labels accept, a run no worker accepts waits until one
joins while the others go on, and with one slot, due runs go by priority."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from cluster_app.worker_link import CapnpWorkerLink
from tasks_app.job_inputs import SEED_FORM
from tasks_app.journal import Journal, Record, RunEnded
from tasks_app.policy import DEFAULT_ROUTE, Route, route_of
from tasks_app.pool import WorkerPool
from tasks_app.scheduler import Scheduler
from tasks_app.selectors import DueRun
from tests.unit.test_scheduler import _outcome

GPU = route_of("ml", {"gpu": "a100"})


@dataclass
class NamedWorker:
    """A fake worker recording which runs it was sent, each taking `seconds`."""

    seconds: float = 0.001
    ran: list[str] = field(default_factory=list)

    async def execute(self, job: dict[str, Any]) -> Any:
        self.ran.append(job["taskId"])
        await asyncio.sleep(self.seconds)
        return type("R", (), {"outcome": _outcome(job)})()

    async def executeMany(self, jobs: list[dict[str, Any]]) -> Any:
        self.ran.extend(job["taskId"] for job in jobs)
        await asyncio.sleep(self.seconds * len(jobs))
        return type("R", (), {"outcomes": [_outcome(job) for job in jobs]})()

    async def cancel(self, taskId: str, iteration: int) -> Any:
        return type("R", (), {"found": False})()


def _runs(
    task_id: str, n: int, first_id: int, *, route: Route = DEFAULT_ROUTE, priority: int = 0
) -> list[DueRun]:
    due = timezone.now() - timedelta(seconds=1)
    return [
        DueRun(
            iteration_id=first_id + k,
            task_id=task_id,
            index=k,
            due_at=due + timedelta(microseconds=k),
            module_hash="ab" * 32,
            input=1,
            difficulty=1,
            duration=5,
            inputs=SEED_FORM,
            priority=priority,
            route=route,
        )
        for k in range(n)
    ]


def _add(pool: WorkerPool, name: str, worker: NamedWorker, **routing: Any) -> None:
    pool.add(
        peer_id=name,
        address=name,
        concurrency=1,
        link=CapnpWorkerLink(worker, max_result_bytes=65536),
        connection=hash(name),
        **routing,
    )


def _scheduler(**options: Any) -> tuple[Scheduler, WorkerPool, list[Record]]:
    records: list[Record] = []
    journal = Journal(lambda batch: records.extend(batch) or [])
    journal.append = records.append  # type: ignore[method-assign]  # no database here
    pool = WorkerPool()
    return Scheduler(pool, journal, **options), pool, records


def _ended(records: list[Record]) -> list[str]:
    return [r.task_id for r in records if isinstance(r, RunEnded)]


async def _until(check: Any, timeout: float = 10) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(wait(), timeout)


def test_each_worker_gets_only_the_runs_it_accepts() -> None:
    plain, gpu = NamedWorker(), NamedWorker()

    async def main() -> list[Record]:
        scheduler, pool, records = _scheduler()
        _add(pool, "plain", plain)
        _add(pool, "gpu", gpu, queues=frozenset({"ml"}), labels={"gpu": "a100", "zone": "eu"})
        loop = asyncio.create_task(scheduler.run())
        scheduler.add(_runs("cpu-task", 10, 1) + _runs("gpu-task", 10, 100, route=GPU))
        await _until(lambda: len(_ended(records)) == 20)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        return records

    asyncio.run(main())
    assert plain.ran == ["cpu-task"] * 10
    assert gpu.ran == ["gpu-task"] * 10


def test_a_run_no_worker_accepts_waits_for_one_and_the_others_go_on() -> None:
    plain, gpu = NamedWorker(), NamedWorker()

    async def main() -> tuple[list[str], int]:
        scheduler, pool, records = _scheduler()
        _add(pool, "plain", plain)
        loop = asyncio.create_task(scheduler.run())
        # The gpu runs are due first and first in the queue: they must not
        # hold up the runs behind them.
        scheduler.add(_runs("gpu-task", 3, 100, route=GPU, priority=50))
        scheduler.add(_runs("cpu-task", 5, 1))
        await _until(lambda: len(_ended(records)) == 5)
        await asyncio.sleep(0.05)
        before = list(_ended(records)), scheduler.queue_depth()
        _add(pool, "gpu", gpu, queues=frozenset({"ml"}), labels={"gpu": "a100"})
        await _until(lambda: len(_ended(records)) == 8)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        return before

    ended, waiting = asyncio.run(main())
    assert ended == ["cpu-task"] * 5 and waiting == 3  # the gpu runs waited, held
    assert gpu.ran == ["gpu-task"] * 3 and plain.ran == ["cpu-task"] * 5


def test_with_one_slot_due_runs_go_by_priority_then_due_order() -> None:
    worker = NamedWorker(seconds=0.005)

    async def main() -> None:
        scheduler, pool, records = _scheduler(max_queue=0, max_batch=1)
        loop = asyncio.create_task(scheduler.run())
        # All due before the worker joins: more runs than slots.
        scheduler.add(_runs("low", 3, 1, priority=-10))
        scheduler.add(_runs("mid", 3, 10))
        scheduler.add(_runs("high", 3, 20, priority=10))
        await asyncio.sleep(0.01)
        _add(pool, "w", worker)
        await _until(lambda: len(_ended(records)) == 9)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(main())
    assert worker.ran == ["high"] * 3 + ["mid"] * 3 + ["low"] * 3


def test_runs_of_a_busy_lane_do_not_hold_up_a_lane_with_a_free_worker() -> None:
    slow, fast = NamedWorker(seconds=0.5), NamedWorker()

    async def main() -> tuple[list[str], list[str]]:
        scheduler, pool, records = _scheduler(max_queue=0, max_batch=1)
        _add(pool, "gpu", slow, queues=frozenset({"ml"}), labels={"gpu": "a100"})
        _add(pool, "plain", fast)
        loop = asyncio.create_task(scheduler.run())
        # Due first and of the highest priority, but its one worker is busy
        # with the first of them for half a second.
        scheduler.add(_runs("gpu-task", 3, 100, route=GPU, priority=50))
        scheduler.add(_runs("cpu-task", 5, 1))
        await _until(lambda: _ended(records).count("cpu-task") == 5)
        early = list(_ended(records))
        await _until(lambda: len(_ended(records)) == 8, timeout=20)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        return early, slow.ran

    early, gpu_ran = asyncio.run(main())
    assert early.count("gpu-task") <= 1  # the cpu runs went while gpu ones waited
    assert gpu_ran == ["gpu-task"] * 3


def test_the_pool_knows_which_routes_it_serves_as_workers_come_and_go() -> None:
    async def main() -> None:
        pool = WorkerPool()
        assert not pool.serves(DEFAULT_ROUTE)
        _add(pool, "plain", NamedWorker())
        assert pool.serves(DEFAULT_ROUTE) and not pool.serves(GPU)
        _add(pool, "gpu", NamedWorker(), queues=frozenset({"ml"}), labels={"gpu": "a100"})
        assert pool.serves(GPU)
        gpu = next(w for w in pool if w.peer_id == "gpu")
        assert pool.try_acquire(route=GPU) is gpu
        assert pool.try_acquire(route=GPU) is None  # its one slot is taken
        assert pool.try_acquire(route=route_of("ml", {"gpu": "t4"})) is None
        pool.release(gpu)
        await pool.drain(gpu.connection)  # leaving: no new runs
        assert not pool.serves(GPU)
        pool.remove(gpu)
        assert not pool.serves(GPU) and pool.serves(DEFAULT_ROUTE)

    asyncio.run(main())
