"""The history checker: what the database recorded and what the workers say
they executed, checked against the scheduler's promises (issue 19, item 5).

The history is plain records read once (tests/faults/history_reads.py:
the database through any DB-API connection, SQLite or PostgreSQL, and the
workers' execution logs). Each check is a
pure function of that history returning one message per problem, each
naming the run, task or schedule, so tests/unit/test_history.py feeds it
broken histories and sees each check fail:

- `unfinished`: every run ends in exactly one final state;
- `counted_twice`: a success is counted once (the task's succeeded_count,
  the runs' states, the attempts, the workers' executions agree);
- `ran_after_cancel`: nothing of a cancelled task started after its cancel;
- `concurrent`: no run executed twice at once unless the first attempt was
  declared lost before the second started;
- `late`: every due run handed out within a bound of its due time (and a
  run tried again within it of its previous attempt's end and backoff);
- `schedule_firings`: one task per (schedule, fire time), none missing
  between a schedule's first and last firing but those recorded skipped.

`check(history, ...)` runs them all; tests/faults/harness.py
`assert_nothing_lost` calls it at the end of the fault tests."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise

from tasks_app.fire_times import MICROSECOND, firing_id, next_fire, parse_firing_id
from tasks_app.policy import retry_delay
from tests.faults.history_reads import Attempt, Execution, Firings, History, RunKey

FINAL = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
# Fire times enumerated per schedule at most (a 1 s schedule over a day).
MAX_FIRE_TIMES = 100_000
# A lost attempt's `finished_at` is when the journal wrote the loss, not
# when the scheduler declared it (tasks_app.attempt_records.lost carries no
# time; tasks_app.storage stamps the batch's `now`), so the next attempt's
# sending, decided right after the loss, may be stamped up to one journal
# batch earlier than the loss.
LOSS_STAMP_SLACK = 1.0  # s


# -- the checks ------------------------------------------------------------------


def unfinished(history: History, *, still_going: frozenset[str] = frozenset()) -> list[str]:
    """Runs in no final state, and attempts still open, once the cluster is
    quiet; `still_going`: tasks the test knows are still running. A
    schedule's head (the firing made ahead of its fire time) waits pending
    by design."""
    heads = {
        firing_id(name, f.next_fire_at)
        for name, f in history.schedules.items()
        if f.next_fire_at is not None
    }
    problems = [
        f"run {key}: {state}, not final"
        for key, state in sorted(history.runs.items())
        if state not in FINAL
        and key[0] not in still_going
        and not (state == "pending" and key[0] in heads)
    ]
    problems += [
        f"run {(a.task, a.run)}: attempt {a.number} on {a.worker} is still {a.outcome}"
        f" but the run is {history.runs.get((a.task, a.run))}"
        for a in history.attempts
        if a.outcome == "running" and history.runs.get((a.task, a.run)) in FINAL
    ]
    return problems


def counted_twice(history: History, *, gateway_killed: bool = False) -> list[str]:
    """Every way the count of successes disagrees between the task's
    succeeded_count, the runs' states, the attempts and the workers.

    `gateway_killed`: a gateway was SIGKILLed. A run it had sent whose
    attempt its journal had not written yet left no attempt row and runs
    again after the restart (execution is at least once, README
    "Guarantees"): a worker may then have run it successfully more often
    than the database has attempts for it. It is still counted once."""
    problems: list[str] = []
    succeeded_attempts = Counter(
        (a.task, a.run) for a in history.attempts if a.outcome == "succeeded"
    )
    runs_by_task = Counter(t for (t, _), state in history.runs.items() if state == "succeeded")
    distinct_by_task = Counter(t for (t, _) in succeeded_attempts)
    attempts_by_task: Counter[str] = Counter()
    for (t, _), n in succeeded_attempts.items():
        attempts_by_task[t] += n
    for task_id, count in sorted(history.succeeded_count.items()):
        runs, distinct = runs_by_task[task_id], distinct_by_task[task_id]
        attempts = attempts_by_task[task_id]
        if not count == runs == distinct == attempts:
            problems.append(
                f"task {task_id}: succeeded_count {count}, succeeded runs {runs}, runs with a"
                f" succeeded attempt {distinct}, succeeded attempts {attempts}"
            )
    for key, n in sorted(succeeded_attempts.items()):
        if n > 1:
            problems.append(f"run {key}: {n} succeeded attempts (a success counted twice)")
        if history.runs.get(key) != "succeeded":
            problems.append(f"run {key}: has a succeeded attempt but is {history.runs.get(key)}")

    # Every success the database holds was executed, by the worker it names.
    ran_ok = Counter(
        (e.task, e.run, e.worker) for e in history.executions if e.state == "succeeded"
    )
    for a in history.attempts:
        if a.outcome == "succeeded" and not ran_ok[(a.task, a.run, a.worker)]:
            problems.append(
                f"run {(a.task, a.run)}: succeeded on {a.worker} in the database,"
                " but that worker never ran it successfully"
            )
    # Every success a worker had is counted: by a succeeded attempt of that
    # worker, or its answer never arrived (the attempt is `lost`, the run
    # went elsewhere). One attempt accounts for one execution.
    accounted = Counter(
        (a.task, a.run, a.worker) for a in history.attempts if a.outcome in {"succeeded", "lost"}
    )
    for (task_id, run, worker), n in sorted(ran_ok.items()):
        if (task_id, run) not in history.runs:
            problems.append(f"run {(task_id, run)}: ran on {worker}, unknown to the database")
        elif n > accounted[(task_id, run, worker)] and not gateway_killed:
            problems.append(
                f"run {(task_id, run)}: ran successfully {n} times on {worker}, the database"
                f" accounts for {accounted[(task_id, run, worker)]} (succeeded or lost attempts)"
            )
    return problems


def ran_after_cancel(history: History, *, reach: float = 0.0) -> list[str]:
    """Executions of a cancelled task that entered the module more than
    `reach` seconds after the cancel. A run sent before the cancel may start
    until the cancel reaches its worker (README "Guarantees": it then counts
    as it ends); the history has no record of that moment, so a test allows
    the time it takes."""
    problems = []
    for e in history.executions:
        cancelled = history.cancelled_at.get(e.task)
        if cancelled is not None and e.ran and e.started > cancelled + reach:
            problems.append(
                f"run {(e.task, e.run)}: started on {e.worker} {e.started - cancelled:.3f} s"
                f" after its task was cancelled (ended {e.state})"
            )
    return problems


def concurrent(history: History, *, gateway_killed: bool = False) -> list[str]:
    """No run executing twice at once. In the database: an attempt is sent
    only after the run's previous attempt ended or was declared lost. In the
    workers' logs: two executions of a run that overlap in time are allowed
    only when the earlier one's worker has a lost attempt of the run
    declared before the later one started (it was given up, then tried
    elsewhere). `gateway_killed`: an execution a killed gateway's journal
    never wrote has no attempt to be declared lost; it is excused."""
    problems: list[str] = []
    by_run: dict[RunKey, list[Attempt]] = defaultdict(list)
    for a in history.attempts:
        by_run[(a.task, a.run)].append(a)
    for key, attempts in sorted(by_run.items()):
        attempts.sort(key=lambda a: a.number)
        for before, after in pairwise(attempts):
            slack = LOSS_STAMP_SLACK if before.outcome == "lost" else 0.0
            if before.ended is None:
                problems.append(
                    f"run {key}: attempt {after.number} sent to {after.worker} while attempt"
                    f" {before.number} on {before.worker} was still {before.outcome}"
                )
            elif after.sent < before.ended - slack:
                problems.append(
                    f"run {key}: attempt {after.number} sent to {after.worker}"
                    f" {before.ended - after.sent:.3f} s before attempt {before.number} on"
                    f" {before.worker} ended {before.outcome}"
                )
    executions: dict[RunKey, list[Execution]] = defaultdict(list)
    for e in history.executions:
        if e.ran:
            executions[(e.task, e.run)].append(e)
    for key, runs in sorted(executions.items()):
        runs.sort(key=lambda e: e.started)
        for i, first in enumerate(runs):
            for second in runs[i + 1 :]:
                if second.started >= first.finished:
                    continue
                given_up = [
                    a.ended
                    for a in by_run.get(key, [])
                    if a.worker == first.worker and a.outcome == "lost" and a.ended is not None
                ]
                if any(ended - LOSS_STAMP_SLACK <= second.started for ended in given_up):
                    continue
                unrecorded = sum(a.worker == first.worker for a in by_run.get(key, [])) < sum(
                    e.worker == first.worker for e in runs
                )
                if gateway_killed and unrecorded:
                    continue
                problems.append(
                    f"run {key}: executed on {first.worker} and {second.worker} at once"
                    f" ({second.started - first.started:.3f} s apart, the first ran"
                    f" {first.finished - first.started:.3f} s) and not declared lost first"
                )
    return problems


def lateness(history: History) -> dict[RunKey, float]:
    """Seconds from each run's due time to its first hand-out."""
    first: dict[RunKey, float] = {}
    for a in history.attempts:
        key = (a.task, a.run)
        first[key] = min(first.get(key, a.sent), a.sent)
    return {key: sent - history.due_at[key] for key, sent in first.items() if key in history.due_at}


