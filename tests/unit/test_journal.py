"""The journal's group commit: an ended run is written at once (with the
sent record it follows), a sent record alone waits for its end or the
linger, and a batch the database refuses is kept and written again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tasks_app.exceptions import WriteElsewhere
from tasks_app.journal import Journal, Record, RunEnded, RunSent

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ATTEMPT = {"iteration_id": 1, "task_id": "t", "index": 0, "number": 1, "worker_peer_id": "w"}
SENT = RunSent(**ATTEMPT, sent_at=NOW)
ENDED = RunEnded(**ATTEMPT, outcome="succeeded", run_state="succeeded", result="3")


async def _until(check: Any, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(wait(), timeout)


def test_a_run_sent_and_ended_goes_in_one_batch_without_waiting_the_linger() -> None:
    batches: list[list[Record]] = []

    async def main() -> None:
        journal = Journal(lambda batch: batches.append(batch) or [], linger=30.0)
        task = asyncio.create_task(journal.run())
        journal.append(SENT)
        await asyncio.sleep(0.05)
        assert batches == []  # a sent record alone is not urgent
        journal.append(ENDED)
        await _until(lambda: batches)  # well before the 30 s linger
        task.cancel()

    asyncio.run(main())
    assert batches == [[SENT, ENDED]]


def test_a_sent_record_alone_is_written_after_the_linger() -> None:
    batches: list[list[Record]] = []

    async def main() -> None:
        journal = Journal(lambda batch: batches.append(batch) or [], linger=0.01)
        task = asyncio.create_task(journal.run())
        journal.append(SENT)
        await _until(lambda: batches)
        task.cancel()

    asyncio.run(main())
    assert batches == [[SENT]]


def test_a_refused_batch_is_kept_and_written_again() -> None:
    calls: list[list[Record]] = []

    def write(batch: list[Record]) -> list[dict[str, Any]]:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return []

    async def main() -> Journal:
        journal = Journal(write)
        task = asyncio.create_task(journal.run())
        journal.append(ENDED)
        await _until(lambda: journal.written == 1)
        task.cancel()
        return journal

    journal = asyncio.run(main())
    assert calls == [[ENDED], [ENDED]]
    assert journal.batches == 1


def test_small_batches_are_written_here_and_others_on_the_thread() -> None:
    here: list[list[Record]] = []
    thread: list[list[Record]] = []
    busy = [False]

    def write_here(batch: list[Record]) -> list[dict[str, Any]]:
        if busy[0]:
            raise WriteElsewhere("database is locked")
        here.append(batch)
        return []

    async def main() -> Journal:
        journal = Journal(
            lambda batch: thread.append(batch) or [], write_here=write_here, here_max=2
        )
        task = asyncio.create_task(journal.run())
        journal.append(SENT)
        journal.append(ENDED)
        await _until(lambda: journal.written == 2)
        busy[0] = True  # another writer holds the database
        journal.append(ENDED)
        await _until(lambda: journal.written == 3)
        busy[0] = False
        for _ in range(3):
            journal.append(SENT)  # three at once: more than here_max
        journal.append(ENDED)
        await _until(lambda: journal.written == 7)
        task.cancel()
        return journal

    journal = asyncio.run(main())
    assert here == [[SENT, ENDED]]
    assert thread == [[ENDED], [SENT, SENT, SENT, ENDED]]
    assert journal.written_here == 2
