"""The scheduler: fires each run at its due time on the least busy worker
and records what happened.

Due runs sit in a bounded in-memory queue (`tasks_app.run_queue`) fed from
the database at start and by each submission's notification; a single
timer sleeps until the earliest one is due. Every decision (retry, backoff,
batching, prefetch) is a plain function of `tasks_app.policy`. A run that
finds no free worker waits for one (the seed dropped it).
Runs known to be short (from how long runs of the same module and inputs
took) may queue on a worker and travel several to a call. A run whose
worker vanishes goes back in the queue, at its head, until its
attempts are used up. Dispatch never waits for the database: what happens
is appended to the journal, which writes it in batches (`tasks_app.journal`).
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

from tasks_app import metrics, policy, schedule, selectors
from tasks_app.conf import TasksSettings
from tasks_app.dispatch import Job, WorkerGone
from tasks_app.job_inputs import JobInputs, TaskInputs, reader_here
from tasks_app.journal import Journal, RunEnded, RunSent
from tasks_app.loop_db import loop_database
from tasks_app.models import Attempt, Iteration
from tasks_app.outcomes import MalformedAnswer, WorkerOutcome
from tasks_app.policy import retry_delay
from tasks_app.pool import PooledWorker, WorkerPool
from tasks_app.run_queue import RunQueue
from tasks_app.run_times import Kind, RunTimes
from tasks_app.selectors import DueRun

log = logging.getLogger("ww.scheduler")

State = Iteration.State
Outcome = Attempt.Outcome

_REMEMBER_DISPATCH = 60.0  # s: how long the sweep leaves a dispatched run alone
_REFILL_RETRY = 0.1  # s: before reading the database again for more runs
_REFILL_TRIES = 5  # failed reads in a row before the sweep is left to refill
_CANCEL_TIMEOUT = 5.0  # s: how long a worker may take to take a cancel
# A call's jobs carry their inputs (stdin may be megabytes): a run joins a
# batch only while the batch's inputs stay within this.
_BATCH_INPUT_BYTES = 4 << 20


class WorkerVanished(Exception):
    """The worker left the pool while running our call."""


@dataclass(eq=False)
class _Running:
    run: DueRun
    worker: PooledWorker


class Scheduler:
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
        self._queue = RunQueue(window=window)
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
        self._runs: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._running: dict[int, _Running] = {}
        self._tries: dict[int, int] = {}
        # Runs sent to a worker by this process lately (monotonic time sent).
        self._dispatched: dict[int, float] = {}

    # -- feeding the heap ---------------------------------------------------

    async def load(self, *, task_id: str | None = None) -> int:
        """Queue the runs waiting in the database (the earliest due, all
        tasks' or one task's), as many as the window has room for; the
        rest are read as the queue drains (`refill`)."""
        if task_id is not None:
            self._cancelled.discard(task_id)  # runs queued again (re-run)
        room = self._queue.room()
        if room <= 0:
            self._queue.overflow = True
            return 0
        runs = await sync_to_async(selectors.due_runs)(
            task_id=task_id, limit=room, inputs_known=self._inputs.known()
        )
        if len(runs) >= room:
            self._queue.overflow = True  # there may be more than fit
        for run in runs:
            self.push(run)
        return len(runs)

    def add(self, runs: list[DueRun]) -> None:
        """Queue a new task's runs, as its submission announced them."""
        for run in runs:
            self.push(run)
        self._queue.trim()

    async def sweep(self, *, horizon: float) -> int:
        """Queue runs due within `horizon` seconds that the database holds
        but this scheduler never heard of: a safety net for a notification
        that was lost (a full channel, a Redis hiccup). Runs it has
        dispatched itself are left alone (their records may still be on
        their way to the database). While more runs wait than the window
        holds, this is also how they come in (`refill`)."""
        if self._queue.overflow:
            return await self.refill()
        due_before = timezone.now() + timedelta(seconds=horizon)
        found = await self._queue_unknown(
            await sync_to_async(selectors.due_runs)(
                due_before=due_before, limit=self._queue.window, inputs_known=self._inputs.known()
            )
        )
        if found:
            log.warning("sweep found %d runs nobody had announced; queued them", found)
        return found

    async def refill(self) -> int:
        """Top the queue up to the window with the earliest-due runs the
        database holds that are not queued here yet."""
        # The earliest waiting runs include those sent moments ago whose
        # records are still on their way to the database: read past them.
        limit = 2 * self._queue.window + len(self._running)
        runs = await sync_to_async(selectors.due_runs)(
            limit=limit, inputs_known=self._inputs.known()
        )
        found = await self._queue_unknown(runs)
        # Fewer than asked for: every waiting run is known here now.
        self._queue.overflow = len(runs) >= limit
        return found

    async def _queue_unknown(self, runs: list[DueRun]) -> int:
        # A run's records reach the database within moments of its end; the
        # memory of older dispatches is dropped (it would grow without end).
        forget_before = time.monotonic() - _REMEMBER_DISPATCH
        self._dispatched = {
            k: sent for k, sent in self._dispatched.items() if sent >= forget_before
        }
        found = 0
        for run in runs:
            if run.iteration_id in self._dispatched or run.task_id in self._cancelled:
                continue
            if run.iteration_id not in self._queue and run.iteration_id not in self._running:
                found += 1
                self.push(run)
        self._queue.trim()
        return found

    def _refill_soon(self) -> None:
        """The queue runs low while runs wait in the database: read the next
        ones now rather than at the next sweep."""
        queue = self._queue
        if queue.overflow and not self._refilling and len(queue) < queue.window // 4:
            self._refilling = True
            self._own(self._refill_once(), name="refill")

    async def _refill_once(self) -> None:
        """Refill until the queue holds a quarter of its window again or
        the database has nothing more; runs sent moments ago still look
        waiting there until their records land, so an empty read is tried
        again shortly, and so is a read that failed (a busy database), a
        few times before the sweep is left to it."""
        failures = 0
        try:
            while self._queue.overflow and len(self._queue) < self._queue.window // 4:
                try:
                    found = await self.refill()
                except Exception:
                    failures += 1
                    if failures >= _REFILL_TRIES:
                        log.exception("refilling the queue failed; the sweep will try again")
                        return
                    found = 0
                if found == 0:
                    await asyncio.sleep(_REFILL_RETRY)
        finally:
            self._refilling = False

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
                RunEnded(
                    **_attempt_of(run, attempt.worker_peer_id, attempt.number),
                    outcome=Outcome.LOST,
                    run_state=run_state,
                    error=error,
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
            self._own(self._interrupt(task_id, running), name=f"cancel-{task_id}")
        log.info("task %s cancelled: %d running runs to interrupt", task_id, len(running))
        return len(running)

    async def _interrupt(self, task_id: str, running: list[_Running]) -> None:
        """Ask each worker running one of the runs to stop it (a run that
        waits in a worker's queue is dropped there), concurrently."""

        async def interrupt(run: DueRun, worker: PooledWorker) -> None:
            link = worker.link
            if link is None:
                return
            try:
                await asyncio.wait_for(link.cancel(run.task_id, run.index), _CANCEL_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - its run ends when its call does
                log.info(
                    "run %s#%d: cancel not delivered to %s: %s",
                    task_id,
                    run.index,
                    worker.peer_id,
                    _first_line(exc),
                )

        await asyncio.gather(*(interrupt(r.run, r.worker) for r in running))

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
        # The worker first, then the runs: a retry queued while we
        # waited for a slot goes ahead of the run that woke us.
        head = self._queue.head()
        assert head is not None  # _until_due returns with a run queued
        queue = self._queue_room(head)
        worker = await self._pool.acquire(queue=queue)
        batch = self._pop_batch(worker, queue)
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
        """Sleep until the earliest queued run is due (one timer)."""
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

    def _pop_batch(self, worker: PooledWorker, queue: int) -> list[DueRun]:
        """The due run at the head of the queue and, when it is short, the
        short runs due behind it that fit on `worker`, up to `max_batch` and
        about `batch_time` seconds of them (one place on the worker is held
        already)."""
        head = self._queue.head()
        if head is None:
            return []  # cancelled while we waited for the worker
        now = timezone.now()
        # No more than an even share of what is queued (fairness).
        share = policy.fair_share(len(self._queue), len(self._pool))
        limit = max(min(self._max_batch, share, self._batch_room(head)), 1)
        batch: list[DueRun] = []
        input_bytes = 0
        while (run := self._queue.head()) is not None and self._queue.is_due(now, lead=self._lead):
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
            self._queue.pop_due(now, lead=self._lead)
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
        self._journal.append(
            RunSent(**_attempt_of(run, worker.peer_id, number), sent_at=timezone.now())
        )
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
            outcomes = await self._call(worker, jobs, timeout=timeout)
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
        later = timezone.now() + timedelta(seconds=_REFILL_RETRY)
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
            RunEnded(
                **_attempt_of(run, worker.peer_id, number),
                outcome=state,
                run_state=State.PENDING if retry else state,
                result=outcome.result,
                error=outcome.error,
                exit_code=outcome.exit_code,
                started_at=started_at,
                finished_at=finished_at,
                result_bytes=outcome.result_bytes,
                result_truncated=outcome.result_truncated,
                stderr=outcome.stderr,
            )
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
        if started_at is not None and finished_at is not None:
            self._learn(run, (finished_at - started_at).total_seconds())

    async def _call(
        self, worker: PooledWorker, jobs: list[Job], *, timeout: float
    ) -> list[WorkerOutcome]:
        """The jobs run on the worker, abandoned if the worker leaves the
        pool (its connection closed or it stopped answering pings)."""
        link = worker.link
        if link is None:
            raise WorkerVanished("worker left the pool")
        call = asyncio.ensure_future(link.run(jobs))
        gone = worker.gone()
        waiting: set[asyncio.Future[Any]] = {call, gone}
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if call in done:
                return call.result()
            if gone in done:
                raise WorkerVanished("worker left the pool mid-run")
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        finally:
            if not call.done():
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)

    def _lost(self, run: DueRun, worker: PooledWorker, number: int, exc: Exception) -> None:
        reason = _first_line(exc)
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
            RunEnded(
                **_attempt_of(run, worker.peer_id, number),
                outcome=Outcome.LOST,
                run_state=run_state,
                error=error,
            )
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

    def _retry_later(self, run: DueRun, tries: int) -> None:
        self._running.pop(run.iteration_id, None)
        delay = retry_delay(tries)
        # The first retry keeps the run's own due time: it goes to the head
        # of the queue instead of behind the runs that came due meanwhile.
        due = run.due_at if delay == 0 else timezone.now() + timedelta(seconds=delay)
        self.push(replace(run, due_at=due), retry=True)


def _kind_of(run: DueRun) -> Kind:
    return (run.module_hash, run.input, run.difficulty)


def _attempt_of(run: DueRun, worker_peer_id: str, number: int) -> dict[str, Any]:
    """The fields that name one attempt in the journal's records."""
    return {
        "iteration_id": run.iteration_id,
        "task_id": run.task_id,
        "index": run.index,
        "number": number,
        "worker_peer_id": worker_peer_id,
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]