def late(history: History, *, bound: float, failover: float = 0.0) -> list[str]:
    """Runs handed out more than `bound` (+ `failover`, the time a test
    allows for a gateway to come back or take over) after they were due,
    never handed out though due that long before their task's cancel, or
    tried again that late after their previous attempt ended and its
    backoff (tasks_app.policy.retry_delay). A firing of a buffer_one
    schedule waits for the previous firing by design: not checked."""
    allowed = bound + failover
    problems: list[str] = []
    waits = {
        task
        for task, name in history.schedule_of.items()
        if name in history.schedules and history.schedules[name].overlap == "buffer_one"
    }
    first_sent = lateness(history)
    for key, seconds in sorted(first_sent.items()):
        if seconds > allowed and key[0] not in waits:
            problems.append(
                f"run {key}: handed out {seconds:.3f} s after its due time (bound {allowed:.3f} s)"
            )
    # A run never handed out and cancelled with its task long after it was
    # due was forgotten, whatever the cancel then hid.
    for key, state in sorted(history.runs.items()):
        cancelled = history.cancelled_at.get(key[0])
        due = history.due_at.get(key)
        if state != "cancelled" or key in first_sent or cancelled is None or due is None:
            continue
        if cancelled - due > allowed and key[0] not in waits:
            problems.append(
                f"run {key}: due {cancelled - due:.3f} s before its task was cancelled and never"
                f" handed out (bound {allowed:.3f} s)"
            )
    by_run: dict[RunKey, list[Attempt]] = defaultdict(list)
    for a in history.attempts:
        by_run[(a.task, a.run)].append(a)
    for key, attempts in sorted(by_run.items()):
        attempts.sort(key=lambda a: a.number)
        for before, after in pairwise(attempts):
            if before.ended is None:
                continue  # `concurrent` says so
            waited = after.sent - before.ended - retry_delay(before.number)
            if waited > allowed:
                problems.append(
                    f"run {key}: attempt {after.number} sent {waited:.3f} s after attempt"
                    f" {before.number} ended {before.outcome} and its backoff"
                    f" (bound {allowed:.3f} s)"
                )
    return problems


