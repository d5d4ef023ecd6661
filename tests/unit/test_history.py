"""The history checker (tests/faults/history.py): a consistent history
passes every check, and a history broken in one way fails the check for
that way, naming the run, task or schedule; the pictures faults
legitimately leave behind pass. A worker's ExecutionLog writes what the
checker reads, and the checker's reads work on the project's migrated
tables in SQLite and in a real PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tasks_app.fire_times import Timing, firing_id
from tests.faults.history import (
    check,
    concurrent,
    counted_twice,
    late,
    ran_after_cancel,
    schedule_firings,
    unfinished,
)
from tests.faults.history_reads import (
    Attempt,
    Execution,
    Firings,
    History,
    read_executions,
    read_history,
)
from tests.postgres import fresh_database
from workers.execution_log import ExecutionLog
from workers.executor import RunOutcome, RunRequest
from workers.server import run_key

A, B = "12D3KooWA", "12D3KooWB"
T0 = 1_800_000_000.0
S0 = datetime.fromtimestamp(T0 + 100, UTC)  # the schedule's first fire time
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def beat(k: float) -> str:
    """The firing of schedule `beat` at its k-th fire time."""
    return firing_id("beat", S0 + timedelta(seconds=k))


def consistent() -> History:
    """Task t: run 0 succeeded on A; run 1 on A, declared lost at T0+3
    while A still ran it, then succeeded on B; run 2 failed on B. Task c:
    cancelled at T0+10 with run 0 done before, run 1 dropped unstarted by
    B. Schedule beat (every 1 s from S0): fire times 0, 1, 3, 4 fired, 2
    recorded skipped, 5 the head, not due yet."""
    h = History(
        succeeded_count={"t": 2, "c": 1},
        cancelled_at={"c": T0 + 10},
        runs={
            ("t", 0): "succeeded",
            ("t", 1): "succeeded",
            ("t", 2): "failed",
            ("c", 0): "succeeded",
            ("c", 1): "cancelled",
        },
        due_at={
            ("t", 0): T0,
            ("t", 1): T0 + 1,
            ("t", 2): T0 + 2,
            ("c", 0): T0,
            ("c", 1): T0 + 10.4,
        },
        attempts=[
            Attempt("t", 0, A, "succeeded", 1, T0 + 0.1, T0 + 0.1, T0 + 1),
            Attempt("t", 1, A, "lost", 1, T0 + 1.1, None, T0 + 3),
            Attempt("t", 1, B, "succeeded", 2, T0 + 3.1, T0 + 3.1, T0 + 4),
            Attempt("t", 2, B, "failed", 1, T0 + 2.1, T0 + 2.1, T0 + 2.5),
            Attempt("c", 0, A, "succeeded", 1, T0 + 0.2, T0 + 0.2, T0 + 1),
            Attempt("c", 1, B, "cancelled", 1, T0 + 10.5, None, T0 + 11),
        ],
        executions=[
            Execution("t", 0, A, "succeeded", T0 + 0.1, T0 + 1),
            # A went on running t#1 after it was given up: it ran it to the end.
            Execution("t", 1, A, "succeeded", T0 + 1.1, T0 + 3.5),
            Execution("t", 1, B, "succeeded", T0 + 3.1, T0 + 4),
            Execution("t", 2, B, "failed", T0 + 2.1, T0 + 2.5, "unreachable"),
            Execution("c", 0, A, "succeeded", T0 + 0.2, T0 + 1),
            Execution("c", 1, B, "cancelled", T0 + 11, T0 + 11, "cancelled before it started"),
        ],
        schedules={
            "beat": Firings(
                Timing(every=1.0, anchor=S0),
                next_fire_at=S0 + timedelta(seconds=5),
                skipped=((S0 + timedelta(seconds=2), S0 + timedelta(seconds=2)),),
            )
        },
    )
    for k in (0, 1, 3, 4):
        task, due = beat(k), T0 + 100 + k
        h.succeeded_count[task] = 1
        h.schedule_of[task] = "beat"
        h.runs[(task, 0)] = "succeeded"
        h.due_at[(task, 0)] = due
        h.attempts.append(Attempt(task, 0, A, "succeeded", 1, due + 0.1, due + 0.1, due + 0.2))
        h.executions.append(Execution(task, 0, A, "succeeded", due + 0.1, due + 0.2))
    head = beat(5)
    h.succeeded_count[head] = 0
    h.schedule_of[head] = "beat"
    h.runs[(head, 0)] = "pending"
    h.due_at[(head, 0)] = T0 + 105
    return h


def everything(h: History, *, gateway_killed: bool = False) -> list[str]:
    """Every check, as the fault tests run them."""
    return check(h, gateway_killed=gateway_killed, dispatch_bound=0.5)


def test_a_consistent_history_passes_every_check() -> None:
    assert everything(consistent()) == []


# -- every run ends in exactly one final state ------------------------------------


def test_a_run_left_running_is_found_unless_its_task_is_still_going() -> None:
    h = consistent()
    h.runs[("t", 2)] = "running"
    assert unfinished(h) == ["run ('t', 2): running, not final"]
    assert unfinished(h, still_going=frozenset({"t"})) == []


def test_a_pending_run_left_after_quiescence_is_found_but_a_schedules_head() -> None:
    """The head firing (beat's fire time 5) waits pending by design; a
    firing behind it may not."""
    h = consistent()
    h.runs[(beat(4), 0)] = "pending"
    assert unfinished(h) == [f"run ({beat(4)!r}, 0): pending, not final"]
    h.schedules["beat"] = replace(h.schedules["beat"], next_fire_at=None)  # ended: no head
    assert unfinished(h) == [
        f"run ({beat(4)!r}, 0): pending, not final",
        f"run ({beat(5)!r}, 0): pending, not final",
    ]


def test_an_attempt_still_open_on_a_finished_run_is_found() -> None:
    h = consistent()
    h.attempts[3] = replace(h.attempts[3], outcome="running", ended=None)
    assert any(
        p == f"run ('t', 2): attempt 1 on {B} is still running but the run is failed"
        for p in unfinished(h)
    )


# -- a success is counted once ------------------------------------------------------


def test_a_task_count_that_disagrees_with_the_runs_is_found() -> None:
    h = consistent()
    h.succeeded_count["t"] = 3
    (problem,) = everything(h)
    assert problem.startswith("task t: succeeded_count 3, succeeded runs 2")


def test_a_success_counted_twice_is_found() -> None:
    h = consistent()
    h.attempts.append(Attempt("t", 0, B, "succeeded", 2, T0 + 1.5, T0 + 1.5, T0 + 1.6))
    h.executions.append(Execution("t", 0, B, "succeeded", T0 + 1.5, T0 + 1.6))
    problems = counted_twice(h)
    assert "run ('t', 0): 2 succeeded attempts (a success counted twice)" in problems
    assert any(p.startswith("task t: succeeded_count 2") for p in problems), problems


def test_a_success_no_worker_ran_is_found() -> None:
    h = consistent()
    h.executions = [e for e in h.executions if (e.task, e.run, e.worker) != ("t", 0, A)]
    (problem,) = everything(h)
    assert problem == (
        f"run ('t', 0): succeeded on {A} in the database, but that worker never ran it successfully"
    )


def test_a_success_credited_to_the_wrong_worker_is_found() -> None:
    h = consistent()
    h.executions[0] = replace(h.executions[0], worker=B)  # B ran t#0, the database says A
    problems = counted_twice(h)
    assert any("never ran it successfully" in p for p in problems), problems
    assert any(f"ran successfully 1 times on {B}" in p for p in problems), problems


@pytest.mark.parametrize("outcome", ["failed", "timed_out", "cancelled"])
def test_a_success_the_database_does_not_count_is_found(outcome: str) -> None:
    h = consistent()
    h.executions[3] = replace(h.executions[3], state="succeeded", error="")
    h.attempts[3] = replace(h.attempts[3], outcome=outcome)
    (problem,) = everything(h)
    assert problem == (
        f"run ('t', 2): ran successfully 1 times on {B}, the database accounts for 0"
        " (succeeded or lost attempts)"
    )


def test_a_run_unknown_to_the_database_is_found() -> None:
    h = consistent()
    h.executions.append(Execution("ghost", 0, A, "succeeded", T0, T0 + 1))
    (problem,) = everything(h)
    assert problem == f"run ('ghost', 0): ran on {A}, unknown to the database"


def test_an_unrecorded_repeat_is_found_unless_a_gateway_was_killed() -> None:
    """A gateway killed after sending a run and before its journal wrote the
    attempt leaves no row for that execution; the run runs again after the
    restart, and only then may a worker's successes outnumber the attempts
    (the run is still counted once)."""
    h = consistent()
    h.executions.append(Execution("t", 0, A, "succeeded", T0 + 5, T0 + 6))  # t#0 ran twice on A
    (problem,) = everything(h)
    assert f"ran successfully 2 times on {A}" in problem
    assert everything(h, gateway_killed=True) == []
    # Counting a success twice is never excused.
    h.attempts.append(Attempt("t", 0, A, "succeeded", 2, T0 + 5, T0 + 5, T0 + 6))
    assert "run ('t', 0): 2 succeeded attempts (a success counted twice)" in counted_twice(
        h, gateway_killed=True
    )


# -- nothing of a cancelled task starts after the cancel ---------------------------


@pytest.mark.parametrize(
    ("state", "error"), [("succeeded", ""), ("failed", "trap"), ("cancelled", "while running")]
)
def test_a_run_started_after_its_task_was_cancelled_is_found(state: str, error: str) -> None:
    h = consistent()
    # c#1 ran on B after the cancel; the database still says cancelled.
    h.executions[5] = Execution("c", 1, B, state, T0 + 11, T0 + 12, error)
    (problem,) = ran_after_cancel(h)
    assert problem == (
        f"run ('c', 1): started on {B} 1.000 s after its task was cancelled (ended {state})"
    )
    # Within the time the cancel takes to reach the worker, it may start.
    assert ran_after_cancel(h, reach=1.0) == []
    assert ran_after_cancel(h, reach=0.9) == [problem]


# -- no run executed twice at once unless the first was declared lost first --------


def test_two_workers_running_a_run_at_once_is_found() -> None:
    h = consistent()
    # B also ran t#0 while A did, and the database never gave A's attempt up.
    h.executions.append(Execution("t", 0, B, "failed", T0 + 0.5, T0 + 0.6, "trap"))
    (problem,) = everything(h)
    assert problem.startswith(f"run ('t', 0): executed on {A} and {B} at once")


def test_a_second_execution_before_the_loss_was_declared_is_found() -> None:
    """t#1 ran on B from T0+3.1; its attempt on A declared lost only at
    T0+5, after B had started (beyond the loss stamp's slack)."""
    h = consistent()
    # The journal stamps a loss when it writes it, up to a batch after the
    # scheduler declared it and sent the run on: half a second is that.
    h.attempts[1] = replace(h.attempts[1], ended=T0 + 3.6)
    assert concurrent(h) == []
    h.attempts[1] = replace(h.attempts[1], ended=T0 + 5)
    problems = concurrent(h)
    assert any(p.startswith(f"run ('t', 1): executed on {A} and {B} at once") for p in problems)
    assert f"run ('t', 1): attempt 2 sent to {B} 1.900 s before attempt 1 on {A} ended lost" in (
        problems
    )


def test_an_attempt_sent_while_the_previous_one_runs_is_found() -> None:
    h = consistent()
    h.attempts[1] = replace(h.attempts[1], outcome="running", ended=None)
    assert f"run ('t', 1): attempt 2 sent to {B} while attempt 1 on {A} was still running" in (
        concurrent(h)
    )


def test_an_execution_a_killed_gateway_never_recorded_is_excused_from_overlap() -> None:
    h = consistent()
    # A ran t#2 too, overlapping B, for a sending the killed gateway never wrote.
    h.executions.append(Execution("t", 2, A, "failed", T0 + 2.0, T0 + 2.3, "trap"))
    assert concurrent(h) != []
    assert concurrent(h, gateway_killed=True) == []


# -- every due run handed out within the bound ------------------------------------


def test_a_run_handed_out_late_is_found_within_the_failover_allowance_not() -> None:
    h = consistent()
    h.due_at[("t", 2)] = T0 + 1  # sent at T0+2.1
    assert late(h, bound=0.5) == [
        "run ('t', 2): handed out 1.100 s after its due time (bound 0.500 s)"
    ]
    assert late(h, bound=0.5, failover=1.0) == []


def test_a_due_run_never_handed_out_before_its_cancel_is_found() -> None:
    """c#1 was due at T0+10.4; say it was due at T0+5 and never sent: the
    cancel at T0+10 hid a run forgotten for 5 s."""
    h = consistent()
    h.attempts = [a for a in h.attempts if (a.task, a.run) != ("c", 1)]
    h.executions = [e for e in h.executions if (e.task, e.run) != ("c", 1)]
    assert late(h, bound=0.5) == []  # due after the cancel: nothing to hand out
    h.due_at[("c", 1)] = T0 + 5
    assert late(h, bound=0.5) == [
        "run ('c', 1): due 5.000 s before its task was cancelled and never handed out"
        " (bound 0.500 s)"
    ]
    assert late(h, bound=0.5, failover=5.0) == []


def test_a_run_tried_again_late_after_a_loss_is_found() -> None:
    h = consistent()
    h.attempts[2] = replace(h.attempts[2], sent=T0 + 4)  # 1 s after A's loss at T0+3
    assert late(h, bound=0.5) == [
        "run ('t', 1): attempt 2 sent 1.000 s after attempt 1 ended lost and its backoff"
        " (bound 0.500 s)"
    ]


def test_a_retry_waits_its_backoff_before_it_counts_late() -> None:
    """Attempt 2 failed at T0+4: attempt 3 waits retry_delay(2) = 1 s first,
    attempt 4 retry_delay(3) = 2 s after attempt 3's end."""
    h = consistent()
    h.attempts[2] = replace(h.attempts[2], outcome="failed")
    h.attempts += [
        Attempt("t", 1, A, "failed", 3, T0 + 5.1, T0 + 5.1, T0 + 5.2),
        Attempt("t", 1, B, "succeeded", 4, T0 + 7.3, T0 + 7.3, T0 + 7.4),
    ]
    assert late(h, bound=0.5) == []
    h.attempts[-1] = replace(h.attempts[-1], sent=T0 + 8)
    assert late(h, bound=0.5) == [
        "run ('t', 1): attempt 4 sent 0.800 s after attempt 3 ended failed and its backoff"
        " (bound 0.500 s)"
    ]


def test_a_buffer_one_firing_may_wait_for_the_previous() -> None:
    h = consistent()
    h.due_at[(beat(3), 0)] -= 10
    assert len(late(h, bound=0.5)) == 1
    h.schedules["beat"] = replace(h.schedules["beat"], overlap="buffer_one")
    assert late(h, bound=0.5) == []


# -- schedules: one task per fire time, none missing ------------------------------


def test_two_tasks_for_one_fire_time_are_found() -> None:
    h = consistent()
    # The same fire time written with its microseconds: another id.
    twin = f"beat@{S0.strftime('%Y-%m-%dT%H:%M:%S')}.000000Z"
    h.succeeded_count[twin] = 0
    h.schedule_of[twin] = "beat"
    (problem,) = everything(h)
    assert problem == f"schedule beat: 2 tasks for fire time {S0.isoformat()}"


def test_a_missing_fire_time_is_found() -> None:
    h = consistent()
    del h.schedule_of[beat(3)]  # no longer a firing: fire time 3 has none
    (problem,) = everything(h)
    assert problem == f"schedule beat: fire time {(S0 + timedelta(seconds=3)).isoformat()} missing"


def test_a_fire_time_recorded_skipped_counts_as_decided() -> None:
    h = consistent()
    h.schedules["beat"] = replace(h.schedules["beat"], skipped=())
    assert schedule_firings(h) == [
        f"schedule beat: fire time {(S0 + timedelta(seconds=2)).isoformat()} missing"
    ]
    assert schedule_firings(h, changed=frozenset({"beat"})) == []


def test_a_fire_time_both_fired_and_recorded_skipped_is_found() -> None:
    h = consistent()
    one = S0 + timedelta(seconds=1)
    skipped = (*h.schedules["beat"].skipped, (one, one))
    h.schedules["beat"] = replace(h.schedules["beat"], skipped=skipped)
    assert schedule_firings(h) == [
        f"schedule beat: fire time {one.isoformat()} both fired and recorded skipped"
    ]


def test_a_head_without_its_firing_is_found() -> None:
    h = consistent()
    six = S0 + timedelta(seconds=6)
    h.schedules["beat"] = replace(h.schedules["beat"], next_fire_at=six)
    assert schedule_firings(h) == [
        f"schedule beat: its next fire time {six.isoformat()} has no task"
    ]


def test_a_firing_with_another_id_is_found_and_a_trigger_is_not() -> None:
    h = consistent()
    trigger = beat(1.5)  # off the grid: made by a trigger
    h.succeeded_count[trigger] = 0
    h.schedule_of[trigger] = "beat"
    assert schedule_firings(h) == []
    h.schedule_of["t"] = "beat"
    assert schedule_firings(h) == ["task t: a firing of schedule beat with another id"]


# -- reading ------------------------------------------------------------------------


def test_the_worker_logs_read_back_as_the_checker_expects(tmp_path: Path) -> None:
    """ExecutionLog (workers/execution_log.py) writes one line per scheduled
    run, none for `assign`, appending when two workers share the file; the
    checker reads every log given, one per worker or shared."""
    shared, own = tmp_path / "executions.jsonl", tmp_path / "executions-b.jsonl"

    def request(task_id: str, key: str) -> RunRequest:
        return RunRequest(task_id, "h", b"", 0, 0, 1.0, run_key=key)

    outcome = RunOutcome("succeeded", "2832", "", None, T0, T0 + 1)
    dropped = RunOutcome("cancelled", "", "cancelled before it started", None, T0, T0)
    ExecutionLog(str(shared), A).record(
        [request("t", run_key("t", 0)), request("assign", "")], [outcome, outcome]
    )
    ExecutionLog(str(shared), B).record([request("a#b", run_key("a#b", 7))], [dropped])
    ExecutionLog(str(own), B).record([request("t", run_key("t", 1))], [outcome])
    executions = read_executions([shared, own, tmp_path / "absent.jsonl"])
    assert executions == [
        Execution("t", 0, A, "succeeded", T0, T0 + 1),
        Execution("a#b", 7, B, "cancelled", T0, T0, "cancelled before it started"),
        Execution("t", 1, B, "succeeded", T0, T0 + 1),
    ]
    assert not executions[1].ran


# Rows as the product writes them (through the ORM), for the reads to meet
# each engine's own column types: task t with run 0 lost on A then
# succeeded on B and run 1 cancelled with the task; schedule beat (every
# 1 s) fired at 0 and 2, 1 recorded skipped, its head 3 pending.
SEED = """
from datetime import UTC, datetime, timedelta
from tasks_app.models import Attempt, Iteration, MissedFirings, Module, Schedule, Task
from tasks_app.fire_times import firing_id
T, s = datetime(2027, 1, 15, 8, 0, 0, 250000, tzinfo=UTC), timedelta(seconds=1)
m = Module.objects.create(sha256="0" * 64, wasm=b"\\0asm", size=4, kind="run")
t = Task.objects.create(id="t", module=m, repeats=2, received_at=T, cancelled_at=T + 9 * s,
    succeeded_count=1)
r0 = Iteration.objects.create(task=t, index=0, due_at=T, state="succeeded", finished_at=T + 4 * s)
Iteration.objects.create(task=t, index=1, due_at=T + 10 * s, state="cancelled")
Attempt.objects.create(iteration=r0, number=1, worker_peer_id="A", sent_at=T + 0.25 * s,
    outcome="lost", finished_at=T + 2 * s)
Attempt.objects.create(iteration=r0, number=2, worker_peer_id="B", sent_at=T + 2.25 * s,
    started_at=T + 2.25 * s, finished_at=T + 3 * s, outcome="succeeded")
S = datetime(2027, 1, 15, 9, 0, 0, tzinfo=UTC)
b = Schedule.objects.create(name="beat", module=m, every=1.0, created_at=S - 0.5 * s,
    next_fire_at=S + 3 * s)
MissedFirings.objects.create(schedule=b, first_fire_at=S + s, last_fire_at=S + s, count=1,
    recorded_at=S + 2 * s)
for k, state in ((0, "succeeded"), (2, "succeeded"), (3, "pending")):
    f = Task.objects.create(id=firing_id("beat", S + k * s), module=m, received_at=S + k * s,
        schedule=b, succeeded_count=int(state == "succeeded"))
    run = Iteration.objects.create(task=f, index=0, due_at=S + k * s, state=state)
    if state == "succeeded":
        Attempt.objects.create(iteration=run, number=1, worker_peer_id="B",
            sent_at=S + k * s, started_at=S + k * s, finished_at=S + k * s + s,
            outcome="succeeded")
"""


def _migrate_and_seed(env: dict[str, str]) -> None:
    for command in (["migrate", "--noinput", "-v", "0"], ["shell", "-c", SEED]):
        subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "manage.py"), *command],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            timeout=300,
        )


