"""How the scheduler's bounded queue is fed from the database: at start
(`load`), by each submission's announcement (`add`), by the sweep that
catches runs nobody announced (`sweep`), and, while more runs wait than the
window holds, by reading the next ones as the queue drains (`refill`).

A part of `tasks_app.scheduler.Scheduler` (a mixin over its state): the
queue, the task inputs it holds, what it is running and has dispatched
lately, and the tasks it knows are cancelled."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from tasks_app import selectors, storage
from tasks_app.job_inputs import TaskInputs
from tasks_app.run_queue import RunQueue
from tasks_app.selectors import DueRun

log = logging.getLogger("ww.scheduler")

_REMEMBER_DISPATCH = 60.0  # s: how long the sweep leaves a dispatched run alone
REFILL_RETRY = 0.1  # s: before reading the database again for more runs
_REFILL_TRIES = 5  # failed reads in a row before the sweep is left to refill


class QueueFeeding:
    """Feeds `_queue` (the Scheduler sets every attribute below)."""

    _queue: RunQueue
    _refilling: bool
    _inputs: TaskInputs
    _running: dict[int, Any]
    _dispatched: dict[int, float]  # iteration id -> monotonic time sent
    _cancelled: set[str]

    def push(self, run: DueRun, *, retry: bool = False) -> None:
        raise NotImplementedError

    def _own(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        raise NotImplementedError

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
        self._queue.trim(timezone.now())

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
        keys = await sync_to_async(selectors.waiting_run_keys)(
            due_before=due_before, limit=self._queue.window
        )
        self._forget_old_dispatches()
        unknown = [k for k, task_id in keys if self._unknown(k, task_id)]
        found = 0
        for ids in storage.chunks(unknown, storage.ORM_IN_KEYS):
            found += await self._queue_unknown(
                await sync_to_async(selectors.due_runs)(ids=ids, inputs_known=self._inputs.known())
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

    def _forget_old_dispatches(self) -> None:
        # A run's records reach the database within moments of its end; the
        # memory of older dispatches is dropped (it would grow without end).
        forget_before = time.monotonic() - _REMEMBER_DISPATCH
        self._dispatched = {
            k: sent for k, sent in self._dispatched.items() if sent >= forget_before
        }

    def _unknown(self, iteration_id: int, task_id: str) -> bool:
        """A waiting run this scheduler has neither queued, running, sent
        lately, nor cancelled."""
        return not (
            iteration_id in self._dispatched
            or task_id in self._cancelled
            or iteration_id in self._queue
            or iteration_id in self._running
        )

    async def _queue_unknown(self, runs: list[DueRun]) -> int:
        self._forget_old_dispatches()
        found = 0
        for run in runs:
            if self._unknown(run.iteration_id, run.task_id):
                found += 1
                self.push(run)
        self._queue.trim(timezone.now())
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
                    await asyncio.sleep(REFILL_RETRY)
        finally:
            self._refilling = False
