"""Liveness: a worker that does not answer its ping in time is reported,
one that answers is not, and one already gone is left alone."""

from __future__ import annotations

import asyncio
from typing import Any

from cluster_app import liveness
from tasks_app.pool import WorkerPool


class Link:
    def __init__(self, *, answers: bool) -> None:
        self.answers = answers
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if not self.answers:
            await asyncio.Event().wait()

    async def run(self, jobs: Any) -> Any:
        raise NotImplementedError

    async def cancel(self, task_id: str, index: int) -> bool:
        return False


def test_only_the_silent_worker_is_reported() -> None:
    async def main() -> tuple[list[tuple[str, str]], Link]:
        pool = WorkerPool()
        awake = Link(answers=True)
        pool.add(peer_id="awake", address="a", concurrency=1, link=awake, connection=1)
        pool.add(
            peer_id="silent", address="b", concurrency=1, link=Link(answers=False), connection=2
        )
        gone = pool.add(
            peer_id="gone", address="c", concurrency=1, link=Link(answers=False), connection=3
        )
        pool.remove(gone)
        silent: list[tuple[str, str]] = []
        watch = asyncio.create_task(
            liveness.watch(
                pool,
                interval=0.01,
                timeout=0.05,
                on_silent=lambda w, why: silent.append((w.peer_id, why)),
            )
        )
        while not silent:
            await asyncio.sleep(0.01)
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        return silent, awake

    silent, awake = asyncio.run(main())
    assert [peer for peer, _ in silent] == ["silent"]
    assert "no answer to ping" in silent[0][1]
    assert awake.pings >= 1
