"""The scheduler: fires each run at its due time on the least busy worker
and records what happened.

Due runs sit in a bounded in-memory queue (`tasks_app.run_queue`) fed from
the database at start, by each submission's notification and as it drains
(`tasks_app.queue_feed`); a single
timer sleeps until the earliest one is due. Every decision (retry, backoff,
batching, prefetch) is a plain function of `tasks_app.policy`. A run that
finds no free worker waits for one (the seed dropped it).
Runs known to be short (from how long runs of the same module and inputs
took) may queue on a worker and travel several to a call. A run whose
worker vanishes goes back in the queue, at its head, until its
attempts are used up. Dispatch never waits for the database: what happens
is appended to the journal, which writes it in batches (`tasks_app.journal`;
the records are built by `tasks_app.attempt_records`). A call to a worker
and a cancel on it are `tasks_app.worker_calls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from tasks_app import (
    attempt_records,
    metrics,
    policy,
    run_queue,
    schedule,
    selectors,
    worker_calls,
)
from tasks_app.conf import TasksSettings
from tasks_app.dispatch import Job, WorkerGone
from tasks_app.firing_gate import FiringGate
from tasks_app.job_inputs import JobInputs, TaskInputs, reader_here
from tasks_app.journal import Journal
from tasks_app.loop_db import loop_database
from tasks_app.models import Attempt, Iteration
from tasks_app.outcomes import MalformedAnswer, WorkerOutcome
from tasks_app.policy import retry_delay
from tasks_app.pool import PooledWorker, WorkerPool
from tasks_app.queue_feed import REFILL_RETRY, QueueFeeding
from tasks_app.run_queue import RunQueue
from tasks_app.run_times import Kind, RunTimes
from tasks_app.selectors import DueRun
from tasks_app.worker_calls import WorkerVanished, first_line

log = logging.getLogger("ww.scheduler")

State = Iteration.State
Outcome = Attempt.Outcome

# A call's jobs carry their inputs (stdin may be megabytes): a run joins a
# batch only while the batch's inputs stay within this.
_BATCH_INPUT_BYTES = 4 << 20


@dataclass(eq=False)
class _Running:
    run: DueRun
    worker: PooledWorker


class Scheduler(QueueFeeding):
    def __init__(
        self,
        pool: WorkerPool,
        journal: Journal,
        *,
        # The settings' defaults (the gateway passes every one from its
        # TasksSettings; these serve tests that build a scheduler alone).
        max_attempts: int = TasksSettings.max_attempts,
        call_grace: float = TasksSettings.call_grace,
        default_duration: float = TasksSettings.default_duration,
        short_run: float = TasksSettings.prefetch_below,
        max_queue: int = TasksSettings.prefetch,
        max_batch: int = TasksSettings.batch,
        batch_time: float = TasksSettings.batch_seconds,
        lead: float = TasksSettings.send_ahead,
        max_faults: int = TasksSettings.worker_max_faults,
        window: int = TasksSettings.queue_window,
        inputs: TaskInputs | None = None,
    ) -> None:
        # About `window` runs are held here; more wait in the database.
        # One lane per route; a lane no worker serves waits, the others go on.
        self._queue = RunQueue(window=window, serves=pool.serves)
        self._refilling = False
        self._pool = pool
        self._max_faults = max(max_faults, 1)
        self._lead = timedelta(seconds=lead)
        self._short_run = short_run
        self._max_queue = max(max_queue, 0)
        self._max_batch = max(max_batch, 1)
        self._batch_time = batch_time
        self._run_times = RunTimes()
        self._journal = journal
        # Each task's args, stdin and env, once per task (not per queued run).
        # (Runs a submission announces come without them: read on the loop's own
        # SQLite connection where there is one, tasks_app.job_inputs.)
        self._loop_db = None if inputs else loop_database()
        self._inputs = inputs or TaskInputs(
            selectors.task_inputs,
            read_here=None if self._loop_db is None else reader_here(self._loop_db),
        )
        self._cancelled: set[str] = set()
        self._max_attempts = max_attempts
        self._call_grace = call_grace
        self._default_duration = default_duration
        self._wake = asyncio.Event()
        pool.listen(self._wake.set)  # a worker joined or a slot freed: look again
        self._runs: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._running: dict[int, _Running] = {}
        self._tries: dict[int, int] = {}
        # Runs sent to a worker by this process lately (monotonic time sent).
        self._dispatched: dict[int, float] = {}
        # Schedules' firings: what each does when due (tasks_app.firing_gate).
        self._firings = FiringGate(self.push, self._own, self._running)

    async def reclaim(self, *, grace: float) -> int:
        """Attempts the database says are running, that this scheduler is
        not waiting for, and whose time limit plus `grace` has passed: lost
        (a worker that never answered, an answer that could not be
        recorded). Their runs are tried again, end cancelled if their task
        was, or fail once their attempts are used up."""
        sent_before = timezone.now() - timedelta(seconds=grace)
        stale = await sync_to_async(selectors.stale_attempts)(
            sent_before=sent_before, default_duration=self._default_duration, grace=grace
        )
        reclaimed = 0
        for attempt in stale:
            run = attempt.run
            if run.iteration_id in self._running:
                continue  # its call is still open here: it ends with it
            reclaimed += 1
            if attempt.task_cancelled:
                self._cancelled.add(run.task_id)
            run_state = policy.after_loss(
                number=attempt.number,
                max_attempts=self._max_attempts,
                cancelled=run.task_id in self._cancelled,
            )
            error = f"no answer from {attempt.worker_peer_id or 'its worker'} past its time limit"
            self._journal.append(
                attempt_records.lost(
                    run, attempt.worker_peer_id, attempt.number, run_state=run_state, error=error
                )
            )
            if run_state == State.PENDING:
                self._tries[run.iteration_id] = attempt.number
                self._retry_later(run, attempt.number)
        if reclaimed:
            log.warning("reclaimed %d attempts left running past their time limit", reclaimed)
        return reclaimed

    def push(self, run: DueRun, *, retry: bool = False) -> None:
        if run.inputs is not None:
            self._inputs.learn(run.task_id, run.inputs)
        if run.iteration_id in self._running:
            return
        if run.task_id in self._cancelled:
            return  # its announcement came after its cancel
        if self._queue.push(run, retry=retry):
            self._wake.set()

    def queue_depth(self) -> int:
        return len(self._queue)

    # -- cancellation ---------------------------------------------------------

    def cancel_task(self, task_id: str) -> int:
        """Stop a task here (the database says it is cancelled, or is about
        to): its queued runs are dropped, none of its runs is handed out
        from now on, and its running ones are interrupted on their workers,
        all at once, in the background. Returns how many runs are being
        interrupted."""
        self._cancelled.add(task_id)
        self._queue.drop_task(task_id)
        self._inputs.forget(task_id)
        running = [r for r in self._running.values() if r.run.task_id == task_id]
        if running:
            self._own(
                worker_calls.interrupt((r.run, r.worker) for r in running), name=f"cancel-{task_id}"
            )
        log.info("task %s cancelled: %d running runs to interrupt", task_id, len(running))
        return len(running)

    def _own(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """A background task of the scheduler's: cancelled and awaited when
        the scheduler stops."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the loop -------------------------------------------------------------

    async def run(self) -> None:
        """Fire runs as they fall due, until cancelled."""
        try:
            while True:
                try:
                    await self._fire_next()
                except Exception:
                    # A bug here must not stop every run of the cluster.
                    log.exception("scheduler: handing out runs failed; going on")
                    await asyncio.sleep(0.1)
        finally:
            owned = [*self._runs, *self._background]
            for task in owned:
                task.cancel()
            await asyncio.gather(*owned, return_exceptions=True)
            if self._loop_db is not None:
                self._loop_db.close()

    async def _fire_next(self) -> None:
        """Wait for the next due run and a place for it; send it (and the
        runs that may travel with it) on its way."""
        await self._until_due()
        # The worker first, then the runs: a retry queued while we waited
        # for a slot goes ahead of the run that woke us. The best lane a
        # free worker accepts goes; full lanes do not hold up the others.
        self._wake.clear()
        taken = run_queue.first_taken(
            self._queue.due_lanes(timezone.now(), lead=self._lead),
            lambda lane, queue: self._pool.try_acquire(queue=queue, route=lane.route),
            self._queue_room,
        )
        if taken is None:
            await self._wake.wait()  # a slot frees, a worker joins, or a run comes
            return
        lane, worker, queue = taken
        batch = self._pop_batch(lane, worker, queue)
        self._refill_soon()
        if not batch:
            self._pool.release(worker)
            return
        for run in batch:
            self._running[run.iteration_id] = _Running(run, worker)
        head = batch[0]
        task = asyncio.create_task(
            self._dispatch(batch, worker), name=f"run-{head.task_id}-{head.index}"
        )
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _until_due(self) -> None:
        """Sleep until the earliest queued run a worker serves is due (one timer)."""
        while True:
            self._wake.clear()
            due = self._queue.head_due()
            if due is not None:
                wait = schedule.seconds_until(due - self._lead, timezone.now())
                if wait <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                self._refill_soon()
                await self._wake.wait()

    def _pop_batch(self, lane: run_queue.Lane, worker: PooledWorker, queue: int) -> list[DueRun]:
        """The lane's next ready run and, when it is short, the short runs
        ready behind it, up to `max_batch` and about `batch_time` seconds
        of them (one place on `worker` is held already)."""
        head = self._queue.head(lane)
        if head is None:
            return []  # cancelled while we waited for the worker
        # No more than an even share of what is queued (fairness).
        share = policy.fair_share(len(self._queue), len(self._pool))
        limit = max(min(self._max_batch, share, self._batch_room(head)), 1)
        batch: list[DueRun] = []
        input_bytes = 0
        while (run := self._queue.head(lane)) is not None:
            inputs = self._inputs.get(run.task_id)
            # Not read yet: it may be big, so it travels at the head of a call only.
            input_bytes += _BATCH_INPUT_BYTES + 1 if inputs is None else inputs.size
            if batch:
                if len(batch) >= limit or self._queue_room(run) == 0:
                    break
                if input_bytes > _BATCH_INPUT_BYTES:
                    break
                if self._pool.take_more(worker, queue=queue, most=1) == 0:
                    break
            self._queue.pop(lane)
            batch.append(run)
            if queue == 0:
                break
        return batch

    # -- how long runs take: which may queue on a worker ---------------------

    def _learn(self, run: DueRun, seconds: float) -> None:
        """A moving average of how long runs of one module with the same
        inputs execute (a task's runs share them, so they tend to take alike)."""
        self._run_times.learn(_kind_of(run), seconds)

    def _batch_room(self, run: DueRun) -> int:
        """Runs like `run` that one call may carry: about `batch_time`
        seconds of them (a call's results come back together, when its last
        run ends). Tiny runs travel many to a call: each call ended on a
        worker is work for its event loop, taken from the runs still
        running there."""
        typical = self._run_times.typical(_kind_of(run))
        return policy.batch_room(typical, batch_time=self._batch_time)

    def _queue_room(self, run: DueRun) -> int:
        """Runs per slot that may wait on a worker ahead of this one: enough
        to hold about `short_run` seconds of them (at most `max_queue`), for
        runs seen to take less than that; none for unknown or long ones
        (queued long runs only add lateness and unbalance the pool)."""
        typical = self._run_times.typical(_kind_of(run))
        return policy.queue_room(typical, short_run=self._short_run, max_queue=self._max_queue)

    # -- runs on one worker ---------------------------------------------------

    async def _dispatch(self, batch: list[DueRun], worker: PooledWorker) -> None:
        runs = [run for run in batch if run.task_id not in self._cancelled]
        try:
            runs = await self._firings.admit(runs)  # a firing may wait or be skipped
            if runs:
                await self._execute(runs, worker)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dispatch of %d runs to %s failed", len(runs), worker.peer_id)
        finally:
            for run in batch:
                self._running.pop(run.iteration_id, None)
            self._pool.release(worker, len(batch))

    def _send(self, run: DueRun, worker: PooledWorker, inputs: JobInputs) -> tuple[Job, int]:
        """The job for one attempt of `run`, and the attempt's number."""
        job = Job(
            task_id=run.task_id,
            index=run.index,
            module_hash=run.module_hash,
            input=run.input,
            difficulty=run.difficulty,
            time_limit=run.duration if run.duration > 0 else self._default_duration,
            # Sent up to `lead` early: the worker starts it on the due time.
            not_before=run.due_at,
            args=inputs.args,
            stdin=inputs.stdin,
            env=inputs.env,
        )
        self._dispatched[run.iteration_id] = time.monotonic()
        worker.given(run.module_hash)
        number = self._tries.get(run.iteration_id, run.attempts) + 1
        self._tries[run.iteration_id] = number
        self._journal.append(attempt_records.sent(run, worker.peer_id, number, at=timezone.now()))
        log.debug("run %s#%d -> %s (try %d)", run.task_id, run.index, worker.peer_id, number)
        return job, number

    def _timeout(self, runs: list[DueRun], worker: PooledWorker) -> float:
        """How long to wait for the answer: the runs' time limits, one slot's
        share of them after another, plus grace."""
        return policy.call_timeout(
            [r.duration if r.duration > 0 else self._default_duration for r in runs],
            concurrency=worker.concurrency,
            grace=self._call_grace,
            lead=self._lead.total_seconds(),
        )

    async def _execute(self, runs: list[DueRun], worker: PooledWorker) -> None:
        """Run `runs` on `worker` in one call and record each outcome."""
        inputs = self._inputs.cached(run.task_id for run in runs)
        if inputs is None:  # runs announced without them, or forgotten since
            try:
                inputs = await self._inputs.of({run.task_id for run in runs})
            except Exception as exc:  # noqa: BLE001 - the database's failure, not the runs'
                self._inputs_unread(runs, exc)
                return
            runs = [run for run in runs if run.task_id in inputs]  # a task gone: nothing to run
        metrics.RUNS_PER_CALL.observe(len(runs))
        sent = [self._send(run, worker, inputs[run.task_id]) for run in runs]
        jobs = [job for job, _ in sent]
        timeout = self._timeout(runs, worker)
        try:
            outcomes = await worker_calls.call(worker, jobs, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - the worker's failure, not the runs'
            if isinstance(exc, MalformedAnswer):
                self._fault(worker, str(exc))
            for run, (_, number) in zip(runs, sent, strict=True):
                self._lost(run, worker, number, exc)
            return
        for run, (_, number), outcome in zip(runs, sent, outcomes, strict=True):
            self._ended(run, worker, number, outcome)

    def _inputs_unread(self, runs: list[DueRun], exc: Exception) -> None:
        """The inputs of the runs' tasks could not be read (a busy
        database): none is sent; they are queued again, shortly after, with
        no attempt counted."""
        log.warning("could not read the inputs of runs to send (%s); queued again", exc)
        later = timezone.now() + timedelta(seconds=REFILL_RETRY)
        for run in runs:
            self._running.pop(run.iteration_id, None)
            self.push(replace(run, due_at=max(run.due_at, later)), retry=True)

    def _fault(self, worker: PooledWorker, reason: str) -> None:
        """A worker answered what no honest worker sends: counted against
        its peer ID; at `max_faults` it is disconnected (and refused when it
        offers itself again)."""
        self._pool.fault(worker)
        log.warning(
            "worker %s: malformed answer (%s); fault %d of %d",
            worker.peer_id,
            reason,
            worker.faults,
            self._max_faults,
        )
        if worker.faults >= self._max_faults:
            self._pool.evict(worker, f"{worker.faults} malformed answers")

    def _ended(
        self, run: DueRun, worker: PooledWorker, number: int, outcome: WorkerOutcome
    ) -> None:
        """Record what the worker says happened to one attempt."""
        state = outcome.state
        started_at, finished_at = outcome.started_at, outcome.finished_at
        retry = policy.retry_after_ending(
            state=state,
            number=number,
            retries=run.retries,
            cancelled=run.task_id in self._cancelled,
        )
        self._journal.append(
            attempt_records.ended(run, worker.peer_id, number, outcome, retry=retry)
        )
        # One line per run is too many for a busy cluster: failures at INFO only.
        (log.debug if state == State.SUCCEEDED else log.info)(
            "run %s#%d %s on %s%s",
            run.task_id,
            run.index,
            state,
            worker.peer_id,
            f": {outcome.error}" if outcome.error else f" -> {outcome.result[:40]}",
        )
        metrics.observe_run(
            due_at=run.due_at, started_at=started_at, finished_at=finished_at, state=state
        )
        if retry:
            self._retry_later(run, number)
        else:
            self._tries.pop(run.iteration_id, None)
            self._firings.ended(run)
        if started_at is not None and finished_at is not None:
            self._learn(run, (finished_at - started_at).total_seconds())

    def _lost(self, run: DueRun, worker: PooledWorker, number: int, exc: Exception) -> None:
        reason = first_line(exc)
        if isinstance(exc, TimeoutError):
            # Given up on: disconnected, so that it starts afresh and offers
            # itself again (left connected, it would wait for us forever).
            self._pool.evict(worker, reason)
        elif isinstance(exc, (WorkerVanished, WorkerGone)):
            self._pool.remove(worker)
        run_state = policy.after_loss(
            number=number, max_attempts=self._max_attempts, cancelled=run.task_id in self._cancelled
        )
        retry = run_state == State.PENDING
        error = (
            f"gave up after {number} attempts: {reason}" if run_state == State.FAILED else reason
        )
        self._journal.append(
            attempt_records.lost(run, worker.peer_id, number, run_state=run_state, error=error)
        )
        log.warning(
            "run %s#%d lost on %s (%s); %s",
            run.task_id,
            run.index,
            worker.peer_id,
            reason,
            "will retry" if retry else run_state,
        )
        if retry:
            self._retry_later(run, number)
        else:
            self._tries.pop(run.iteration_id, None)
            self._firings.ended(run)

    def _retry_later(self, run: DueRun, tries: int) -> None:
        self._running.pop(run.iteration_id, None)
        delay = retry_delay(tries)
        # The first retry keeps the run's own due time: it goes to the head
        # of the queue instead of behind the runs that came due meanwhile.
        due = run.due_at if delay == 0 else timezone.now() + timedelta(seconds=delay)
        self.push(replace(run, due_at=due), retry=True)


def _kind_of(run: DueRun) -> Kind:
    return (run.module_hash, run.input, run.difficulty)
