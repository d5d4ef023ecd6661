"""The scheduler: fires each run at its due time on the least busy worker
and records what happened.

Due runs sit in an in-memory heap fed from the database at start and on
each submission; a single timer sleeps until the earliest one is due. A run
that finds no free worker waits for one (the seed dropped it). A run whose
worker vanishes goes back in the heap, at the head of the queue, until its
attempts are used up. Dispatch never waits for the database: what happens
is appended to the journal, which writes it in batches (`tasks_app.journal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from cluster_app import rpc
from cluster_app.pool import PooledWorker, WorkerPool
from tasks_app import metrics, schedule, selectors
from tasks_app.journal import Journal, RunEnded, RunSent
from tasks_app.selectors import DueRun

log = logging.getLogger("ww.scheduler")

_OUTCOME_STATES = {
    "succeeded": "succeeded",
    "failed": "failed",
    "timedOut": "timed_out",
    "cancelled": "cancelled",
}


def retry_delay(attempt: int) -> float:
    """Backoff before trying a run again after its attempt number `attempt`
    was lost or failed: at once the first time (and ahead of runs that came
    due meanwhile), then 1, 2, 4 … s (max 30)."""
    return 0.0 if attempt <= 1 else float(min(2 ** (attempt - 2), 30))


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
        max_attempts: int = 3,
        call_grace: float = 30.0,
        default_duration: float = 60.0,
        short_run: float = 0.05,
        lead: float = 0.0,
    ) -> None:
        self._pool = pool
        self._lead = timedelta(seconds=lead)
        self._short_run = short_run
        self._typical: OrderedDict[str, float] = OrderedDict()
        self._journal = journal
        self._cancelled: set[str] = set()
        self._max_attempts = max_attempts
        self._call_grace = call_grace
        self._default_duration = default_duration
        # (due, 0 for a retry / 1 for a first try, arrival, run): among runs due
        # at the same time, retries go first.
        self._heap: list[tuple[datetime, int, int, DueRun]] = []
        self._queued: set[int] = set()
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._runs: set[asyncio.Task[None]] = set()
        self._running: dict[int, _Running] = {}
        self._tries: dict[int, int] = {}
        self._dispatched: set[int] = set()  # runs sent to a worker by this process
        self._modules: OrderedDict[str, bytes] = OrderedDict()

    # -- feeding the heap ---------------------------------------------------

    async def load(self, *, task_id: str | None = None) -> int:
        """Queue the runs waiting in the database (all, or one task's)."""
        runs = await sync_to_async(selectors.due_runs)(task_id=task_id)
        if task_id is not None:
            self._cancelled.discard(task_id)  # runs queued again (re-run)
        for run in runs:
            self.push(run)
        return len(runs)

    async def sweep(self, *, horizon: float) -> int:
        """Queue runs due within `horizon` seconds that the database holds
        but this scheduler never heard of: a safety net for a notification
        that was lost (a full channel, a Redis hiccup). Runs it has
        dispatched itself are left alone (their records may still be on
        their way to the database)."""
        due_before = timezone.now() + timedelta(seconds=horizon)
        runs = await sync_to_async(selectors.due_runs)(due_before=due_before)
        found = 0
        for run in runs:
            if run.iteration_id in self._dispatched or run.task_id in self._cancelled:
                continue
            if run.iteration_id not in self._queued and run.iteration_id not in self._running:
                found += 1
                self.push(run)
        if found:
            log.warning("sweep found %d runs nobody had announced; queued them", found)
        return found

    def push(self, run: DueRun, *, retry: bool = False) -> None:
        if run.iteration_id in self._queued or run.iteration_id in self._running:
            return
        self._queued.add(run.iteration_id)
        heapq.heappush(self._heap, (run.due_at, 0 if retry else 1, next(self._seq), run))
        self._wake.set()

    def queue_depth(self) -> int:
        return len(self._heap)

    # -- cancellation ---------------------------------------------------------

    async def cancel_task(self, task_id: str) -> int:
        """Drop a task's queued runs and interrupt its running ones (the
        database already says they are cancelled). Returns how many runs
        were interrupted."""
        self._cancelled.add(task_id)
        kept = [entry for entry in self._heap if entry[-1].task_id != task_id]
        if len(kept) != len(self._heap):
            self._queued = {entry[-1].iteration_id for entry in kept}
            heapq.heapify(kept)
            self._heap = kept
        interrupted = 0
        for running in list(self._running.values()):
            if running.run.task_id != task_id or running.worker.capability is None:
                continue
            interrupted += 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    running.worker.capability.cancel(
                        taskId=running.run.task_id, iteration=running.run.index
                    ),
                    5,
                )
        log.info("task %s: %d running runs interrupted", task_id, interrupted)
        return interrupted

    # -- the loop -------------------------------------------------------------

    async def run(self) -> None:
        """Fire runs as they fall due, until cancelled."""
        try:
            while True:
                await self._until_due()
                # The worker first, then the run: a retry queued while we
                # waited for a slot goes ahead of the run that woke us.
                worker = await self._pool.acquire(prefetch=self._is_short(self._heap[0][-1]))
                run = self._pop_due()
                if run is None:
                    self._pool.release(worker)
                    continue
                self._running[run.iteration_id] = _Running(run, worker)
                task = asyncio.create_task(
                    self._dispatch(run, worker), name=f"run-{run.task_id}-{run.index}"
                )
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
        finally:
            for task in list(self._runs):
                task.cancel()
            await asyncio.gather(*self._runs, return_exceptions=True)

    async def _until_due(self) -> None:
        """Sleep until the earliest queued run is due (one timer)."""
        while True:
            self._wake.clear()
            if self._heap:
                wait = schedule.seconds_until(self._heap[0][0] - self._lead, timezone.now())
                if wait <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                await self._wake.wait()

    def _pop_due(self) -> DueRun | None:
        if not self._heap or self._heap[0][0] - self._lead > timezone.now():
            return None
        run = heapq.heappop(self._heap)[-1]
        self._queued.discard(run.iteration_id)
        return run

    # -- one run on one worker ---------------------------------------------

    async def _dispatch(self, run: DueRun, worker: PooledWorker) -> None:
        try:
            if run.task_id not in self._cancelled:
                ran = await self._execute(run, worker)
                if ran is not None:
                    self._learn(run.task_id, ran)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dispatch of %s#%d failed", run.task_id, run.index)
        finally:
            self._running.pop(run.iteration_id, None)
            self._pool.release(worker)

    def _learn(self, task_id: str, seconds: float) -> None:
        """A moving average of how long a task's runs execute (its runs share
        module and inputs, so they tend to take alike)."""
        previous = self._typical.pop(task_id, None)
        self._typical[task_id] = seconds if previous is None else 0.7 * previous + 0.3 * seconds
        while len(self._typical) > 10_000:
            self._typical.popitem(last=False)

    def _is_short(self, run: DueRun) -> bool:
        """Runs of tasks seen to take less than `short_run` may wait in a
        worker's queue (prefetch); unknown or long ones go to a free slot."""
        typical = self._typical.get(run.task_id)
        return typical is not None and typical < self._short_run

    async def _execute(self, run: DueRun, worker: PooledWorker) -> float | None:
        """Run it on `worker`; returns how long it executed there, if it did."""
        duration = run.duration if run.duration > 0 else self._default_duration
        job = {
            "taskId": run.task_id,
            "iteration": run.index,
            "moduleHash": run.module_hash,
            "wasm": await self._module(run.module_hash),
            "input": run.input,
            "difficulty": run.difficulty,
            "timeLimitMs": int(duration * 1000),
            # Sent up to `lead` early: the worker starts it on the due time.
            "notBeforeNs": int(run.due_at.timestamp() * 1e9),
        }
        self._dispatched.add(run.iteration_id)
        number = self._tries.get(run.iteration_id, run.attempts) + 1
        self._tries[run.iteration_id] = number
        self._journal.append(
            RunSent(
                **_attempt_of(run, worker, number),
                sent_at=timezone.now(),
            )
        )
        log.debug("run %s#%d -> %s (try %d)", run.task_id, run.index, worker.peer_id, number)
        try:
            response = await self._call(
                worker, job, timeout=duration + self._call_grace + self._lead.total_seconds()
            )
        except Exception as exc:  # noqa: BLE001 - the worker's failure, not the run's
            self._lost(run, worker, number, exc)
            return None
        outcome = response.outcome
        state = _OUTCOME_STATES[str(outcome.state)]
        started_at, finished_at = _from_ns(outcome.startedAtNs), _from_ns(outcome.finishedAtNs)
        retry = (
            state in ("failed", "timed_out")
            and number <= run.retries
            and run.task_id not in self._cancelled
        )
        self._journal.append(
            RunEnded(
                **_attempt_of(run, worker, number),
                outcome=state,
                run_state="pending" if retry else state,
                result=outcome.result,
                error=outcome.error,
                exit_code=outcome.exitCode if outcome.hasExitCode else None,
                started_at=started_at,
                finished_at=finished_at,
            )
        )
        log.info(
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
        if started_at is None or finished_at is None:
            return None
        return (finished_at - started_at).total_seconds()

    async def _call(self, worker: PooledWorker, job: dict[str, Any], *, timeout: float) -> Any:
        """`execute` on the worker, abandoned if the worker leaves the pool
        (its connection closed or it stopped answering pings)."""
        capability = worker.capability
        if capability is None:
            raise WorkerVanished("worker left the pool")
        call = asyncio.ensure_future(capability.execute(job=job))
        gone = asyncio.ensure_future(worker.gone.wait())
        try:
            done, _ = await asyncio.wait(
                {call, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if call in done:
                return call.result()
            if gone in done:
                raise WorkerVanished("worker left the pool mid-run")
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        finally:
            for future in (call, gone):
                if not future.done():
                    future.cancel()
            await asyncio.gather(call, gone, return_exceptions=True)

    def _lost(self, run: DueRun, worker: PooledWorker, number: int, exc: Exception) -> None:
        reason = _first_line(exc)
        if isinstance(exc, (WorkerVanished, TimeoutError)) or rpc.is_disconnect(exc):
            self._pool.remove(worker)
        cancelled = run.task_id in self._cancelled
        retry = number < self._max_attempts and not cancelled
        if retry:
            run_state, error = "pending", reason
        elif cancelled:
            run_state, error = "cancelled", reason
        else:
            run_state, error = "failed", f"gave up after {number} attempts: {reason}"
        self._journal.append(
            RunEnded(
                **_attempt_of(run, worker, number),
                outcome="lost",
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

    async def _module(self, sha256: str) -> bytes:
        wasm = self._modules.get(sha256)
        if wasm is None:
            wasm = await sync_to_async(selectors.module_bytes)(sha256)
            self._modules[sha256] = wasm
            while len(self._modules) > 32:
                self._modules.popitem(last=False)
        else:
            self._modules.move_to_end(sha256)
        return wasm


def _attempt_of(run: DueRun, worker: PooledWorker, number: int) -> dict[str, Any]:
    """The fields that name one attempt in the journal's records."""
    return {
        "iteration_id": run.iteration_id,
        "task_id": run.task_id,
        "index": run.index,
        "number": number,
        "worker_peer_id": worker.peer_id,
    }


def _from_ns(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC) if ns > 0 else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]
