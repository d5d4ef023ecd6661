"""The run queue's lanes and priorities: due runs go out by priority, then
due order; a lane no worker serves waits without holding up the others;
once higher priorities stop coming, lower ones go (no starvation); the
lane choice passes over lanes whose workers are full; trimming lets go of
runs no worker takes first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tasks_app.policy import DEFAULT_ROUTE, Route, route_of
from tasks_app.run_queue import Lane, RunQueue, first_taken
from tasks_app.selectors import DueRun

T0 = datetime(2026, 12, 3, tzinfo=UTC)
GPU = route_of("ml", {"gpu": "1"})


def _run(run_id: int, seconds: float, *, priority: int = 0, route: Route = DEFAULT_ROUTE) -> DueRun:
    return DueRun(
        iteration_id=run_id,
        task_id=f"t{priority}",
        index=run_id,
        due_at=T0 + timedelta(seconds=seconds),
        module_hash="ab" * 32,
        input=0,
        difficulty=0,
        duration=1,
        priority=priority,
        route=route,
    )


def _drain(queue: RunQueue, now: datetime) -> list[int]:
    out = []
    while (run := queue.pop_due(now)) is not None:
        out.append(run.iteration_id)
    return out


items = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 100), st.integers(-3, 3)),
    unique_by=lambda r: r[0],
    max_size=150,
)


@given(items)
def test_due_runs_come_out_by_priority_then_due_time(runs: list[tuple[int, int, int]]) -> None:
    queue = RunQueue(window=10_000)
    for run_id, seconds, priority in runs:
        queue.push(_run(run_id, seconds, priority=priority))
    order = {run_id: (-p, s, n) for n, (run_id, s, p) in enumerate(runs)}
    assert _drain(queue, T0 + timedelta(seconds=100)) == sorted(order, key=order.__getitem__)


@given(items, st.integers(0, 100))
def test_a_run_not_yet_due_never_goes_whatever_its_priority(
    runs: list[tuple[int, int, int]], now: int
) -> None:
    queue = RunQueue(window=10_000)
    for run_id, seconds, priority in runs:
        queue.push(_run(run_id, seconds, priority=priority))
    at = T0 + timedelta(seconds=now)
    out = _drain(queue, at)
    due = {run_id for run_id, seconds, _ in runs if seconds <= now}
    assert set(out) == due
    assert len(queue) == len(runs) - len(due)


def test_under_saturation_high_priority_first_and_low_once_highs_stop() -> None:
    """Runs come due faster than slots free up: one slot frees per tick and
    two runs come due per tick, one high, one low, for 20 ticks; then the
    highs stop. Every tick a high goes while highs wait; the lows, waiting
    all along, go in their due order once the highs stop (none starves)."""
    queue = RunQueue(window=10_000)
    sent: list[DueRun] = []
    ids = iter(range(1, 10_000))
    for tick in range(40):
        if tick < 20:
            queue.push(_run(next(ids), tick, priority=5))
        queue.push(_run(next(ids), tick, priority=-5))
        run = queue.pop_due(T0 + timedelta(seconds=tick))  # one free slot per tick
        assert run is not None
        sent.append(run)
    while (run := queue.pop_due(T0 + timedelta(seconds=40))) is not None:
        sent.append(run)
    highs = [r for r in sent if r.priority == 5]
    lows = [r for r in sent if r.priority == -5]
    assert [r.priority for r in sent[:20]] == [5] * 20  # highs first while they come
    assert len(lows) == 40 and len(highs) == 20  # and every low went after
    assert [r.due_at for r in lows] == sorted(r.due_at for r in lows)  # in due order
    assert [r.due_at for r in highs] == sorted(r.due_at for r in highs)


def test_a_lane_no_worker_serves_waits_without_blocking_the_runs_behind_it() -> None:
    served = {DEFAULT_ROUTE}
    queue = RunQueue(window=100, serves=served.__contains__)
    for k in range(5):
        queue.push(_run(k, 0, priority=100, route=GPU))  # earliest, highest, unserved
    queue.push(_run(10, 5))
    now = T0 + timedelta(seconds=10)
    assert queue.head_due() == T0 + timedelta(seconds=5)  # the unserved lane is not waited for
    assert [lane.route for lane in queue.due_lanes(now)] == [DEFAULT_ROUTE]
    assert _drain(queue, now) == [10]
    assert len(queue) == 5 and queue.head_due() is None  # they wait, held
    served.add(GPU)  # a worker serving them joins
    assert _drain(queue, now) == [0, 1, 2, 3, 4]


def test_lanes_come_best_first_and_the_choice_skips_a_lane_whose_workers_are_full() -> None:
    queue = RunQueue(window=100)
    queue.push(_run(1, 3, route=GPU, priority=1))
    queue.push(_run(2, 1))
    queue.push(_run(3, 2, route=route_of("batch", {})))
    lanes = queue.due_lanes(T0 + timedelta(seconds=5))
    assert [lane.route.queue for lane in lanes] == ["ml", "default", "batch"]
    asked: list[tuple[str, int]] = []

    def take(lane: Lane, room: int) -> str | None:
        asked.append((lane.route.queue, room))
        return None if lane.route == GPU else f"worker of {lane.route.queue}"

    taken = first_taken(lanes, take, lambda run: run.iteration_id * 10)
    assert taken is not None
    lane, worker, room = taken
    assert (lane.route, worker, room) == (DEFAULT_ROUTE, "worker of default", 20)
    assert asked == [("ml", 10), ("default", 20)]  # batch's lane never asked
    assert queue.pop(lane) is not None and queue.head(lane) is None
    assert first_taken(lanes[:1], take, lambda run: 0) is None


def test_trim_lets_go_of_runs_no_worker_takes_first() -> None:
    queue = RunQueue(window=3, serves=lambda route: route == DEFAULT_ROUTE)
    for k in range(10):
        queue.push(_run(k, k, route=GPU))  # early, but unserved
    queue.push(_run(100, 50))
    queue.push(_run(101, 60))
    assert queue.trim() == 12 - 3
    assert queue.overflow
    held = sorted(run.iteration_id for run in queue)
    assert held == [0, 100, 101]  # the served runs, then the earliest of the others


def test_drop_task_and_each_run_once_across_lanes() -> None:
    queue = RunQueue(window=100)
    assert queue.push(_run(1, 0, route=GPU))
    assert not queue.push(_run(1, 5))  # held already, whatever its lane
    queue.push(_run(2, 0, priority=3))
    queue.push(_run(3, 0, priority=3, route=GPU))
    queue.due_lanes(T0)  # some are ready now
    assert queue.drop_task("t3") == 2
    assert 2 not in queue and 3 not in queue and 1 in queue
    assert _drain(queue, T0) == [1]
    assert len(queue) == 0 and queue.lanes() == []
