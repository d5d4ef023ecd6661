"""One call to one worker, in the domain's terms: run jobs and wait for the
answer, or for the worker to leave the pool, or for the call's timeout;
interrupt runs on the workers that hold them. The scheduler decides what
to call and records what came back (tasks_app.scheduler)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from tasks_app import metrics
from tasks_app.dispatch import Job
from tasks_app.outcomes import WorkerOutcome
from tasks_app.pool import PooledWorker
from tasks_app.selectors import DueRun

log = logging.getLogger("ww.scheduler")

CANCEL_TIMEOUT = 5.0  # s: how long a worker may take to take a cancel


class WorkerVanished(Exception):
    """The worker left the pool while running our call."""


async def call(worker: PooledWorker, jobs: list[Job], *, timeout: float) -> list[WorkerOutcome]:
    """The jobs run on the worker, abandoned if the worker leaves the pool
    (its connection closed or it stopped answering pings) or does not
    answer within `timeout` seconds (TimeoutError). Counted under the
    worker's peer ID: each outcome, or every job lost when the call fails."""
    try:
        outcomes = await _call(worker, jobs, timeout=timeout)
    except Exception:
        metrics.worker_ran(worker.peer_id, "lost", len(jobs))
        raise
    for outcome in outcomes:
        metrics.worker_ran(worker.peer_id, outcome.state)
        metrics.compile_cache_used(outcome.compile_cached)
    return outcomes


async def _call(worker: PooledWorker, jobs: list[Job], *, timeout: float) -> list[WorkerOutcome]:
    link = worker.link
    if link is None:
        raise WorkerVanished("worker left the pool")
    running = asyncio.ensure_future(link.run(jobs))
    gone = worker.gone()
    waiting: set[asyncio.Future[Any]] = {running, gone}
    try:
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            return running.result()
        if gone in done:
            raise WorkerVanished("worker left the pool mid-run")
        raise TimeoutError(f"no answer within {timeout:.0f} s")
    finally:
        if not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def interrupt(runs: Iterable[tuple[DueRun, PooledWorker]]) -> None:
    """Ask each worker running one of the runs to stop it (a run that waits
    in a worker's queue is dropped there), all at once. A cancel that is
    not delivered is logged: its run ends when its call does."""

    async def one(run: DueRun, worker: PooledWorker) -> None:
        link = worker.link
        if link is None:
            return
        try:
            await asyncio.wait_for(link.cancel(run.task_id, run.index), CANCEL_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - its run ends when its call does
            log.info(
                "run %s#%d: cancel not delivered to %s: %s",
                run.task_id,
                run.index,
                worker.peer_id,
                first_line(exc),
            )

    await asyncio.gather(*(one(run, worker) for run, worker in runs))


def first_line(exc: BaseException) -> str:
    """An exception as one line of at most 500 characters, for logs and
    the error a run records."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]