def _assert_reads_the_seed(h: History) -> None:
    T = datetime(2027, 1, 15, 8, 0, 0, 250000, tzinfo=UTC).timestamp()
    S = datetime(2027, 1, 15, 9, 0, 0, tzinfo=UTC)
    head = firing_id("beat", S + timedelta(seconds=3))
    assert h.succeeded_count["t"] == 1 and h.cancelled_at == {"t": T + 9}
    assert h.runs[("t", 0)] == "succeeded" and h.runs[("t", 1)] == "cancelled"
    assert h.due_at[("t", 1)] == T + 10
    assert sorted((a for a in h.attempts if a.task == "t"), key=lambda a: a.number) == [
        Attempt("t", 0, "A", "lost", 1, T + 0.25, None, T + 2),
        Attempt("t", 0, "B", "succeeded", 2, T + 2.25, T + 2.25, T + 3),
    ]
    assert h.schedule_of[head] == "beat" and "t" not in h.schedule_of
    firings = h.schedules["beat"]
    assert firings.timing == Timing(every=1.0, anchor=S)  # the whole second after creation
    assert firings.next_fire_at == S + timedelta(seconds=3)
    assert firings.skipped == ((S + timedelta(seconds=1), S + timedelta(seconds=1)),)
    assert len(h.executions) == 4
    assert check(h, dispatch_bound=0.5) == []
    # The checks see what the rows say: without the skipped record, fire time 1 is missing.
    h.schedules["beat"] = replace(firings, skipped=())
    assert schedule_firings(h) == [
        f"schedule beat: fire time {(S + timedelta(seconds=1)).isoformat()} missing"
    ]