def schedule_firings(history: History, *, changed: frozenset[str] = frozenset()) -> list[str]:
    """One task per (schedule, fire time); every fire time of a schedule's
    timing between its first and last firing is a firing or recorded
    skipped (MissedFirings), never both; the chain's head is a firing.
    A firing whose fire time is off the timing is a trigger: allowed.
    `changed`: schedules whose timing changed or that were paused during
    the test (the database keeps no record of when): not checked for gaps."""
    problems: list[str] = []
    fired: dict[str, Counter[datetime]] = defaultdict(Counter)
    for task_id, name in sorted(history.schedule_of.items()):
        parsed = parse_firing_id(task_id)
        if parsed is None or parsed[0] != name:
            problems.append(f"task {task_id}: a firing of schedule {name} with another id")
            continue
        fired[name][parsed[1]] += 1
    for name, firings in sorted(fired.items()):
        for at, n in sorted(firings.items()):
            if n > 1:
                problems.append(f"schedule {name}: {n} tasks for fire time {at.isoformat()}")
    for name, schedule in sorted(history.schedules.items()):
        firings = fired.get(name, Counter())
        head = schedule.next_fire_at
        if head is not None and head not in firings:
            problems.append(f"schedule {name}: its next fire time {head.isoformat()} has no task")
        for at in sorted(firings):
            if _recorded(schedule, at):
                problems.append(
                    f"schedule {name}: fire time {at.isoformat()} both fired and recorded skipped"
                )
        if name not in changed:
            problems += [
                f"schedule {name}: fire time {at.isoformat()} missing"
                for at in _missing(schedule, set(firings))
            ]
    return problems


def _recorded(schedule: Firings, at: datetime) -> bool:
    return any(first <= at <= last for first, last in schedule.skipped)


def _missing(schedule: Firings, fired: set[datetime]) -> list[datetime]:
    """The timing's fire times between the first and last fired on it that
    neither fired nor were recorded skipped."""
    on_grid = sorted(at for at in fired if next_fire(schedule.timing, at - MICROSECOND) == at)
    if len(on_grid) < 2:
        return []
    missing: list[datetime] = []
    at: datetime | None = on_grid[0]
    for _ in range(MAX_FIRE_TIMES):
        at = next_fire(schedule.timing, at) if at is not None else None
        if at is None or at >= on_grid[-1]:
            break
        if at not in fired and not _recorded(schedule, at):
            missing.append(at)
    return missing


def check(
    history: History,
    *,
    gateway_killed: bool = False,
    dispatch_bound: float | None = None,
    failover: float = 0.0,
    still_going: frozenset[str] = frozenset(),
    changed_schedules: frozenset[str] = frozenset(),
    cancel_reach: float = 0.0,
) -> list[str]:
    """Every problem every check finds ([] for a sound history);
    `dispatch_bound` None: hand-out lateness not checked (a saturated test)."""
    problems = unfinished(history, still_going=still_going)
    problems += counted_twice(history, gateway_killed=gateway_killed)
    problems += ran_after_cancel(history, reach=cancel_reach)
    problems += concurrent(history, gateway_killed=gateway_killed)
    if dispatch_bound is not None:
        problems += late(history, bound=dispatch_bound, failover=failover)
    problems += schedule_firings(history, changed=changed_schedules)
    return problems


def summary(history: History) -> Mapping[str, float]:
    """Numbers for a report: runs, executions, the worst hand-out lateness."""
    waits = lateness(history)
    return {
        "runs": len(history.runs),
        "executions": len(history.executions),
        "max_lateness": max(waits.values(), default=0.0),
    }
