"""Schedules through the real scheduler and journal (SQLite, an in-process
fake worker, no processes): a schedule's firings come one per fire time,
each a task `<name>@<fire time>` whose run goes out with its fire time as
its start (sent ahead like any run), the next firing made as the previous
is handed out; under `skip`, a firing due while the previous still runs
ends cancelled with the reason and two never run at once."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from cluster_app.worker_link import CapnpWorkerLink
from tasks_app import fire_times, firing, notify, run_records, schedule_services
from tasks_app.journal import Journal
from tasks_app.models import Iteration, Module, Schedule, Task
from tasks_app.pool import WorkerPool
from tasks_app.scheduler import Scheduler
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db(transaction=True)
MODULE = "c" * 64


class SlowWorker:
    """Each run takes `seconds`; notes what it was sent and what overlapped."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.jobs: list[dict[str, Any]] = []
        self.finished: list[str] = []  # task ids of the runs it ended
        self.finished_at_stop: set[str] = set()  # those ended before the scheduler stopped
        self.running = 0
        self.most = 0

    async def execute(self, job: dict[str, Any]) -> Any:
        return SimpleNamespace(outcome=await self._run(job))

    async def executeMany(self, jobs: list[dict[str, Any]]) -> Any:
        return SimpleNamespace(outcomes=[await self._run(job) for job in jobs])

    async def _run(self, job: dict[str, Any]) -> Any:
        self.jobs.append(job)
        self.running += 1
        self.most = max(self.most, self.running)
        started = int(timezone.now().timestamp() * 1e9)
        await asyncio.sleep(self.seconds)
        self.running -= 1
        self.finished.append(job["taskId"])
        return SimpleNamespace(
            state="succeeded",
            result="ok",
            error="",
            exitCode=0,
            hasExitCode=False,
            startedAtNs=started,
            finishedAtNs=int(timezone.now().timestamp() * 1e9),
            resultBytes=b"",
            resultTruncated=False,
            stderr="",
        )

    async def cancel(self, taskId: str, iteration: int) -> Any:
        return SimpleNamespace(found=False)


def _run_for(worker: SlowWorker, seconds: float, concurrency: int = 4) -> None:
    async def main() -> None:
        journal = Journal(run_records.record_runs)
        journal_task = asyncio.create_task(journal.run())
        pool = WorkerPool()
        pool.add(
            peer_id="w",
            address="a",
            concurrency=concurrency,
            link=CapnpWorkerLink(worker, max_result_bytes=65536),
            connection=1,
        )
        scheduler = Scheduler(pool, journal, max_queue=0)
        notify.serve_locally(asyncio.get_running_loop(), scheduler.add, scheduler.cancel_task)
        try:
            await scheduler.load()
            loop = asyncio.create_task(scheduler.run())
            await asyncio.sleep(seconds)
            # Stop once every run the worker ended is recorded (on a loaded
            # machine an outcome can still be on its way to the scheduler).
            for _ in range(500):
                if set(worker.finished) <= await sync_to_async(_ended)():
                    break
                await asyncio.sleep(0.01)
            worker.finished_at_stop = set(worker.finished)
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await asyncio.sleep(0.2)  # the journal writes what ended
        finally:
            notify.stop_serving_locally()
            journal_task.cancel()
            await asyncio.gather(journal_task, return_exceptions=True)

    asyncio.run(main())


def _ended() -> set[str]:
    ended = Iteration.objects.exclude(state="pending").values_list("task_id", flat=True)
    return set(ended)


def _schedule(**fields: Any) -> Schedule:
    Module.objects.get_or_create(
        sha256=MODULE, defaults={"wasm": HASH_WASM, "size": len(HASH_WASM), "kind": "run"}
    )
    return schedule_services.create_schedule(module_id=MODULE, template={}, **fields)


def test_each_fire_time_is_one_task_whose_run_starts_at_it() -> None:
    schedule = _schedule(name="tick", every=0.3)
    worker = SlowWorker(0.01)
    _run_for(worker, 1.6)
    ids = [job["taskId"] for job in worker.jobs]
    assert len(ids) >= 3 and len(set(ids)) == len(ids)
    times = []
    for job in worker.jobs:
        parsed = fire_times.parse_firing_id(job["taskId"])
        assert parsed is not None and parsed[0] == "tick"
        times.append(parsed[1])
        # Sent ahead with its fire time as the moment it starts.
        assert job["notBeforeNs"] == int(parsed[1].timestamp() * 1e9)
    assert times == sorted(times)
    gaps = {round((b - a).total_seconds(), 6) for a, b in itertools.pairwise(times)}
    assert gaps == {0.3}
    # Every run the worker ended is recorded succeeded, and only those (a run
    # sent as the scheduler stopped may be left pending: it runs again).
    done = Iteration.objects.filter(task__schedule=schedule, state="succeeded")
    recorded = set(done.values_list("task_id", flat=True))
    assert worker.finished_at_stop <= recorded <= set(worker.finished)
    assert len(worker.finished_at_stop) >= len(ids) - 1
    # The next one is made: after every firing that ended, and waiting
    # unless it was on its way when the scheduler stopped (sent ahead, its
    # successor not made yet: on a loaded machine the stop can fall there).
    head = Schedule.objects.get().next_fire_at
    ended = [fire_times.parse_firing_id(t)[1] for t in worker.finished_at_stop]  # type: ignore[index]
    assert head is not None and head > max(ended) and head >= max(times)
    if head > max(times):
        head_run = Iteration.objects.get(task_id=fire_times.firing_id("tick", head))
        assert head_run.state == "pending"


