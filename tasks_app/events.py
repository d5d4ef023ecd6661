"""Run state changes, published on the channel layer (in process by default,
Redis in the scale-out configuration) for live watchers: every change goes
to the group `ww.tasks` and to the task's own group.

Changes travel in batches: one `runs.changed` layer message per group holds
a batch's events in order (a journal batch can hold thousands), and the
websocket consumers send each event as its own `run.changed` frame."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger("ww.events")

ALL_TASKS_GROUP = "ww.tasks"


def task_group(task_id: str) -> str:
    """The group of one task's events. Task ids may hold characters group
    names may not, so the name is derived from a hash of the id."""
    return "ww.task." + hashlib.sha256(task_id.encode()).hexdigest()[:32]


def run_event(
    *,
    task_id: str,
    index: int,
    state: str,
    worker: str,
    attempt: int,
    result: str,
    error: str,
    completions: int,
    at: datetime,
) -> dict[str, Any]:
    """A `run.changed` event, as the websockets stream it."""
    return {
        "type": "run.changed",
        "task": task_id,
        "index": index,
        "state": state,
        "worker": worker,
        "attempt": attempt,
        "result": result,
        "error": error,
        "completions": completions,
        "at": at.isoformat(),
    }


def runs_changed(changes: list[dict[str, Any]]) -> None:
    """Publish `changes` (`run_event`s) once the transaction commits (the
    REST path, in a request's thread)."""
    if changes:
        transaction.on_commit(lambda: _publish_from_thread(changes))


def _publish_from_thread(changes: list[dict[str, Any]]) -> None:
    try:
        async_to_sync(publish_runs)(changes)
    except Exception:  # watchers are best effort; the rows are the truth
        log.exception("could not publish %d run events", len(changes))


async def publish_runs(changes: list[dict[str, Any]]) -> None:
    """Publish `changes` (`run_event`s, in order) from the event loop: to
    every watcher, and to each task's watchers its own."""
    layer = get_channel_layer()
    if layer is None or not changes:
        return
    await layer.group_send(ALL_TASKS_GROUP, batch_message(changes))
    by_task: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_task.setdefault(change["task"], []).append(change)
    for task_id, own in by_task.items():
        await layer.group_send(task_group(task_id), batch_message(own))


def batch_message(changes: list[dict[str, Any]]) -> dict[str, Any]:
    """The layer message carrying `changes`, handled by `runs_changed` on
    the consumers."""
    return {"type": "runs.changed", "events": changes}
