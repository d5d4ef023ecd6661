"""Write-behind for the scheduler: what happens to runs is appended here as
records and written in batches, one transaction per batch, off the dispatch
path. Dispatch never waits for the database.

Nothing is lost by batching: until a record is written, the database shows
the run as still waiting (or running), so a gateway that dies with records
in hand dispatches those runs again when it restarts; a success is written
once per run (`run_records.record_runs` only moves a run out of pending or
running), so it is never counted twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks_app.exceptions import WriteElsewhere

log = logging.getLogger("ww.scheduler")


@dataclass(frozen=True)
class RunSent:
    """Attempt `number` of a run went to a worker."""

    iteration_id: int
    task_id: str
    index: int
    number: int
    worker_peer_id: str
    sent_at: datetime


@dataclass(frozen=True)
class RunEnded:
    """Attempt `number` ended with `outcome`; the run is now `run_state`
    (a final state, or `pending` when it will be tried again)."""

    iteration_id: int
    task_id: str
    index: int
    number: int
    worker_peer_id: str
    outcome: str  # succeeded, failed, timed_out, cancelled or lost
    run_state: str
    result: str = ""
    error: str = ""
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result_bytes: bytes | None = None  # the output when it is not UTF-8
    result_truncated: bool = False
    stderr: str = ""


Record = RunSent | RunEnded
Publish = Callable[[list[dict[str, Any]]], Awaitable[None]]


class Journal:
    """Group commit: records that arrive while a batch is being written make
    up the next batch, so a busy gateway writes big batches and an idle one
    writes an ended run at once (its result is visible as soon as it can
    be). A sent record alone is not urgent — nobody waits on it — so it
    waits up to `linger` for its run's end, and the two go in together.

    Batches are written on the journal's own thread: an ended run's result
    is visible sooner than if it queued for the thread the rest of the
    gateway's database work shares (a sweep's query, a load). A small batch
    (up to `here_max` records: a run or two, what an idle gateway writes)
    is instead written on the event loop by `write_here` where one is given:
    a fraction of a millisecond, and two thread hand-offs less before its
    runs' events go out. `write_here` raises WriteElsewhere rather than wait
    for a busy database; the batch then goes to the thread."""

    def __init__(
        self,
        write: Callable[[list[Record]], list[dict[str, Any]]],
        *,
        publish: Publish | None = None,
        linger: float = 0.005,
        max_batch: int = 1000,
        write_here: Callable[[list[Record]], list[dict[str, Any]]] | None = None,
        here_max: int = 4,
    ) -> None:
        self._write = write
        self._write_here = write_here
        self._here_max = here_max
        self._publish = publish
        self._linger = linger
        self._max_batch = max_batch
        self._records: list[Record] = []
        self._go = False  # a batch is due: an ended run, the linger out, or a backlog
        self._waiter: asyncio.Future[None] | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ww-journal")
        self.batches = 0
        self.written = 0
        self.written_here = 0

    def append(self, record: Record) -> None:
        self._records.append(record)
        if isinstance(record, RunEnded):
            self._due()
        elif self._linger_timer is None and not self._go:
            self._linger_timer = asyncio.get_running_loop().call_later(self._linger, self._due)

    def _due(self) -> None:
        """A batch is to be written now: wake the writer (one callback, no task)."""
        self._go = True
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def run(self) -> None:
        """Write batches until cancelled; on cancellation, write what is left."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._go:
                    self._waiter = loop.create_future()
                    await self._waiter
                self._go = False
                await self._write_some()
        finally:
            if self._linger_timer is not None:
                self._linger_timer.cancel()
            # A few tries only: a database that keeps refusing must not hold
            # the gateway's shutdown (unwritten runs are re-run on restart).
            try:
                for _ in range(5):
                    if not self._records:
                        break
                    await asyncio.shield(self._write_some())
            finally:
                self._thread.shutdown(wait=True)

    async def _write_some(self) -> None:
        batch, self._records = (
            self._records[: self._max_batch],
            self._records[self._max_batch :],
        )
        if self._records:
            self._due()  # a backlog: the next batch right after this one
        if not batch:
            return
        started = time.perf_counter()
        try:
            events = await self._write_batch(batch)
        except Exception:
            # The database refused the batch (locked too long, disk full...):
            # keep the records and try again; the runs stay as they were.
            log.exception("could not write %d run records; retrying", len(batch))
            self._records[:0] = batch
            await asyncio.sleep(0.5)
            self._due()
            return
        # Here, not at the top: a worker loads this module (the storage's
        # records) and must not load the gateway's metrics.
        from tasks_app import metrics

        metrics.journal_written(len(batch), time.perf_counter() - started)
        self.batches += 1
        self.written += len(batch)
        if self._publish is not None and events:
            try:
                await self._publish(events)
            except Exception:  # watchers are best effort; the rows are the truth
                log.exception("could not publish %d run events", len(events))

    async def _write_batch(self, batch: list[Record]) -> list[dict[str, Any]]:
        if self._write_here is not None and len(batch) <= self._here_max:
            try:
                events = self._write_here(batch)
            except WriteElsewhere:
                pass
            else:
                self.written_here += len(batch)
                return events
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._write, batch)
