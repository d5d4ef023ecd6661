"""Liveness: a half-open connection answers no ping. Every `interval`
seconds each pooled worker is pinged, all at once; one that does not answer
within `timeout` is handed to `on_silent` (the gateway drops it and closes
its connection)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tasks_app.pool import PooledWorker, WorkerPool


async def ping(worker: PooledWorker, *, timeout: float) -> str | None:
    """None if the worker answered in time (or is gone already), else why not."""
    link = worker.link
    if link is None:
        return None
    try:
        await asyncio.wait_for(link.ping(), timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure is silence
        return f"no answer to ping: {exc or type(exc).__name__}"
    return None


async def watch(
    pool: WorkerPool,
    *,
    interval: float,
    timeout: float,
    on_silent: Callable[[PooledWorker, str], None],
) -> None:
    """Ping the pool every `interval` seconds, until cancelled."""

    async def check(worker: PooledWorker) -> None:
        reason = await ping(worker, timeout=timeout)
        if reason is not None:
            on_silent(worker, reason)

    while True:
        await asyncio.sleep(interval)
        await asyncio.gather(*(check(worker) for worker in pool))
