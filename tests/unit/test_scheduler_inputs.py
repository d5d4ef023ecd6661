"""The scheduler gives each job its task's args, stdin and env: held once
per task, read from the database once per task when a run comes without
them, and never more than a bound of them in one call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from tasks_app.job_inputs import JobInputs, TaskInputs
from tests.unit.test_scheduler import FakeWorker, _runs, _settle, _start

GIVEN = JobInputs(args=("a", "b c"), stdin=b"\x00in\xff", env=(("K", "v"), ("EMPTY", "")))


@dataclass
class RecordingWorker(FakeWorker):
    jobs: list[dict[str, Any]] = field(default_factory=list)

    async def execute(self, job: dict[str, Any]) -> Any:
        self.jobs.append(job)
        return await super().execute(job)

    async def executeMany(self, jobs: list[dict[str, Any]]) -> Any:
        self.jobs += jobs
        return await super().executeMany(jobs)


@dataclass
class FakeTasks:
    """The database's task inputs, counting the tasks asked for."""

    inputs: dict[str, JobInputs]
    asked: list[str] = field(default_factory=list)
    fail: int = 0  # reads to refuse first

    def read(self, task_ids: list[str]) -> dict[str, JobInputs]:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database is locked")
        self.asked += task_ids
        return {t: self.inputs[t] for t in task_ids if t in self.inputs}


def _run_all(worker: RecordingWorker, tasks: FakeTasks, *batches: list[Any]) -> None:
    async def main() -> None:
        scheduler, _, records = _start(worker, inputs=TaskInputs(tasks.read))
        loop = asyncio.create_task(scheduler.run())
        total = 0
        for runs in batches:
            scheduler.add(runs)
            total += len(runs)
            await _settle(records, total)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(main())


def test_a_run_announced_with_its_inputs_carries_them_to_the_worker_unread() -> None:
    worker, tasks = RecordingWorker(), FakeTasks({})
    _run_all(worker, tasks, [replace(run, inputs=GIVEN) for run in _runs("t", 1)])
    [job] = worker.jobs
    assert (job["hasArgs"], job["args"], job["stdin"]) == (True, ["a", "b c"], b"\x00in\xff")
    assert job["env"] == [{"name": "K", "value": "v"}, {"name": "EMPTY", "value": ""}]
    assert tasks.asked == []


def test_a_seed_form_job_leaves_the_wire_defaults() -> None:
    worker = RecordingWorker()
    _run_all(worker, FakeTasks({}), _runs("seed", 1))  # _runs: SEED_FORM
    assert not {"hasArgs", "args", "stdin", "env"} & set(worker.jobs[0])


def test_runs_announced_without_inputs_have_them_read_once_per_task() -> None:
    worker, tasks = RecordingWorker(), FakeTasks({"t": GIVEN})
    runs = [replace(run, inputs=None) for run in _runs("t", 1)]
    more = [replace(run, inputs=None) for run in _runs("t", 6, first_id=10)]
    _run_all(worker, tasks, runs, more)
    assert tasks.asked == ["t"]
    assert len(worker.jobs) == 7
    assert all(job["stdin"] == GIVEN.stdin and job["args"] == ["a", "b c"] for job in worker.jobs)


def test_a_failed_read_sends_nothing_and_the_runs_go_later() -> None:
    worker, tasks = RecordingWorker(), FakeTasks({"t": GIVEN}, fail=2)
    _run_all(worker, tasks, [replace(run, inputs=None) for run in _runs("t", 2)])
    assert len(worker.jobs) == 2 and tasks.asked == ["t"]
    assert all(job["stdin"] == GIVEN.stdin for job in worker.jobs)


def test_runs_of_a_task_gone_are_not_sent() -> None:
    worker, tasks = RecordingWorker(), FakeTasks({})

    async def main() -> None:
        scheduler, _, records = _start(worker, inputs=TaskInputs(tasks.read))
        loop = asyncio.create_task(scheduler.run())
        scheduler.add([replace(run, inputs=None) for run in _runs("gone", 3)])
        scheduler.add(_runs("here", 1, first_id=50))
        await _settle(records, 1)
        await asyncio.sleep(0.05)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(main())
    assert [job["taskId"] for job in worker.jobs] == ["here"]


def test_big_inputs_do_not_travel_several_to_a_call() -> None:
    big = JobInputs(stdin=b"x" * (3 << 20))
    worker = RecordingWorker()
    learn = [replace(run, inputs=big) for run in _runs("big", 1)]
    runs = [replace(run, inputs=big) for run in _runs("big", 8, first_id=100)]
    _run_all(worker, FakeTasks({}), learn, runs)
    assert len(worker.jobs) == 9
    assert max(worker.calls) == 1  # seed-form runs of this speed go 4 to a call


def test_small_inputs_still_travel_several_to_a_call() -> None:
    worker = RecordingWorker()
    learn = [replace(run, inputs=GIVEN) for run in _runs("small", 1)]
    runs = [replace(run, inputs=GIVEN) for run in _runs("small", 20, first_id=100)]
    _run_all(worker, FakeTasks({}), learn, runs)
    assert max(worker.calls) == 4


def test_inputs_are_read_on_the_loop_where_they_can_be_else_on_a_thread() -> None:
    here, thread = FakeTasks({"t": GIVEN}), FakeTasks({"t": GIVEN})
    inputs = TaskInputs(thread.read, read_here=here.read)
    assert asyncio.run(inputs.of(["t"])) == {"t": GIVEN}
    assert (here.asked, thread.asked) == (["t"], [])
    busy = FakeTasks({"t": GIVEN}, fail=1)
    inputs = TaskInputs(thread.read, read_here=busy.read)
    assert asyncio.run(inputs.of(["t", "gone"])) == {"t": GIVEN}
    assert thread.asked == ["gone", "t"]
    assert asyncio.run(inputs.of(["t"])) == {"t": GIVEN}  # held now: not read again
    assert thread.asked == ["gone", "t"]
