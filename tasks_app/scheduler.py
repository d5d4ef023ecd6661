"""The scheduler: fires each run at its due time on the least busy worker
and records what happened.

Due runs sit in an in-memory heap fed from the database at start and on
each submission; a single timer sleeps until the earliest one is due. A run
that finds no free worker waits for one (the seed dropped it).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from cluster_app import rpc
from cluster_app.pool import PooledWorker, WorkerPool
from tasks_app import metrics, schedule, selectors, services
from tasks_app.selectors import DueRun

log = logging.getLogger("ww.scheduler")

_OUTCOME_STATES = {"succeeded": "succeeded", "failed": "failed", "timedOut": "timed_out"}


class Scheduler:
    def __init__(
        self,
        pool: WorkerPool,
        *,
        max_attempts: int = 3,
        call_grace: float = 30.0,
        default_duration: float = 60.0,
    ) -> None:
        self._pool = pool
        self._max_attempts = max_attempts
        self._call_grace = call_grace
        self._default_duration = default_duration
        self._heap: list[tuple[datetime, int, DueRun]] = []
        self._queued: set[int] = set()
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._runs: set[asyncio.Task[None]] = set()
        self._modules: OrderedDict[str, bytes] = OrderedDict()

    # -- feeding the heap ---------------------------------------------------

    async def load(self, *, task_id: str | None = None) -> int:
        """Queue the runs waiting in the database (all, or one task's)."""
        runs = await sync_to_async(selectors.due_runs)(task_id=task_id)
        for run in runs:
            self.push(run)
        return len(runs)

    def push(self, run: DueRun) -> None:
        if run.iteration_id in self._queued:
            return
        self._queued.add(run.iteration_id)
        heapq.heappush(self._heap, (run.due_at, next(self._seq), run))
        self._wake.set()

    def queue_depth(self) -> int:
        return len(self._heap)

    # -- the loop -------------------------------------------------------------

    async def run(self) -> None:
        """Fire runs as they fall due, until cancelled."""
        try:
            while True:
                run = await self._next_due()
                worker = await self._pool.acquire()
                self._queued.discard(run.iteration_id)
                task = asyncio.create_task(
                    self._dispatch(run, worker), name=f"run-{run.task_id}-{run.index}"
                )
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
        finally:
            for task in list(self._runs):
                task.cancel()
            await asyncio.gather(*self._runs, return_exceptions=True)

    async def _next_due(self) -> DueRun:
        while True:
            self._wake.clear()
            if self._heap:
                due_at, _, run = self._heap[0]
                wait = schedule.seconds_until(due_at, timezone.now())
                if wait <= 0:
                    heapq.heappop(self._heap)
                    return run
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                await self._wake.wait()

    # -- one run on one worker ---------------------------------------------

    async def _dispatch(self, run: DueRun, worker: PooledWorker) -> None:
        try:
            attempt_id = await sync_to_async(services.start_attempt)(
                iteration_id=run.iteration_id, worker_peer_id=worker.peer_id
            )
            if attempt_id is None:
                return
            await self._execute(run, worker, attempt_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dispatch of %s#%d failed", run.task_id, run.index)
        finally:
            self._pool.release(worker)

    async def _execute(self, run: DueRun, worker: PooledWorker, attempt_id: int) -> None:
        duration = run.duration if run.duration > 0 else self._default_duration
        wasm = await self._module(run.module_hash)
        job = {
            "taskId": run.task_id,
            "iteration": run.index,
            "moduleHash": run.module_hash,
            "wasm": wasm,
            "input": run.input,
            "difficulty": run.difficulty,
            "timeLimitMs": int(duration * 1000),
        }
        log.info("run %s#%d -> %s", run.task_id, run.index, worker.peer_id)
        try:
            if worker.capability is None:
                raise ConnectionError("worker left the pool")
            response = await asyncio.wait_for(
                worker.capability.execute(job=job), duration + self._call_grace
            )
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - the worker's failure, not ours
            reason = "no answer in time" if isinstance(exc, TimeoutError) else _first_line(exc)
            if rpc.is_disconnect(exc) or isinstance(exc, TimeoutError):
                self._pool.remove(worker)
            retry = await sync_to_async(services.lose_attempt)(
                attempt_id=attempt_id, reason=reason, max_attempts=self._max_attempts
            )
            if retry:
                self.push(replace(run, due_at=timezone.now()))
            return
        outcome = response.outcome
        state = _OUTCOME_STATES[str(outcome.state)]
        started_at, finished_at = _from_ns(outcome.startedAtNs), _from_ns(outcome.finishedAtNs)
        await sync_to_async(services.finish_attempt)(
            attempt_id=attempt_id,
            state=state,
            result=outcome.result,
            error=outcome.error,
            exit_code=outcome.exitCode if outcome.hasExitCode else None,
            started_at=started_at,
            finished_at=finished_at,
        )
        metrics.observe_run(
            due_at=run.due_at, started_at=started_at, finished_at=finished_at, state=state
        )

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


def _from_ns(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC) if ns > 0 else None


def _first_line(exc: Any) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]
