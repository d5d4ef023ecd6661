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
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
    gateway's database work shares (a sweep's query, a load)."""

    def __init__(
        self,
        write: Callable[[list[Record]], list[dict[str, Any]]],
        *,
        publish: Publish | None = None,
        linger: float = 0.005,
        max_batch: int = 1000,
    ) -> None:
        self._write = write
        self._publish = publish
        self._linger = linger
        self._max_batch = max_batch
        self._records: list[Record] = []
        self._wake = asyncio.Event()  # there are records
        self._urgent = asyncio.Event()  # ... and one of them is an ended run
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ww-journal")
        self.batches = 0
        self.written = 0

    def append(self, record: Record) -> None:
        self._records.append(record)
        self._wake.set()
        if isinstance(record, RunEnded):
            self._urgent.set()

    async def run(self) -> None:
        """Write batches until cancelled; on cancellation, write what is left."""
        try:
            while True:
                await self._wake.wait()
                if not self._urgent.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._urgent.wait(), self._linger)
                await self._write_some()
        finally:
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
        self._wake.clear()
        self._urgent.clear()
        batch, self._records = (
            self._records[: self._max_batch],
            self._records[self._max_batch :],
        )
        if self._records:
            self._wake.set()
            self._urgent.set()
        if not batch:
            return
        try:
            loop = asyncio.get_running_loop()
            events = await loop.run_in_executor(self._thread, self._write, batch)
        except Exception:
            # The database refused the batch (locked too long, disk full...):
            # keep the records and try again; the runs stay as they were.
            log.exception("could not write %d run records; retrying", len(batch))
            self._records[:0] = batch
            await asyncio.sleep(0.5)
            self._wake.set()
            return
        self.batches += 1
        self.written += len(batch)
        if self._publish is not None and events:
            try:
                await self._publish(events)
            except Exception:  # watchers are best effort; the rows are the truth
                log.exception("could not publish %d run events", len(events))
