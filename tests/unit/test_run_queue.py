"""The scheduler's run queue: earliest due first (retries ahead of first
tries due at the same moment, then arrival), each run once, a task dropped
whole, and trimmed to its window of the earliest runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tasks_app.run_queue import RunQueue
from tasks_app.selectors import DueRun

T0 = datetime(2026, 12, 3, tzinfo=UTC)
FAR = T0 + timedelta(days=3650)


def _run(run_id: int, seconds: int, task: str = "t") -> DueRun:
    return DueRun(
        iteration_id=run_id,
        task_id=task,
        index=run_id,
        due_at=T0 + timedelta(seconds=seconds),
        module_hash="ab" * 32,
        input=0,
        difficulty=0,
        duration=1,
    )


def _drain(queue: RunQueue) -> list[int]:
    out = []
    while (run := queue.pop_due(FAR)) is not None:
        out.append(run.iteration_id)
    return out


runs = st.lists(
    st.tuples(st.integers(0, 500), st.integers(0, 100), st.booleans()),
    unique_by=lambda r: r[0],
    max_size=200,
)


@given(runs)
def test_runs_come_out_by_due_time_retries_first_then_arrival(items: list) -> None:
    queue = RunQueue(window=10_000)
    for run_id, seconds, retry in items:
        assert queue.push(_run(run_id, seconds), retry=retry)
    order = {
        run_id: (seconds, 0 if retry else 1, n) for n, (run_id, seconds, retry) in enumerate(items)
    }
    assert _drain(queue) == sorted(order, key=order.__getitem__)


@given(runs)
def test_each_run_is_held_once(items: list) -> None:
    queue = RunQueue(window=10_000)
    for run_id, seconds, _ in items:
        queue.push(_run(run_id, seconds))
        assert not queue.push(_run(run_id, seconds + 1))
    assert len(queue) == len(items)


def test_nothing_comes_out_before_it_is_due() -> None:
    queue = RunQueue(window=10)
    queue.push(_run(1, 60))
    assert queue.pop_due(T0) is None
    assert queue.pop_due(T0, lead=timedelta(seconds=59)) is None
    assert queue.pop_due(T0 + timedelta(seconds=60)) is not None


@given(runs, st.sampled_from(["a", "b", "c"]))
def test_dropping_a_task_removes_all_its_runs_and_only_them(items: list, gone: str) -> None:
    queue = RunQueue(window=10_000)
    tasks = {}
    for run_id, seconds, _ in items:
        tasks[run_id] = "abc"[run_id % 3]
        queue.push(_run(run_id, seconds, tasks[run_id]))
    dropped = queue.drop_task(gone)
    assert dropped == sum(task == gone for task in tasks.values())
    left = _drain(queue)
    assert sorted(left) == sorted(r for r, task in tasks.items() if task != gone)


@given(runs, st.integers(1, 50))
def test_trim_keeps_the_earliest_window_and_says_more_wait(items: list, window: int) -> None:
    queue = RunQueue(window=window)
    for run_id, seconds, _ in items:
        queue.push(_run(run_id, seconds))
    before = sorted((seconds, run_id) for run_id, seconds, _ in items)
    dropped = queue.trim()
    if len(items) <= 2 * window:
        assert dropped == 0 and len(queue) == len(items)
        return
    assert queue.overflow and len(queue) == window and dropped == len(items) - window
    kept = _drain(queue)
    latest_kept = max(seconds for seconds, run_id in before if run_id in kept)
    earliest_dropped = min(seconds for seconds, run_id in before if run_id not in kept)
    assert latest_kept <= earliest_dropped


def _prioritized(run_id: int, seconds: int, priority: int) -> DueRun:
    return replace(_run(run_id, seconds), priority=priority)


def test_trim_keeps_a_due_run_of_higher_priority_behind_a_backlog_of_due_ones() -> None:
    queue = RunQueue(window=3)
    for run_id in range(10):
        queue.push(_prioritized(run_id, run_id, 0))  # a backlog, all due
    queue.push(_prioritized(100, 50, 100))  # announced later, due now, urgent
    queue.trim(T0 + timedelta(seconds=60))
    assert 100 in queue and len(queue) == 3
    assert queue.pop_due(T0 + timedelta(seconds=60)).iteration_id == 100
    # Without a clock the trim knows nothing due: earliest first, as before.
    untimed = RunQueue(window=3)
    for run_id in range(10):
        untimed.push(_prioritized(run_id, run_id, 0))
    untimed.push(_prioritized(100, 50, 100))
    untimed.trim()
    assert 100 not in untimed


def test_trim_never_lets_future_runs_of_high_priority_push_out_due_ones() -> None:
    queue = RunQueue(window=3)
    for run_id in range(3):
        queue.push(_prioritized(run_id, run_id, 0))  # due
    for run_id in range(10, 20):
        queue.push(_prioritized(run_id, 3600 + run_id, 100))  # urgent, but in an hour
    queue.trim(T0 + timedelta(seconds=60))
    assert sorted(_drain(queue)) == [0, 1, 2]


@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 100), st.integers(-100, 100)),
        unique_by=lambda r: r[0],
        max_size=200,
    ),
    st.integers(1, 50),
    st.integers(0, 100),
)
def test_trim_keeps_the_most_urgent_due_runs(items: list, window: int, now_s: int) -> None:
    """No run let go is due with a higher priority than one kept, nor due
    earlier at the same priority; no due run is let go while a run not yet
    due is kept."""
    now = T0 + timedelta(seconds=now_s)
    queue = RunQueue(window=window)
    for run_id, seconds, priority in items:
        queue.push(_prioritized(run_id, seconds, priority))
    queue.trim(now)
    kept = {run.iteration_id for run in queue}
    due = {r: (s, p) for r, s, p in items if s <= now_s}
    for r, (s, p) in due.items():
        if r in kept:
            continue
        for k in kept:
            if k in due:
                ks, kp = due[k]
                assert (kp, -ks) >= (p, -s)  # the kept one is at least as urgent
            else:
                raise AssertionError(f"run {r} due now let go while {k}, not due, is kept")