def test_skip_never_runs_two_firings_at_once() -> None:
    schedule = _schedule(name="slow", every=0.2, overlap="skip")
    worker = SlowWorker(0.5)
    _run_for(worker, 2.0)
    assert worker.most == 1
    states = dict(Iteration.objects.filter(task__schedule=schedule).values_list("task_id", "state"))
    skipped = Iteration.objects.filter(task__schedule=schedule, state="cancelled")
    assert skipped.count() >= 3
    assert all("previous firing was still running" in r.error for r in skipped)
    assert {job["taskId"] for job in worker.jobs} <= set(states)
    assert not set(skipped.values_list("task_id", flat=True)) & {j["taskId"] for j in worker.jobs}


def test_allow_runs_them_side_by_side() -> None:
    _schedule(name="wide", every=0.2, overlap="allow")
    worker = SlowWorker(0.5)
    _run_for(worker, 1.5)
    assert worker.most >= 2


def test_a_cron_with_seconds_fires_each_second() -> None:
    start = datetime.now(UTC)
    _schedule(name="sec", cron="* * * * * *")
    worker = SlowWorker(0.01)
    _run_for(worker, 2.5)
    times = [fire_times.parse_firing_id(j["taskId"]) for j in worker.jobs]
    assert len(times) >= 2
    assert all(t is not None and t[1].microsecond == 0 and t[1] > start for t in times)


def test_buffer_one_runs_the_one_that_waited_and_skips_the_rest() -> None:
    schedule = _schedule(name="buf", every=0.2, overlap="buffer_one")
    worker = SlowWorker(0.5)
    _run_for(worker, 2.2)
    assert worker.most == 1
    ran = [job["taskId"] for job in worker.jobs]
    times = [fire_times.parse_firing_id(tid) for tid in ran]
    # Back to back: each ran after the one before it ended, in fire-time order.
    assert len(ran) >= 3 and times == sorted(times, key=lambda t: t[1] if t else 0)
    skipped = Iteration.objects.filter(task__schedule=schedule, state="cancelled")
    assert skipped.exists()
    assert all("one waits already" in r.error for r in skipped)


def _head_passed(name: str, every: float, ago: float) -> tuple[Schedule, datetime]:
    """A schedule whose chain's head is the fire time `ago` seconds back
    with its run still pending, as a gateway killed then leaves it."""
    from datetime import timedelta

    past = timezone.now() - timedelta(seconds=ago)
    schedule = _schedule(name=name, every=every, start_at=past - timedelta(hours=1))
    Task.objects.filter(schedule=schedule).delete()
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=past)
    firing.make_firing(Schedule.objects.get(pk=schedule.pk), past)
    return Schedule.objects.get(pk=schedule.pk), past


def test_a_restart_leaves_a_head_just_passed_to_the_chain_and_it_goes_on() -> None:
    """After a short restart most heads passed once and their runs wait:
    the catch-up writes nothing for them (no transaction each before the
    gateway serves); the late head runs once and the chain goes on from it,
    one firing per fire time. A schedule that missed more than its head is
    caught up as before."""
    left, head = _head_passed("left", every=1.0, ago=0.3)
    caught, _ = _head_passed("caught", every=0.2, ago=0.5)
    assert firing.catch_up_all() >= 1  # only `caught`'s missed fire times
    assert Schedule.objects.get(pk=left.pk).next_fire_at == head
    assert Schedule.objects.get(pk=left.pk).catchup_until is None
    assert Schedule.objects.get(pk=caught.pk).catchup_until is not None
    worker = SlowWorker(0.01)
    _run_for(worker, 2.3)
    ran = [fire_times.parse_firing_id(job["taskId"]) for job in worker.jobs]
    mine = [p[1] for p in ran if p is not None and p[0] == "left"]
    assert mine[0] == head and len(mine) >= 2 and len(set(mine)) == len(mine)
    gaps = {round((b - a).total_seconds(), 6) for a, b in itertools.pairwise(mine)}
    assert gaps == {1.0}
    assert Iteration.objects.get(task_id=fire_times.firing_id("left", head)).state == "succeeded"


def test_due_firings_reads_the_schedule_and_its_other_running_firings() -> None:
    """What the gate reads for a due firing (two written-out statements):
    the schedule's state as stored, aware datetimes, and which of its other
    firings the rows say are running (not the firing itself)."""
    from datetime import timedelta

    schedule = _schedule(name="read", every=1.0)
    head = schedule.next_fire_at
    assert head is not None
    other = firing.make_firing(schedule, head + timedelta(seconds=5))
    assert other is not None
    Iteration.objects.filter(pk=other.iteration_id).update(state="running")
    head_id = fire_times.firing_id("read", head)
    found = firing.due_firings([head_id, other.task_id, "not-a-firing"])
    assert set(found) == {head_id, other.task_id}
    due = found[head_id]
    assert due.name == "read" and due.schedule_id == schedule.pk and not due.paused
    assert due.head == head and due.head.tzinfo is not None and due.regular
    assert due.overlap == fire_times.Overlap.SKIP and due.catchup_until is None
    assert due.running == frozenset({other.task_id})
    assert found[other.task_id].running == frozenset()
    assert firing.due_firings([]) == {}