def _logs(tmp_path: Path) -> list[Path]:
    """What the two workers executed, one log each."""
    T = datetime(2027, 1, 15, 8, 0, 0, 250000, tzinfo=UTC).timestamp()
    S = datetime(2027, 1, 15, 9, 0, 0, tzinfo=UTC).timestamp()
    lines = {
        "A": [("t", 0, "succeeded", T + 0.25, T + 1.5)],
        "B": [("t", 0, "succeeded", T + 2.25, T + 3)]
        + [
            (
                firing_id("beat", datetime.fromtimestamp(S + k, UTC)),
                0,
                "succeeded",
                S + k,
                S + k + 1,
            )
            for k in (0, 2)
        ],
    }
    paths = []
    for worker, runs in lines.items():
        path = tmp_path / f"executions-{worker}.jsonl"
        path.write_text(
            "".join(
                json.dumps(dict(task=t, run=r, worker=worker, state=st, started=a, finished=b))
                + "\n"
                for t, r, st, a, b in runs
            )
        )
        paths.append(path)
    return paths


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wwproject.settings", **extra}
    if "DATABASE_URL" not in extra:
        env.pop("DATABASE_URL", None)
    return env


def test_the_reads_work_on_the_embedded_sqlite(tmp_path: Path) -> None:
    _migrate_and_seed(_env(WW_STATE_DIR=str(tmp_path)))
    conn = sqlite3.connect(f"file:{tmp_path / 'db.sqlite3'}?mode=ro", uri=True)
    try:
        _assert_reads_the_seed(read_history(conn, _logs(tmp_path)))
    finally:
        conn.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, dropped after; its URL."""
    with fresh_database("ww_history", needed_by="the history checker's PostgreSQL reads") as url:
        yield url


def test_the_reads_work_on_postgresql(postgres_database: str, tmp_path: Path) -> None:
    _migrate_and_seed(_env(WW_STATE_DIR=str(tmp_path), DATABASE_URL=postgres_database))
    with psycopg.connect(postgres_database) as conn:
        _assert_reads_the_seed(read_history(conn, _logs(tmp_path)))
